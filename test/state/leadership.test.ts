/**
 * The segment leadership's state machine (src/state/pg/leadership.ts) with
 * fake sessions and a manual clock: the first attempt decides how an
 * instance starts, a standby takes the lead when the lock is free, a leader
 * whose session breaks or hangs stands by at once, a failed takeover gives
 * the lock back, and close() gives up the lead.
 */
import { describe, expect, it } from 'vitest';
import { SegmentLeadership, type LeaderSession } from '../../src/state/pg/leadership.js';
import { ManualClock } from '../helpers/clock.js';

/** One lock shared by the fake sessions: held by at most one live session. */
class FakeLock {
  holder: FakeSession | null = null;
  epoch = 0;
  sessions: FakeSession[] = [];
  connect = async (): Promise<LeaderSession> => {
    const s = new FakeSession(this);
    this.sessions.push(s);
    return s;
  };
}

class FakeSession implements LeaderSession {
  alive = true;
  hang = false;
  constructor(private readonly lock: FakeLock) {}
  async tryLead(): Promise<number | null> {
    if (!this.alive) throw new Error('connection terminated');
    if (this.lock.holder !== null && this.lock.holder !== this) return null;
    this.lock.holder = this;
    return ++this.lock.epoch;
  }
  ping(): Promise<void> {
    if (this.hang) return new Promise(() => {});
    return this.alive ? Promise.resolve() : Promise.reject(new Error('connection terminated'));
  }
  async end(): Promise<void> {
    this.kill();
  }
  /** The server side of the session ends: the lock is free. */
  kill(): void {
    this.alive = false;
    if (this.lock.holder === this) this.lock.holder = null;
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

function instance(lock: FakeLock, clock: ManualClock, onLead: (epoch: number) => Promise<void> = async () => {}) {
  const log: string[] = [];
  const l = new SegmentLeadership({
    clock,
    connect: lock.connect,
    pollMs: 500,
    onLead: async (e) => {
      await onLead(e);
      log.push(`lead ${e}`);
    },
    onStandby: (r) => log.push(`standby ${r}`),
  });
  return { l, log };
}

describe('segment leadership', () => {
  it('the first instance leads at start, the second stands by and takes over one poll after the leader dies', async () => {
    const clock = new ManualClock();
    const lock = new FakeLock();
    const a = instance(lock, clock);
    const b = instance(lock, clock);
    expect(await a.l.start()).toBe(true);
    expect(await b.l.start()).toBe(false);
    expect(a.l.epoch).toBe(1);
    expect(b.l.epoch).toBeNull();
    // the leader's process dies: PostgreSQL frees the lock with its session
    lock.sessions[0]?.kill();
    clock.advance(500);
    await flush();
    expect(b.l.epoch).toBe(2);
    expect(b.log).toEqual(['lead 2']);
    // and the old one learns at its next ping that it lost the lead
    expect(a.log).toEqual(['lead 1', 'standby leadership session failed: connection terminated']);
    expect(a.l.epoch).toBeNull();
    clock.advance(500);
    await flush();
    expect(a.l.epoch).toBeNull(); // b holds the lock now
    await a.l.close();
    await b.l.close();
  });

  it('a leader whose database stops answering stands by after three polls', async () => {
    const clock = new ManualClock();
    const lock = new FakeLock();
    const a = instance(lock, clock);
    await a.l.start();
    const s = lock.sessions[0] as FakeSession;
    s.hang = true;
    clock.advance(500); // the ping starts and hangs
    await flush();
    expect(a.l.epoch).toBe(1);
    clock.advance(1500);
    await flush();
    expect(a.l.epoch).toBeNull();
    expect(a.log.at(-1)).toBe('standby leadership session failed: no answer from the database');
    expect(s.alive).toBe(false); // the session is ended, the lock freed for another
    await a.l.close();
  });

  it('a takeover whose reload fails gives the lock back and tries again later', async () => {
    const clock = new ManualClock();
    const lock = new FakeLock();
    let fail = true;
    const a = instance(lock, clock, async () => {
      if (fail) throw new Error('lease reload failed');
    });
    expect(await a.l.start()).toBe(false);
    expect(lock.holder).toBeNull();
    expect(a.l.epoch).toBeNull();
    fail = false;
    clock.advance(500);
    await flush();
    expect(a.l.epoch).toBe(2);
    expect(a.l.counters).toMatchObject({ takeovers: 1 });
    await a.l.close();
  });

  it('close() gives up the lead: the lock is free and polling stops', async () => {
    const clock = new ManualClock();
    const lock = new FakeLock();
    const a = instance(lock, clock);
    await a.l.start();
    await a.l.close();
    expect(a.log).toEqual(['lead 1', 'standby closing']);
    expect(lock.holder).toBeNull();
    expect(clock.pending).toBe(0);
  });

  it('a database that cannot be reached: standing by, counted, retried every poll', async () => {
    const clock = new ManualClock();
    let up = false;
    const lock = new FakeLock();
    const l = new SegmentLeadership({
      clock,
      connect: async () => {
        if (!up) throw new Error('ECONNREFUSED');
        return lock.connect();
      },
      pollMs: 500,
      onLead: async () => {},
      onStandby: () => {},
    });
    expect(await l.start()).toBe(false);
    clock.advance(500);
    await flush();
    expect(l.counters.connectFailures).toBe(2);
    up = true;
    clock.advance(500);
    await flush();
    expect(l.epoch).toBe(1);
    await l.close();
  });
});
