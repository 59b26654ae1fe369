/**
 * Per-host records in the embedded store (<state>/hosts-state.json, lowdb
 * over DurableJsonFile: temp file, fsync, rename): each host's recent boots
 * with their timelines and smoke results, and its inventory summary.
 *
 * bootd serve is the only writer. `save()` resolves once this moment's
 * changes are on disk; saves in the same moment share one write. Results
 * someone is told about (a smoke result, an inventory) are saved so; plain
 * timeline events use `saveSoon()`, which gathers a boot storm's events
 * into one rewrite every quarter second (events.log has them at once). The CLI reads the file directly
 * (`bootd status`, `bootd hosts show`), whether or not bootd runs.
 */
import path from 'node:path';
import { Low } from 'lowdb';
import type { HostRecord } from '../afterboot/record.js';
import type { InventoryEntry } from '../afterboot/inventory.js';
import { DurableJsonFile } from './durable-json-file.js';
import { MomentWriter } from './moment-writer.js';

export interface HostDoc {
  version: 1;
  hosts: Record<string, HostRecord>;
  inventory: Record<string, InventoryEntry>;
}

export const HOST_STORE_FILE = 'hosts-state.json';

function empty(): HostDoc {
  return { version: 1, hosts: {}, inventory: {} };
}

export class HostStore {
  private readonly writer = new MomentWriter(async () => {
    await this.db.write();
    this.writes++;
  });
  private soon: NodeJS.Timeout | null = null;
  writes = 0;

  private constructor(
    private readonly db: Low<HostDoc>,
    readonly file: string,
  ) {}

  static async open(stateDir: string): Promise<HostStore> {
    const file = path.join(stateDir, HOST_STORE_FILE);
    const db = new Low<HostDoc>(new DurableJsonFile<HostDoc>(file), empty());
    await db.read();
    if (typeof db.data.hosts !== 'object' || db.data.hosts === null) db.data = empty();
    db.data.inventory ??= {};
    return new HostStore(db, file);
  }

  /** The store as it is on disk, for the CLI; empty when bootd never ran here. */
  static async read(stateDir: string): Promise<HostDoc> {
    const d = await new DurableJsonFile<HostDoc>(path.join(stateDir, HOST_STORE_FILE)).read();
    return d && typeof d.hosts === 'object' ? { ...d, inventory: d.inventory ?? {} } : empty();
  }

  get data(): HostDoc {
    return this.db.data;
  }

  host(name: string): HostRecord {
    const h = (this.db.data.hosts[name] ??= { name, boots: [] });
    return h;
  }

  /** Writes the current document; resolves once it is durable. */
  save(): Promise<void> {
    return this.writer.request();
  }

  /** Saves within `ms` (one write for everything changed meanwhile). */
  saveSoon(ms = 250): void {
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      void this.save().catch(() => {});
    }, ms);
    this.soon.unref();
  }

  /** Writes what is pending, then waits for the writes in flight. */
  async close(): Promise<void> {
    if (this.soon) {
      clearTimeout(this.soon);
      this.soon = null;
      await this.save().catch(() => {});
    }
    await this.writer.settled();
  }
}
