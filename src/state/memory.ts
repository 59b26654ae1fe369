/**
 * The stores in memory: the same interfaces as the durable files
 * (src/state/lease-store.ts, host-records.ts, machine-store.ts), nothing kept past the
 * process. For unit tests of the code that uses the stores and for scratch
 * work (the DHCP warm-up when no scratch folder can be made). Commits still
 * resolve on a later turn, as a real store's do, and records are copied in
 * and out, as a database's are, so code that leans on either shows up here.
 */
import type { CommitSource, LeaseReader, LeaseStore } from '../dhcp/lease-store.js';
import type { Lease } from '../dhcp/leases.js';
import { queryBoots, queryEvents, queryHosts, type HostQuery, type HostRecordStore, type Page, type PageQuery, type HostEvent, type HostSummary } from '../afterboot/host-records.js';
import type { InventoryEntry } from '../afterboot/inventory.js';
import type { BootRecord, HostRecord } from '../afterboot/record.js';
import type { Machine, MachineStore } from '../machines/registry.js';
import { MomentWriter } from './moment-writer.js';

export class MemoryLeaseStore implements LeaseStore, LeaseReader {
  private readonly byIp = new Map<string, Lease>();
  private source: CommitSource | null = null;
  private readonly writer = new MomentWriter(() => {
    const src = this.source;
    if (src) for (const c of src.changes()) {
      if (c.lease) this.byIp.set(c.ip, c.lease);
      else this.byIp.delete(c.ip);
    }
    this.writes++;
    return Promise.resolve();
  });
  writes = 0;

  constructor(initial: readonly Lease[] = []) {
    for (const l of initial) this.byIp.set(l.ip, l);
  }

  load(): Promise<Lease[]> {
    return Promise.resolve([...this.byIp.values()]);
  }

  list(): Promise<Lease[]> {
    return this.load();
  }

  commit(src: CommitSource): Promise<void> {
    this.source = src;
    return this.writer.request();
  }

  async close(): Promise<void> {
    await this.writer.settled();
  }
}

export class MemoryHostRecords implements HostRecordStore {
  private readonly hosts: Record<string, HostRecord> = {};
  private readonly inv: Record<string, InventoryEntry> = {};
  writes = 0;

  get(name: string): Promise<HostRecord | undefined> {
    const r = this.hosts[name];
    return Promise.resolve(r === undefined ? undefined : structuredClone(r));
  }

  inventory(name: string): Promise<InventoryEntry | undefined> {
    const e = this.inv[name];
    return Promise.resolve(e === undefined ? undefined : structuredClone(e));
  }

  list(q?: HostQuery): Promise<Page<HostSummary>> {
    return Promise.resolve(structuredClone(queryHosts(this.hosts, this.inv, q)));
  }

  boots(name: string, q?: PageQuery): Promise<Page<BootRecord>> {
    return Promise.resolve(structuredClone(queryBoots(this.hosts[name], q)));
  }

  events(q?: PageQuery): Promise<Page<HostEvent>> {
    return Promise.resolve(structuredClone(queryEvents(this.hosts, q)));
  }

  async put(rec: HostRecord, _durable?: boolean): Promise<void> {
    this.hosts[rec.name] = structuredClone(rec);
    this.writes++;
    await new Promise<void>((r) => setImmediate(r));
  }

  async putInventory(name: string, entry: InventoryEntry): Promise<void> {
    this.inv[name] = structuredClone(entry);
    this.writes++;
    await new Promise<void>((r) => setImmediate(r));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class MemoryMachineStore implements MachineStore {
  private machines: Machine[] = [];
  load(): Promise<Machine[]> {
    return Promise.resolve(structuredClone(this.machines));
  }
  async save(machines: readonly Machine[]): Promise<void> {
    this.machines = structuredClone([...machines]);
    await new Promise<void>((r) => setImmediate(r));
  }
}
