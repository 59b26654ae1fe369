import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lease } from '../../src/dhcp/leases.js';
import { LeaseStore, type LeaseChange } from '../../src/state/lease-store.js';

let dir: string;
const stores: LeaseStore[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-store-'));
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

const lease = (n: number, exp = 1000 + n): Lease => ({ mac: `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`, ip: `198.18.0.${n}`, expiresAt: exp });
async function open(compactAfter?: number): Promise<LeaseStore> {
  const s = await LeaseStore.open(dir, compactAfter);
  stores.push(s);
  return s;
}
/** A tiny model of the lease table: current leases plus the MACs changed since the last take. */
function model() {
  const leases = new Map<string, Lease>();
  let changed = new Set<string>();
  return {
    set(l: Lease) {
      leases.set(l.mac, l);
      changed.add(l.mac);
    },
    remove(mac: string) {
      leases.delete(mac);
      changed.add(mac);
    },
    src: {
      changes: (): LeaseChange[] => {
        const out = [...changed].map((mac) => ({ mac, lease: leases.get(mac) }));
        changed = new Set();
        return out;
      },
      all: () => [...leases.values()],
    },
  };
}

describe('LeaseStore (snapshot + journal)', () => {
  it('starts empty and recovers what it committed', async () => {
    const s = await open();
    expect(s.leases()).toEqual([]);
    const m = model();
    m.set(lease(1));
    m.set(lease(2));
    await s.commit(m.src);
    expect((await open()).leases()).toEqual([lease(1), lease(2)]);
  });

  it('shares one append among the commits of one moment', async () => {
    const s = await open();
    const m = model();
    const commits: Promise<void>[] = [];
    for (let i = 1; i <= 100; i++) {
      m.set(lease(i));
      commits.push(s.commit(m.src));
    }
    await Promise.all(commits);
    expect(s.writes).toBe(1);
    expect((await open()).leases()).toHaveLength(100);
  });

  it('puts a change made during a write into the next write', async () => {
    const s = await open();
    const m = model();
    m.set(lease(1));
    const first = s.commit(m.src);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r)); // the first write has taken its changes
    m.set(lease(2));
    const second = s.commit(m.src);
    await Promise.all([first, second]);
    expect(s.writes).toBe(2);
    expect((await open()).leases()).toEqual([lease(1), lease(2)]);
  });

  it('replays updates and removals in order', async () => {
    const s = await open();
    const m = model();
    m.set(lease(1));
    m.set(lease(2));
    await s.commit(m.src);
    m.set({ ...lease(1), ip: '198.18.0.99' });
    m.remove(lease(2).mac);
    await s.commit(m.src);
    expect((await open()).leases()).toEqual([{ ...lease(1), ip: '198.18.0.99' }]);
  });

  it('skips a torn last line (an append cut by a crash was never acknowledged)', async () => {
    const s = await open();
    const m = model();
    m.set(lease(1));
    await s.commit(m.src);
    await appendFile(s.journalFile, '{"mac":"52:54:00:00:00:02","lease":{"mac":"52:5');
    expect((await open()).leases()).toEqual([lease(1)]);
  });

  it('compacts into the snapshot and truncates the journal, losing nothing', async () => {
    const s = await open(10);
    const m = model();
    for (let i = 1; i <= 25; i++) {
      m.set(lease(i));
      await s.commit(m.src);
    }
    expect(s.compactions).toBe(2);
    const snap = JSON.parse(await readFile(s.file, 'utf8')) as { leases: Lease[] };
    expect(snap.leases).toHaveLength(20);
    expect((await readFile(s.journalFile, 'utf8')).split('\n').filter(Boolean)).toHaveLength(5);
    expect((await open()).leases()).toHaveLength(25);
  });

  it('survives a crash between the snapshot rename and the journal truncation (replay is idempotent)', async () => {
    const s = await open();
    const m = model();
    m.set(lease(1));
    await s.commit(m.src);
    m.set({ ...lease(1), expiresAt: 5000 });
    await s.commit(m.src);
    // as if compaction wrote the snapshot and died before truncating the journal
    await writeFile(s.file, JSON.stringify({ version: 1, leases: [{ ...lease(1), expiresAt: 5000 }] }));
    expect((await open()).leases()).toEqual([{ ...lease(1), expiresAt: 5000 }]);
  });

  it('leaves no temporary files behind', async () => {
    const s = await open(1);
    const m = model();
    m.set(lease(1));
    await s.commit(m.src);
    expect((await readdir(dir)).sort()).toEqual(['leases.journal', 'leases.json']);
  });

  it('refuses to start on a corrupt snapshot, naming it, rather than starting empty and losing leases', async () => {
    await writeFile(path.join(dir, 'leases.json'), '{"version":1,"leases":[{"mac":');
    await expect(LeaseStore.open(dir)).rejects.toMatchObject({ code: 'ERR_STATE_CORRUPT', message: expect.stringContaining('leases.json') });
  });
});
