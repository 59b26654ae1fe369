/**
 * Host records in the embedded store (<state>/hosts-state.json, lowdb over
 * DurableJsonFile: temp file, fsync, rename): each host's recent boots with
 * their timelines and smoke results, and its inventory summary. The
 * after-boot code sees it as a HostRecordStore (src/afterboot/host-records.ts).
 *
 * bootd serve is the only writer. A durable `put` resolves once this
 * moment's changes are on disk; puts in the same moment share one write.
 * Timeline events (`durable: false`) are gathered into one rewrite every
 * quarter second (events.log has them at once). The CLI reads the file
 * through `FileHostRecords.reader`, whether or not bootd runs.
 *
 * `get` hands out the stored object itself (no copy): the tracker changes
 * it and puts it back, and nothing else writes here.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import type { BootRecord, HostRecord } from '../afterboot/record.js';
import type { InventoryEntry } from '../afterboot/inventory.js';
import { readerOver, type HostEvent, type HostQuery, type HostRecordReader, type HostRecordStore, type HostSummary, type Page, type PageQuery } from '../afterboot/host-records.js';
import type { Clock } from '../net/clock.js';
import { DurableJsonFile } from './durable-json-file.js';
import { MomentWriter } from './moment-writer.js';

interface HostDoc {
  version: 1;
  hosts: Record<string, HostRecord>;
  inventory: Record<string, InventoryEntry>;
}

const HOST_STORE_FILE = 'hosts-state.json';
/** How long timeline events may wait to be gathered into one write. */
const SOON_MS = 250;

function empty(): HostDoc {
  return { version: 1, hosts: {}, inventory: {} };
}

function readerOf(doc: HostDoc): HostRecordReader {
  return readerOver(doc.hosts, doc.inventory);
}

export class FileHostRecords implements HostRecordStore {
  private readonly writer = new MomentWriter(async () => {
    await this.db.write();
    this.writes++;
  });
  private soon: { readonly settle: () => void; readonly timer: { cancel(): void } } | null = null;
  private soonDone: Promise<void> | null = null;
  private readonly view: HostRecordReader;
  writes = 0;

  private constructor(
    private readonly db: Low<HostDoc>,
    readonly file: string,
    private readonly clock: Pick<Clock, 'setTimer'>,
  ) {
    this.view = readerOf(db.data);
  }

  static async open(stateDir: string, clock: Pick<Clock, 'setTimer'>): Promise<FileHostRecords> {
    await fs.mkdir(stateDir, { recursive: true });
    const file = path.join(stateDir, HOST_STORE_FILE);
    const db = new Low<HostDoc>(new DurableJsonFile<HostDoc>(file), empty());
    await db.read();
    if (typeof db.data.hosts !== 'object' || db.data.hosts === null) db.data = empty();
    db.data.inventory ??= {};
    return new FileHostRecords(db, file, clock);
  }

  /** The records in `stateDir` as they are on disk now, read only; empty when bootd never ran there. */
  static async reader(stateDir: string): Promise<HostRecordReader> {
    const d = await new DurableJsonFile<HostDoc>(path.join(stateDir, HOST_STORE_FILE)).read();
    return readerOf(d && typeof d.hosts === 'object' && d.hosts !== null ? { ...d, inventory: d.inventory ?? {} } : empty());
  }

  get(name: string): Promise<HostRecord | undefined> {
    return this.view.get(name);
  }

  inventory(name: string): Promise<InventoryEntry | undefined> {
    return this.view.inventory(name);
  }

  list(q?: HostQuery): Promise<Page<HostSummary>> {
    return this.view.list(q);
  }

  boots(name: string, q?: PageQuery): Promise<Page<BootRecord>> {
    return this.view.boots(name, q);
  }

  events(q?: PageQuery): Promise<Page<HostEvent>> {
    return this.view.events(q);
  }

  put(rec: HostRecord, durable: boolean): Promise<void> {
    this.db.data.hosts[rec.name] = rec;
    return durable ? this.writer.request() : this.saveSoon();
  }

  putInventory(name: string, entry: InventoryEntry): Promise<void> {
    this.db.data.inventory[name] = entry;
    return this.writer.request();
  }

  /** One write within SOON_MS for everything changed meanwhile. */
  private saveSoon(): Promise<void> {
    if (this.soonDone) return this.soonDone;
    this.soonDone = new Promise<void>((resolve, reject) => {
      this.soon = {
        settle: () => this.writer.request().then(resolve, reject),
        timer: this.clock.setTimer(SOON_MS, () => this.flushSoon()),
      };
    });
    return this.soonDone;
  }

  private flushSoon(): void {
    const s = this.soon;
    if (!s) return;
    s.timer.cancel();
    this.soon = null;
    this.soonDone = null;
    s.settle();
  }

  /** Writes what is pending, then waits for the writes in flight. */
  async close(): Promise<void> {
    this.flushSoon();
    await this.writer.settled();
  }
}
