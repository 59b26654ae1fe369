/**
 * One leader per segment among the bootd instances that share a database
 * (docs/postgresql.md, "Several instances"). The leader holds a session-level
 * advisory lock keyed by the segment's name on a connection of its own; the
 * others try for it every `pollMs`. PostgreSQL lets go of the lock the moment
 * that session ends, so a leader killed with SIGKILL (its socket closes) is
 * replaced within one poll.
 *
 * Taking the lead bumps the segment's epoch in `dhcp_leader`; every lease
 * write of the leader carries its epoch and writes nothing unless the row
 * still holds it, under a row lock (./lease-store.ts). A leader that lost its
 * session without noticing (a network partition, a restart of the database)
 * can therefore commit nothing after another took over, and what it did
 * commit before is what the new leader reads when it takes over: the bump
 * waits for the old writes' row locks.
 *
 * The state machine is here; the session is an interface (pgLeaderSession
 * below is the real one), so a test drives it with fakes and a manual clock.
 */
import pg from 'pg';
import type { Clock, TimerHandle } from '../../net/clock.js';

/** A database session that may hold a segment's lock. */
export interface LeaderSession {
  /** Tries for the lock without waiting; the new epoch when got, else null. */
  tryLead(): Promise<number | null>;
  /** Proves the session (and so the lock) is alive; rejects when not. */
  ping(): Promise<void>;
  /** Ends the session (the lock goes with it). */
  end(): Promise<void>;
}

export interface LeadershipOptions {
  readonly clock: Clock;
  readonly connect: () => Promise<LeaderSession>;
  /** How often a standby tries for the lock and a leader proves its session. */
  readonly pollMs: number;
  /**
   * Called on taking the lead (the epoch is already readable): reload what
   * the previous leader committed, then start answering. A rejection gives
   * the lead back.
   */
  readonly onLead: (epoch: number) => Promise<void>;
  /** Called when the lead is lost (session broken, ping failed) or given back. */
  readonly onStandby: (reason: string) => void;
}

export class SegmentLeadership {
  private session: LeaderSession | null = null;
  private epochNow: number | null = null;
  private timer: TimerHandle | null = null;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();
  /** Times the lead was taken, and lost (for the stats). */
  readonly counters = { takeovers: 0, lost: 0, connectFailures: 0 };

  constructor(private readonly o: LeadershipOptions) {}

  /** The epoch while this instance leads, else null (a lease write then writes nothing). */
  get epoch(): number | null {
    return this.epochNow;
  }

  /** Makes the first attempt (awaited: an instance alone starts as the leader), then polls. */
  async start(): Promise<boolean> {
    await this.tick();
    return this.epochNow !== null;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimer(this.o.pollMs, () => {
      this.ticking = this.tick();
    });
  }

  private async tick(): Promise<void> {
    try {
      if (this.session === null) {
        try {
          this.session = await this.o.connect();
        } catch (err) {
          this.counters.connectFailures++;
          throw err;
        }
      }
      if (this.epochNow !== null) {
        await this.ping(this.session);
      } else {
        const epoch = await this.session.tryLead();
        if (epoch !== null) {
          // published first: onLead opens the gate last, and the writes after it carry this epoch
          this.epochNow = epoch;
          try {
            await this.o.onLead(epoch);
          } catch (err) {
            // could not take over cleanly: let another try, and try again later
            this.epochNow = null;
            await this.drop();
            throw err;
          }
          this.counters.takeovers++;
        }
      }
    } catch (err) {
      this.lose(`leadership session failed: ${(err as Error).message}`);
    } finally {
      this.schedule();
    }
  }

  private async ping(s: LeaderSession): Promise<void> {
    // a database that hangs (no answer, no error) must cost the lead too
    let t: TimerHandle | null = null;
    const timeout = new Promise<never>((_, reject) => {
      t = this.o.clock.setTimer(Math.max(this.o.pollMs * 3, 1000), () => reject(new Error('no answer from the database')));
    });
    try {
      await Promise.race([s.ping(), timeout]);
    } finally {
      (t as TimerHandle | null)?.cancel();
    }
  }

  private lose(reason: string): void {
    if (this.epochNow !== null) {
      this.epochNow = null;
      this.counters.lost++;
      this.o.onStandby(reason);
    }
    void this.drop();
  }

  private async drop(): Promise<void> {
    const s = this.session;
    this.session = null;
    await s?.end().catch(() => {});
  }

  /** Gives the lead back (ending the session frees the lock at once) and stops polling. */
  async close(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.ticking.catch(() => {});
    if (this.epochNow !== null) {
      this.epochNow = null;
      this.o.onStandby('closing');
    }
    await this.drop();
  }
}

/** The advisory lock's key for a segment: 64 bits of a hash of its name, so segments do not share a lock. */
const LOCK_KEY_SQL = "hashtextextended('bootd.dhcp:' || $1, 0)";

/** The real session: a connection of its own (not the pool's: the lock lives and dies with it). */
export function pgLeaderSession(url: string, segment: string, instance: string, connectTimeoutMs = 5000): () => Promise<LeaderSession> {
  return async () => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs, application_name: `bootd ${instance} leader` });
    // a broken connection shows as a failed ping; the event itself must not end bootd
    client.on('error', () => {});
    await client.connect();
    return {
      tryLead: async () => {
        const got = (await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${LOCK_KEY_SQL}) AS ok`, [segment])).rows[0]?.ok === true;
        if (!got) return null;
        // the bump waits for the old leader's writes in flight (they hold the row FOR SHARE)
        const r = await client.query<{ epoch: string }>(
          `INSERT INTO dhcp_leader (segment, epoch, instance, since) VALUES ($1, 1, $2, now())
           ON CONFLICT (segment) DO UPDATE SET epoch = dhcp_leader.epoch + 1, instance = EXCLUDED.instance, since = now()
           RETURNING epoch`,
          [segment, instance],
        );
        return Number(r.rows[0]?.epoch);
      },
      ping: async () => {
        await client.query('SELECT 1');
      },
      end: () => client.end(),
    };
  };
}
