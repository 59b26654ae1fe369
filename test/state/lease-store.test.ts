import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lease } from '../../src/dhcp/leases.js';
import { LeaseStore } from '../../src/state/lease-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lease = (n: number): Lease => ({ mac: `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`, ip: `198.18.0.${n}`, expiresAt: 1000 + n });

describe('LeaseStore', () => {
  it('starts empty and reads back what it committed', async () => {
    const s = await LeaseStore.open(dir);
    expect(s.leases()).toEqual([]);
    await s.commit(() => [lease(1), lease(2)]);
    const again = await LeaseStore.open(dir);
    expect(again.leases()).toEqual([lease(1), lease(2)]);
  });

  it('shares one write among the commits of one moment, and each sees its lease on disk', async () => {
    const s = await LeaseStore.open(dir);
    const leases: Lease[] = [];
    const commits: Promise<void>[] = [];
    for (let i = 1; i <= 100; i++) {
      leases.push(lease(i));
      commits.push(s.commit(() => [...leases]));
    }
    await Promise.all(commits);
    expect(s.writes).toBe(1);
    expect((await LeaseStore.open(dir)).leases()).toHaveLength(100);
  });

  it('a change made during a write goes into the next write, not lost', async () => {
    const s = await LeaseStore.open(dir);
    const leases: Lease[] = [lease(1)];
    const first = s.commit(() => [...leases]);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r)); // the first write has taken its snapshot
    leases.push(lease(2));
    const second = s.commit(() => [...leases]);
    await Promise.all([first, second]);
    expect((await LeaseStore.open(dir)).leases()).toEqual([lease(1), lease(2)]);
    expect(s.writes).toBe(2);
  });

  it('leaves no temporary files behind', async () => {
    const s = await LeaseStore.open(dir);
    await s.commit(() => [lease(1)]);
    expect(await readdir(dir)).toEqual(['leases.json']);
  });

  it('refuses to start on a corrupt file, naming it, rather than starting empty and losing leases', async () => {
    await writeFile(path.join(dir, 'leases.json'), '{"version":1,"leases":[{"mac":');
    await expect(LeaseStore.open(dir)).rejects.toMatchObject({ code: 'ERR_STATE_CORRUPT', message: expect.stringContaining('leases.json') });
  });
});
