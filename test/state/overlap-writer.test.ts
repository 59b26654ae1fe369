/**
 * Moments written side by side (src/state/overlap-writer.ts): one write per
 * moment; a later moment starts before the earlier finished unless they
 * share a key (then in order); never more than maxInFlight at once;
 * settled() waits for all; a failed write fails its own callers only.
 */
import { describe, expect, it } from 'vitest';
import { OverlapWriter } from '../../src/state/overlap-writer.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function rig(maxInFlight = 3) {
  let queue: string[] = [];
  const log: string[] = [];
  const gates = new Map<number, { open: () => void; fail: (e: Error) => void }>();
  let n = 0;
  const w = new OverlapWriter<{ id: number; keys: string[] }>(
    () => {
      if (queue.length === 0) return null;
      const keys = queue;
      queue = [];
      const id = ++n;
      return { keys: new Set(keys), value: { id, keys } };
    },
    ({ id, keys }) =>
      new Promise<void>((resolve, reject) => {
        log.push(`start ${id} ${keys.join(',')}`);
        gates.set(id, { open: () => (log.push(`end ${id}`), resolve()), fail: (e) => (log.push(`fail ${id}`), reject(e)) });
      }),
    maxInFlight,
  );
  const change = (...keys: string[]): Promise<void> => {
    queue.push(...keys);
    return w.request();
  };
  return { w, log, gates, change };
}

describe('moments written side by side', () => {
  it('one write per moment; disjoint moments overlap; a shared key waits for the earlier write', async () => {
    const r = rig();
    const a1 = r.change('a');
    const a2 = r.change('b'); // same moment
    expect(a1).toBe(a2);
    await tick();
    const b = r.change('c');
    await tick();
    const c = r.change('a'); // shares a with write 1
    await tick();
    await tick();
    expect(r.log).toEqual(['start 1 a,b', 'start 2 c']);
    r.gates.get(2)?.open();
    await b;
    expect(r.log).toEqual(['start 1 a,b', 'start 2 c', 'end 2']);
    r.gates.get(1)?.open();
    await a1;
    await tick();
    expect(r.log.slice(3)).toEqual(['end 1', 'start 3 a']);
    r.gates.get(3)?.open();
    await c;
    await r.w.settled();
  });

  it('never more than maxInFlight at once, and a failure fails only its own callers', async () => {
    const r = rig(2);
    const p1 = r.change('a');
    await tick();
    const p2 = r.change('b');
    await tick();
    const p3 = r.change('c');
    await tick();
    await tick();
    expect(r.log).toEqual(['start 1 a', 'start 2 b']);
    r.gates.get(1)?.fail(new Error('disk'));
    await expect(p1).rejects.toThrow('disk');
    await tick();
    await tick();
    expect(r.log).toEqual(['start 1 a', 'start 2 b', 'fail 1', 'start 3 c']);
    r.gates.get(2)?.open();
    r.gates.get(3)?.open();
    await Promise.all([p2, p3]);
    let settled = false;
    const s = r.w.settled().then(() => (settled = true));
    await s;
    expect(settled).toBe(true);
  });
});
