/**
 * The machine reconciler (src/machines/reconciler.ts) on a manual clock and
 * the memory store: expiry closes a CLI machine's port and then drops it
 * from the record; the build hosts of hosts/ always have theirs.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { MachineReconciler } from '../../src/machines/reconciler.js';
import type { Machine } from '../../src/machines/registry.js';
import { MemoryMachineStore } from '../../src/state/memory.js';
import { ManualClock } from '../helpers/clock.js';

const flush = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

describe('MachineReconciler', () => {
  it('opens build hosts at start, closes an expired CLI machine on the next check (ports first, then the record)', async () => {
    const clock = new ManualClock();
    const store = new MemoryMachineStore();
    const now = new Date(clock.wallNow()).toISOString();
    const cli: Machine = { name: 'ci-7', port: 1071, owner: { ip: '198.18.0.7' }, quotaBytes: 1 << 20, overwrite: true, openedAt: now, expiresAt: new Date(clock.wallNow() + 3000).toISOString(), source: 'cli' };
    await store.save([cli]);
    const applied: string[][] = [];
    const order: string[] = [];
    const realSave = store.save.bind(store);
    store.save = async (ms) => {
      order.push('save');
      await realSave(ms);
    };
    const rec = await MachineReconciler.start({
      store,
      apply: async (ms) => {
        order.push('apply');
        applied.push(ms.map((m) => m.name));
      },
      buildHosts: () => [{ name: 'builder', ip: '198.18.0.8', quotaBytes: 1 << 20 }],
      range: { first: 1070, last: 1072 },
      clock,
      log: silentLogger,
    });
    expect(applied).toEqual([['builder', 'ci-7']]);
    expect(rec.machines.map((m) => `${m.name}:${m.port}`)).toEqual(['builder:1070', 'ci-7:1071']);
    clock.advance(2000); // checked, not expired yet
    await flush();
    expect(applied).toHaveLength(1);
    clock.advance(2000); // expired now
    await flush();
    expect(applied.at(-1)).toEqual(['builder']);
    expect(order.slice(-2)).toEqual(['apply', 'save']);
    expect((await store.load()).map((m) => m.name)).toEqual(['builder']);
    await rec.close();
    expect(clock.pending).toBe(0); // no expiry check left behind
  });
});
