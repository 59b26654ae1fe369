/**
 * Where the after-boot code keeps what it learns about hosts: each host's
 * recent boots (timelines, smoke results) and its inventory. Declared here,
 * by the code that uses it; implemented in src/state/ (the durable JSON
 * file, memory) and later by a database, so everything is asynchronous.
 *
 * Ownership: a record `get` returns is the caller's to change until it
 * `put`s it back; an implementation may hand out copies (memory, a
 * database) or its own object (the file), so a caller never keeps one
 * across a put of someone else. The tracker changes one host at a time
 * (src/afterboot/tracker.ts), so no two changes of a host race.
 */
import type { InventoryEntry } from './inventory.js';
import type { BootRecord, HostRecord, Phase, TimelineEvent } from './record.js';

export interface PageQuery {
  /** Items to skip (default 0). */
  readonly offset?: number;
  /** At most this many (default 100, at most 1,000). */
  readonly limit?: number;
}

export interface HostQuery extends PageQuery {
  /** Only hosts whose last boot is in this phase. */
  readonly phase?: Phase;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** How many there are in all (for paging). */
  readonly total: number;
  readonly offset: number;
}

/** One row of the host list: the host's last boot and what it has of an inventory. */
export interface HostSummary {
  readonly name: string;
  readonly last: BootRecord | null;
  readonly boots: number;
  readonly inventory: InventoryEntry | null;
}

/** A timeline event with the host and boot it belongs to (the newest-events feed). */
export interface HostEvent extends TimelineEvent {
  readonly host: string;
  readonly boot: string;
}

/** What reading needs (the CLI, the dashboard): never the layout of a store. */
export interface HostRecordReader {
  get(name: string): Promise<HostRecord | undefined>;
  inventory(name: string): Promise<InventoryEntry | undefined>;
  /** Hosts by name. */
  list(q?: HostQuery): Promise<Page<HostSummary>>;
  /** One host's boots, newest first. */
  boots(name: string, q?: PageQuery): Promise<Page<BootRecord>>;
  /** Timeline events of every host, newest first. */
  events(q?: PageQuery): Promise<Page<HostEvent>>;
}

export interface HostRecordStore extends HostRecordReader {
  /**
   * Stores a host's record. `durable: true` resolves once it is on disk (a
   * result someone is told about: a smoke result); false lets the store
   * gather a boot storm's timeline events into fewer writes (it still
   * resolves once written).
   */
  put(rec: HostRecord, durable: boolean): Promise<void>;
  /** Stores a host's inventory summary; resolves once durable. */
  putInventory(name: string, entry: InventoryEntry): Promise<void>;
  /** Writes what is pending, then lets go of the store. */
  close(): Promise<void>;
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/** The page of `all` a query asks for (for implementations that hold everything in memory). */
export function pageOf<T>(all: readonly T[], q: PageQuery = {}): Page<T> {
  const offset = Math.max(0, Math.floor(q.offset ?? 0));
  const limit = Math.min(MAX_PAGE, Math.max(0, Math.floor(q.limit ?? DEFAULT_PAGE)));
  return { items: all.slice(offset, offset + limit), total: all.length, offset };
}

/**
 * A reader over records and inventories held in memory (the file store's
 * document, the PostgreSQL store's copy): it reads the objects as they are
 * when asked, so a store that changes them in place keeps one view.
 */
export function readerOver(hosts: Readonly<Record<string, HostRecord>>, inventory: Readonly<Record<string, InventoryEntry>>): HostRecordReader {
  return {
    get: (name) => Promise.resolve(hosts[name]),
    inventory: (name) => Promise.resolve(inventory[name]),
    list: (q) => Promise.resolve(queryHosts(hosts, inventory, q)),
    boots: (name, q) => Promise.resolve(queryBoots(hosts[name], q)),
    events: (q) => Promise.resolve(queryEvents(hosts, q)),
  };
}

/** The queries over a whole set of records held in memory: shared by the file and memory stores. */
export function queryHosts(hosts: Readonly<Record<string, HostRecord>>, inventory: Readonly<Record<string, InventoryEntry>>, q: HostQuery = {}): Page<HostSummary> {
  const rows: HostSummary[] = [];
  for (const name of Object.keys(hosts).sort()) {
    const rec = hosts[name] as HostRecord;
    const last = rec.boots[rec.boots.length - 1] ?? null;
    if (q.phase !== undefined && last?.phase !== q.phase) continue;
    rows.push({ name, last, boots: rec.boots.length, inventory: inventory[name] ?? null });
  }
  return pageOf(rows, q);
}

export function queryBoots(rec: HostRecord | undefined, q: PageQuery = {}): Page<BootRecord> {
  return pageOf(rec ? [...rec.boots].reverse() : [], q);
}

export function queryEvents(hosts: Readonly<Record<string, HostRecord>>, q: PageQuery = {}): Page<HostEvent> {
  const all: HostEvent[] = [];
  for (const rec of Object.values(hosts)) for (const b of rec.boots) for (const e of b.events) all.push({ ...e, host: rec.name, boot: b.id });
  // ISO times sort as strings; ties keep host and boot order stable
  all.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  return pageOf(all, q);
}
