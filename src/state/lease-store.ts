/**
 * Leases on disk: a snapshot (lowdb over DurableJsonFile: temp file, fsync,
 * rename) plus an append-only journal of changes since it.
 *
 * `commit()` resolves once the changes of this moment are durable: they are
 * appended to the journal (opened O_DSYNC) as JSON lines, so a batch of a
 * thousand ACKs costs one small write and one sync, not a rewrite of every
 * lease. When the journal grows past `compactAfter` records, the full set is
 * written as a new snapshot and the journal truncated.
 *
 * Recovery reads the snapshot, then replays the journal in order. Replay is
 * idempotent (each record is a lease's full state, or its removal), so a
 * crash between the snapshot's rename and the journal's truncation is
 * harmless. A torn last line, from a crash in the middle of an append, was
 * never synced and so never acknowledged: it is skipped.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import type { Lease } from '../dhcp/leases.js';
import { DurableJsonFile } from './durable-json-file.js';
import { MomentWriter } from './moment-writer.js';

interface LeaseDoc {
  version: 1;
  leases: Lease[];
}

/** One journal record: the lease as it now is, or its removal. */
export interface LeaseChange {
  readonly mac: string;
  readonly lease: Lease | undefined;
}

export interface CommitSource {
  /** Changes since the previous write; called once, just before the write starts. */
  readonly changes: () => LeaseChange[];
  /** Every current lease, for compaction. */
  readonly all: () => Lease[];
}

export const DEFAULT_COMPACT_AFTER = 50_000;

export class LeaseStore {
  private source: CommitSource | null = null;
  private readonly writer = new MomentWriter(() => {
    const src = this.source;
    return src ? this.write(src.changes(), src.all) : Promise.resolve();
  });
  private journalRecords = 0;
  /** Number of journal appends and snapshot rewrites, for tests and stats. */
  writes = 0;
  compactions = 0;

  private constructor(
    private readonly db: Low<LeaseDoc>,
    readonly file: string,
    private readonly journal: fs.FileHandle,
    private readonly loaded: Lease[],
    private readonly compactAfter: number,
  ) {}

  /**
   * `sync: false` leaves out O_DSYNC: for the DHCP warm-up's scratch store
   * only (src/dhcp/warmup.ts), which must run the same code but need not
   * wait for a disk.
   */
  static async open(stateDir: string, compactAfter = DEFAULT_COMPACT_AFTER, opts: { readonly sync?: boolean } = {}): Promise<LeaseStore> {
    await fs.mkdir(stateDir, { recursive: true });
    const file = path.join(stateDir, 'leases.json');
    const db = new Low<LeaseDoc>(new DurableJsonFile<LeaseDoc>(file), { version: 1, leases: [] });
    await db.read();
    if (!Array.isArray(db.data.leases)) db.data = { version: 1, leases: [] };
    const byMac = new Map(db.data.leases.map((l) => [l.mac, l]));
    const journalFile = path.join(stateDir, 'leases.journal');
    let records = 0;
    const text = await fs.readFile(journalFile, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)));
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let rec: LeaseChange;
      try {
        rec = JSON.parse(line) as LeaseChange;
      } catch {
        continue; // a torn append: never synced, never acknowledged
      }
      if (rec.lease) byMac.set(rec.mac, rec.lease);
      else byMac.delete(rec.mac);
      records++;
    }
    // O_DSYNC: each append returns only once its data is on disk, so a batch costs
    // one write job on libuv's thread pool instead of a write and an fdatasync
    const sync = opts.sync === false ? 0 : constants.O_DSYNC;
    const journal = await fs.open(journalFile, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | sync, 0o600);
    const store = new LeaseStore(db, file, journal, [...byMac.values()], compactAfter);
    store.journalRecords = records;
    return store;
  }

  /** The leases as recovered at open. */
  leases(): Lease[] {
    return this.loaded;
  }

  get journalFile(): string {
    return path.join(path.dirname(this.file), 'leases.journal');
  }

  /** Makes this moment's changes durable; commits in the same moment share one write. */
  commit(src: CommitSource): Promise<void> {
    // read when the moment's write starts; every caller passes the same table's view
    this.source = src;
    return this.writer.request();
  }

  private async write(changes: LeaseChange[], all: () => Lease[]): Promise<void> {
    if (changes.length > 0) {
      await this.journal.write(changes.map((c) => JSON.stringify(c)).join('\n') + '\n');
      this.journalRecords += changes.length;
      this.writes++;
    }
    if (this.journalRecords >= this.compactAfter) {
      // the snapshot holds everything the journal says; then the journal can go
      this.db.data = { version: 1, leases: all() };
      await this.db.write();
      await this.journal.truncate(0);
      await this.journal.datasync();
      this.journalRecords = 0;
      this.compactions++;
    }
  }

  async close(): Promise<void> {
    await this.writer.settled();
    await this.journal.close();
  }
}
