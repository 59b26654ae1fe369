/**
 * The event bus (src/events/bus.ts): order, isolation of failing and slow
 * subscribers, bounded queues, type filters, and that publishing returns
 * before any subscriber runs.
 */
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import type { BootEvent, Stamp } from '../../src/events/types.js';

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
}

const ev = (n: number): BootEvent => ({ type: 'hosts.reload', ok: true, hosts: n, issues: [], filesInError: 0 });
const n = (e: BootEvent): number => (e.type === 'hosts.reload' ? e.hosts : -1);

describe('EventBus', () => {
  it('delivers every event to every subscriber in publish order, numbered and stamped, after publish returned', async () => {
    let now = 1000;
    const bus = new EventBus({ wallNow: () => now++ });
    const a: { e: BootEvent; s: Stamp }[] = [];
    const b: number[] = [];
    bus.subscribe('a', (e, s) => void a.push({ e, s }));
    bus.subscribe('b', (e) => void b.push(n(e)));
    const published = [0, 1, 2, 3, 4].map(ev);
    for (const e of published) bus.publish(e);
    expect(a).toEqual([]); // nothing ran inside publish
    await bus.drained();
    expect(a.map((x) => n(x.e))).toEqual([0, 1, 2, 3, 4]);
    expect(a.map((x) => x.s.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(a.map((x) => x.s.at)).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(a[3]?.e).toBe(published[3]); // the publisher's object itself (not a copy), shared read-only
    expect(b).toEqual([0, 1, 2, 3, 4]);
    expect(bus.published).toBe(5);
  });

  it('a subscriber that throws or rejects is counted and reported, keeps getting events, and the others are untouched', async () => {
    const reported: string[] = [];
    const bus = new EventBus({ wallNow: () => 0, onFailure: (name, err) => reported.push(`${name}: ${(err as Error).message}`) });
    const good: number[] = [];
    bus.subscribe('throws', (e) => {
      if (n(e) % 2 === 0) throw new Error(`bad ${n(e)}`);
    });
    bus.subscribe('rejects', async (e) => {
      if (n(e) === 1) throw new Error('rejected 1');
    });
    bus.subscribe('good', (e) => void good.push(n(e)));
    for (let i = 0; i < 4; i++) bus.publish(ev(i));
    await bus.drained();
    expect(good).toEqual([0, 1, 2, 3]);
    expect(reported.sort()).toEqual(['rejects: rejected 1', 'throws: bad 0', 'throws: bad 2']);
    const s = Object.fromEntries(bus.stats().subscribers.map((x) => [x.name, x]));
    expect(s.throws).toMatchObject({ delivered: 2, failed: 2, dropped: 0 });
    expect(s.rejects).toMatchObject({ delivered: 3, failed: 1 });
    expect(bus.totals()).toEqual({ published: 4, delivered: 9, failed: 3, dropped: 0, queued: 0 });
  });

  it('a slow subscriber falls behind alone: the fast one has everything while the slow one still works through its queue', async () => {
    const bus = new EventBus({ wallNow: () => 0 });
    const fast: number[] = [];
    const slow: number[] = [];
    bus.subscribe('slow', async (e) => {
      await new Promise((r) => setTimeout(r, 30));
      slow.push(n(e));
    });
    bus.subscribe('fast', (e) => void fast.push(n(e)));
    for (let i = 0; i < 5; i++) bus.publish(ev(i));
    await new Promise((r) => setTimeout(r, 10));
    expect(fast).toEqual([0, 1, 2, 3, 4]);
    expect(slow).toEqual([]);
    expect(bus.stats().subscribers.find((x) => x.name === 'slow')?.queued).toBe(4);
    await bus.drained();
    expect(slow).toEqual([0, 1, 2, 3, 4]); // one at a time, in order
  });

  it('a subscriber more than maxQueue behind loses the newest events, counted as dropped; memory stays bounded', async () => {
    const bus = new EventBus({ wallNow: () => 0, maxQueue: 3 });
    let release: () => void = () => {};
    const got: number[] = [];
    bus.subscribe('stuck', async (e) => {
      got.push(n(e));
      if (n(e) === 0) await new Promise<void>((r) => (release = r));
    });
    bus.publish(ev(0));
    await until(() => got.length === 1); // event 0 is taken: the subscriber is stuck on it
    for (let i = 1; i <= 10; i++) bus.publish(ev(i));
    expect(bus.stats().subscribers[0]).toMatchObject({ queued: 3, dropped: 7 });
    release();
    await bus.drained();
    expect(got).toEqual([0, 1, 2, 3]);
  });

  it('filters by event type; an unsubscribed subscriber gets nothing more', async () => {
    const bus = new EventBus({ wallNow: () => 0 });
    const only: string[] = [];
    const off = bus.subscribe('only-server', (e) => void only.push(e.type), ['server']);
    bus.publish(ev(1));
    bus.publish({ type: 'server', server: 'tftp', state: 'started' });
    await bus.drained();
    off();
    bus.publish({ type: 'server', server: 'tftp', state: 'stopped' });
    await bus.drained();
    expect(only).toEqual(['server']);
  });
});
