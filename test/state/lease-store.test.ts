import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lease } from '../../src/dhcp/leases.js';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import type { LeaseChange } from '../../src/dhcp/lease-store.js';

let dir: string;
const stores: FileLeaseStore[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-store-'));
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

const lease = (n: number, exp = 1000 + n): Lease => ({ mac: `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`, ip: `198.18.0.${n}`, expiresAt: exp });
async function open(compactAfter?: number): Promise<FileLeaseStore> {
  const s = await FileLeaseStore.open(dir, compactAfter);
  stores.push(s);
  return s;
}
/** A tiny model of the lease table: current leases by address plus the addresses changed since the last take. */
function model() {
  const leases = new Map<string, Lease>();
  let changed = new Set<string>();
  return {
    set(l: Lease) {
      leases.set(l.ip, l);
      changed.add(l.ip);
    },
    remove(ip: string) {
      leases.delete(ip);
      changed.add(ip);
    },
    pending: () => [...changed],
    src: {
      changes: (): LeaseChange[] => {
        const out = [...changed].map((ip) => ({ ip, lease: leases.get(ip) }));
        changed = new Set();
        return out;
      },
      all: () => [...leases.values()],
      putBack: (cs: readonly LeaseChange[]) => {
        for (const c of cs) changed.add(c.ip);
      },
    },
  };
}

describe('FileLeaseStore (snapshot + journal)', () => {
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
    m.remove(lease(1).ip);
    m.set({ ...lease(1), ip: '198.18.0.99' });
    m.remove(lease(2).ip);
    await s.commit(m.src);
    expect((await open()).leases()).toEqual([{ ...lease(1), ip: '198.18.0.99' }]);
  });

  it('skips a torn last line (an append cut by a crash was never acknowledged)', async () => {
    const s = await open();
    const m = model();
    m.set(lease(1));
    await s.commit(m.src);
    await appendFile(s.journalFile, '{"ip":"198.18.0.2","lease":{"mac":"52:5');
    expect((await open()).leases()).toEqual([lease(1)]);
  });

  it('cuts a torn tail off at open, so the next record is never glued onto it and survives the next recovery', async () => {
    const s = await open();
    const m = model();
    m.set(lease(1));
    await s.commit(m.src);
    await s.close();
    stores.splice(stores.indexOf(s), 1);
    await appendFile(s.journalFile, '{"ip":"198.18.0.2","lease":{"mac":"52:5'); // power lost mid-append
    const after = await open();
    expect(after.tornBytes).toBe(39);
    const m2 = model();
    m2.set(lease(3));
    await after.commit(m2.src); // acknowledged
    const text = await readFile(s.journalFile, 'utf8');
    expect(text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LeaseChange)).toHaveLength(2);
    expect((await open()).leases()).toEqual([lease(1), lease(3)]);
  });

  it('reads a journal written by the MAC-keyed version (records with mac, removals by mac)', async () => {
    await writeFile(path.join(dir, 'leases.json'), JSON.stringify({ version: 1, leases: [lease(1), lease(2)] }));
    await writeFile(path.join(dir, 'leases.journal'), [
      JSON.stringify({ mac: lease(1).mac, lease: { ...lease(1), ip: '198.18.0.77' } }),
      JSON.stringify({ mac: lease(2).mac }),
    ].join('\n') + '\n');
    expect((await open()).leases()).toEqual([{ ...lease(1), ip: '198.18.0.77' }]);
  });

  it('rejects a commit whose append fails, cuts the journal back, puts the changes back, and writes them on the next commit', async () => {
    const s = await open();
    const m = model();
    m.set(lease(1));
    await s.commit(m.src);
    const before = (await readFile(s.journalFile)).length;
    // make the next append fail as a full disk would, after part of it was written
    const handle = (s as unknown as { journal: { write: (...a: unknown[]) => Promise<{ bytesWritten: number }> } }).journal;
    const real = handle.write.bind(handle);
    let fail = true;
    handle.write = async (buf: unknown, off: unknown, len: unknown) => {
      if (!fail) return real(buf, off, len);
      await real(Buffer.from('{"ip":"198.18.0.2","le'));
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    m.set(lease(2));
    await expect(s.commit(m.src)).rejects.toMatchObject({ code: 'ERR_STATE_WRITE', message: expect.stringContaining('ENOSPC') });
    expect((await readFile(s.journalFile)).length).toBe(before); // no partial record stays
    expect(m.pending()).toEqual([lease(2).ip]);
    expect(s.writeFailures).toBe(1);
    fail = false; // space is back
    await s.commit(m.src);
    expect((await open()).leases()).toEqual([lease(1), lease(2)]);
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
    await expect(FileLeaseStore.open(dir)).rejects.toMatchObject({ code: 'ERR_STATE_CORRUPT', message: expect.stringContaining('leases.json') });
  });
});
