/**
 * The store contract: what every implementation of the store interfaces
 * (src/dhcp/lease-store.ts, src/afterboot/host-records.ts,
 * src/machines/registry.ts MachineStore) must do, as one suite that
 * contract.test.ts runs against each of them: the durable files and memory
 * today, PostgreSQL next.
 */
import { describe, expect, it } from 'vitest';
import type { HostRecordStore } from '../../src/afterboot/host-records.js';
import type { InventoryEntry } from '../../src/afterboot/inventory.js';
import type { BootRecord, HostRecord } from '../../src/afterboot/record.js';
import type { LeaseChange, LeaseStore } from '../../src/dhcp/lease-store.js';
import type { Lease } from '../../src/dhcp/leases.js';
import type { Machine, MachineStore } from '../../src/machines/registry.js';

/** Makes a fresh, empty store, and reopens one (after its close) as the next start of bootd would. */
export interface StoreMaker<S> {
  readonly make: () => Promise<S>;
  readonly reopen: (closed: S) => Promise<S>;
}

const lease = (n: number, over: Partial<Lease> = {}): Lease => ({ mac: `52:54:00:00:01:${n.toString(16).padStart(2, '0')}`, ip: `198.18.0.${n}`, expiresAt: 1_900_000_000_000 + n, ...over });
const byIp = (ls: readonly Lease[]): Lease[] => [...ls].sort((a, b) => (a.ip < b.ip ? -1 : 1));

/** A commit source over a plain list of pending changes, as the lease table is one. */
function pending(): { add(c: LeaseChange): void; src: { changes: () => LeaseChange[]; all: () => Lease[]; putBack: (c: readonly LeaseChange[]) => void }; taken: number } {
  let queue: LeaseChange[] = [];
  const state = new Map<string, Lease>();
  const p = {
    taken: 0,
    add(c: LeaseChange) {
      queue.push(c);
      if (c.lease) state.set(c.ip, c.lease);
      else state.delete(c.ip);
    },
    src: {
      changes: () => {
        p.taken++;
        const out = queue;
        queue = [];
        return out;
      },
      all: () => [...state.values()],
      putBack: (c: readonly LeaseChange[]) => void (queue = [...c, ...queue]),
    },
  };
  return p;
}

export function leaseStoreContract(name: string, m: StoreMaker<LeaseStore>): void {
  describe(`LeaseStore contract: ${name}`, () => {
    it('starts empty; what a commit resolved for is there after a reopen, removals included', async () => {
      const s = await m.make();
      expect(await s.load()).toEqual([]);
      const p = pending();
      p.add({ ip: '198.18.0.1', lease: lease(1) });
      p.add({ ip: '198.18.0.2', lease: lease(2) });
      p.add({ ip: '198.18.0.3', lease: lease(3) });
      await s.commit(p.src);
      p.add({ ip: '198.18.0.2', lease: undefined });
      p.add({ ip: '198.18.0.3', lease: lease(3, { state: 'released' }) });
      await s.commit(p.src);
      await s.close();
      const again = await m.reopen(s);
      expect(byIp(await again.load())).toEqual([lease(1), lease(3, { state: 'released' })]);
      await again.close();
    });

    it('commits of one moment share one write: the changes are taken once, and every commit resolves after it', async () => {
      const s = await m.make();
      const p = pending();
      const waits: Promise<void>[] = [];
      for (let i = 1; i <= 50; i++) {
        p.add({ ip: `198.18.0.${i}`, lease: lease(i) });
        waits.push(s.commit(p.src));
      }
      await Promise.all(waits);
      expect(p.taken).toBe(1);
      expect(await s.load().then((ls) => ls.length)).toBeGreaterThanOrEqual(0); // readable while open
      await s.close();
      const again = await m.reopen(s);
      expect(await again.load()).toHaveLength(50);
      await again.close();
    });

    it('a change made while a write is in flight goes into the next write, and close waits for it', async () => {
      const s = await m.make();
      const p = pending();
      p.add({ ip: '198.18.0.1', lease: lease(1) });
      const first = s.commit(p.src);
      await new Promise((r) => setTimeout(r, 5)); // the first write has taken its changes
      p.add({ ip: '198.18.0.2', lease: lease(2) });
      const second = s.commit(p.src);
      await Promise.all([first, second]);
      expect(p.taken).toBe(2);
      p.add({ ip: '198.18.0.3', lease: lease(3) });
      void s.commit(p.src);
      await s.close(); // the commit nobody waited for is durable once close resolves
      const again = await m.reopen(s);
      expect(byIp(await again.load()).map((l) => l.ip)).toEqual(['198.18.0.1', '198.18.0.2', '198.18.0.3']);
      await again.close();
    });
  });
}

const at = (min: number): string => new Date(Date.UTC(2026, 11, 1, 8, min)).toISOString();

function boot(id: string, min: number, phase: BootRecord['phase'], events = 2): BootRecord {
  return {
    id,
    startedAt: at(min),
    mac: '52:54:00:00:02:01',
    ip: '198.18.0.9',
    phase,
    updatedAt: at(min + events),
    events: Array.from({ length: events }, (_, i) => ({ at: at(min + i), kind: i === 0 ? 'dhcp' : 'file', text: `${id} event ${i}` })),
  };
}

const inventory = (cpu: string): InventoryEntry => ({ receivedAt: at(30), bytes: 100, file: 'inventory/x.json', collectedAt: null, summary: { cpu: { model: cpu, threads: 4, sockets: 1 }, memoryMiB: 1024, disks: [], nics: [], pcieDevices: 3 } }) as unknown as InventoryEntry;

export function hostRecordsContract(name: string, m: StoreMaker<HostRecordStore>): void {
  describe(`HostRecordStore contract: ${name}`, () => {
    it('keeps what is put: a durable put at once, a gathered one by close; both there after a reopen', async () => {
      const s = await m.make();
      expect(await s.get('a')).toBeUndefined();
      const a: HostRecord = { name: 'a', boots: [boot('a1', 0, 'kernel')] };
      await s.put(a, true);
      expect(await s.get('a')).toEqual(a);
      const b: HostRecord = { name: 'b', boots: [boot('b1', 1, 'dhcp')] };
      void s.put(b, false);
      await s.putInventory('a', inventory('EPYC'));
      expect(await s.inventory('a')).toEqual(inventory('EPYC'));
      await s.close();
      const again = await m.reopen(s);
      expect(await again.get('a')).toEqual(a);
      expect(await again.get('b')).toEqual(b);
      expect(await again.inventory('a')).toEqual(inventory('EPYC'));
      expect(await again.inventory('b')).toBeUndefined();
      await again.close();
    });

    it('lists hosts by name with their last boot, by phase, and in pages', async () => {
      const s = await m.make();
      for (const [i, n] of ['c', 'a', 'd', 'b'].entries()) await s.put({ name: n, boots: [boot(`${n}1`, i, 'dhcp'), boot(`${n}2`, 10 + i, i % 2 === 0 ? 'up' : 'smoke-passed')] }, true);
      await s.putInventory('b', inventory('Xeon'));
      const all = await s.list();
      expect(all.total).toBe(4);
      expect(all.items.map((h) => h.name)).toEqual(['a', 'b', 'c', 'd']);
      expect(all.items[1]).toMatchObject({ name: 'b', boots: 2, last: { id: 'b2' }, inventory: { summary: { cpu: { model: 'Xeon' } } } });
      expect((await s.list({ phase: 'up' })).items.map((h) => h.name)).toEqual(['c', 'd']);
      const page = await s.list({ offset: 1, limit: 2 });
      expect(page).toMatchObject({ total: 4, offset: 1 });
      expect(page.items.map((h) => h.name)).toEqual(['b', 'c']);
      await s.close();
    });

    it("gives one host's boots newest first, and every host's events newest first, in pages", async () => {
      const s = await m.make();
      await s.put({ name: 'a', boots: [boot('a1', 0, 'kernel', 3), boot('a2', 20, 'up', 2)] }, true);
      await s.put({ name: 'b', boots: [boot('b1', 10, 'dhcp', 2)] }, true);
      const boots = await s.boots('a');
      expect(boots.items.map((b) => b.id)).toEqual(['a2', 'a1']);
      expect((await s.boots('a', { offset: 1, limit: 5 })).items.map((b) => b.id)).toEqual(['a1']);
      expect((await s.boots('nobody')).total).toBe(0);
      const ev = await s.events({ limit: 3 });
      expect(ev.total).toBe(7);
      expect(ev.items.map((e) => `${e.host}/${e.boot}@${e.at.slice(11, 16)}`)).toEqual(['a/a2@08:21', 'a/a2@08:20', 'b/b1@08:11']);
      await s.close();
    });
  });
}

const machine = (name: string, port: number): Machine => ({ name, port, owner: { ip: '198.18.0.9' }, quotaBytes: 1 << 20, overwrite: true, openedAt: at(0), expiresAt: null, source: 'cli' });

export function machineStoreContract<S extends MachineStore = MachineStore>(name: string, m: StoreMaker<S>): void {
  describe(`MachineStore contract: ${name}`, () => {
    it('starts empty; the last saved assignment is what a reopen loads', async () => {
      const s = await m.make();
      expect(await s.load()).toEqual([]);
      await s.save([machine('a', 1070), machine('b', 1071)]);
      await s.save([machine('b', 1071)]);
      const again = await m.reopen(s);
      expect(await again.load()).toEqual([machine('b', 1071)]);
    });
  });
}
