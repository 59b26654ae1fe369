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
 * idempotent (each record is a lease's full state, or its removal, keyed by
 * address), so a crash between the snapshot's rename and the journal's
 * truncation is harmless. A torn tail (power lost in the middle of an
 * append) was never synced and so never acknowledged: recovery drops it and
 * cuts the file back to the last whole record, so the next append starts on
 * a line of its own instead of being glued onto the torn bytes.
 *
 * A failed or short append (ENOSPC, EIO) rejects the commit: nothing that
 * waits on it is acknowledged. The journal is cut back to where the batch
 * began and the batch's changes go back to the source (`putBack`), so the
 * next commit writes them again once the disk has room.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import type { Lease } from '../dhcp/leases.js';
import type { CommitSource, LeaseChange, LeaseReader, LeaseStore } from '../dhcp/lease-store.js';
import { DurableJsonFile } from './durable-json-file.js';
import { MomentWriter } from './moment-writer.js';

interface LeaseDoc {
  version: 1 | 2;
  leases: Lease[];
}

/** A record written before leases were keyed by address (by MAC then). */
interface LegacyChange {
  readonly mac: string;
  readonly lease: Lease | undefined;
}

/** A journal append that failed or was cut short: the commit's changes are not durable. */
export class LeaseWriteError extends Error {
  readonly code = 'ERR_STATE_WRITE';
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`lease journal ${file}: ${(cause as Error).message}`, { cause });
    this.name = 'LeaseWriteError';
  }
}

export const DEFAULT_COMPACT_AFTER = 50_000;

/** The embedded default: a journal of LeaseChange records (the dhcp/ interface's type) over a snapshot. */
export class FileLeaseStore implements LeaseStore {
  private source: CommitSource | null = null;
  private readonly writer = new MomentWriter(() => {
    const src = this.source;
    return src ? this.write(src) : Promise.resolve();
  });
  private journalRecords = 0;
  /** Bytes of whole records in the journal: where a failed append is cut back to. */
  private journalBytes = 0;
  /** Number of journal appends and snapshot rewrites, for tests and stats. */
  writes = 0;
  compactions = 0;
  /** Appends that failed (the commit rejected) and compactions that failed (retried later). */
  writeFailures = 0;
  compactionFailures = 0;
  /** Torn bytes cut off the journal's tail at open. */
  readonly tornBytes: number;

  private constructor(
    private readonly db: Low<LeaseDoc>,
    readonly file: string,
    private readonly journal: fs.FileHandle,
    private readonly loaded: Lease[],
    private readonly compactAfter: number,
    tornBytes: number,
  ) {
    this.tornBytes = tornBytes;
  }

  /**
   * `sync: false` leaves out O_DSYNC: for the DHCP warm-up's scratch store
   * only (src/dhcp/warmup.ts), which must run the same code but need not
   * wait for a disk.
   */
  static async open(stateDir: string, compactAfter = DEFAULT_COMPACT_AFTER, opts: { readonly sync?: boolean } = {}): Promise<FileLeaseStore> {
    await fs.mkdir(stateDir, { recursive: true });
    const file = path.join(stateDir, 'leases.json');
    const db = new Low<LeaseDoc>(new DurableJsonFile<LeaseDoc>(file), { version: 2, leases: [] });
    const r = await recover(db, path.join(stateDir, 'leases.journal'));
    const journalFile = path.join(stateDir, 'leases.journal');
    // O_DSYNC: each append returns only once its data is on disk, so a batch costs
    // one write job on libuv's thread pool instead of a write and an fdatasync
    const sync = opts.sync === false ? 0 : constants.O_DSYNC;
    const journal = await fs.open(journalFile, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | sync, 0o600);
    if (r.tornBytes > 0) {
      // cut the torn tail off, durably, before anything is appended after it
      await journal.truncate(r.wholeBytes);
      await journal.datasync();
    }
    const store = new FileLeaseStore(db, file, journal, r.leases, compactAfter, r.tornBytes);
    store.journalRecords = r.records;
    store.journalBytes = r.wholeBytes;
    return store;
  }

  /** The leases in `stateDir` as recovery would see them, read only (for `bootd leases` beside a running server). */
  static async read(stateDir: string): Promise<Lease[]> {
    const db = new Low<LeaseDoc>(new DurableJsonFile<LeaseDoc>(path.join(stateDir, 'leases.json')), { version: 2, leases: [] });
    return (await recover(db, path.join(stateDir, 'leases.journal'))).leases;
  }

  /** A reader of the leases in `stateDir` as recovery would see them, read only (for `bootd leases` beside a running server). */
  static reader(stateDir: string): LeaseReader {
    return { list: () => FileLeaseStore.read(stateDir) };
  }

  /** The leases as recovered at open. */
  leases(): Lease[] {
    return this.loaded;
  }

  load(): Promise<Lease[]> {
    return Promise.resolve(this.loaded);
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

  private async write(src: CommitSource): Promise<void> {
    const changes = src.changes();
    if (changes.length > 0) {
      const buf = Buffer.from(changes.map((c) => JSON.stringify(c)).join('\n') + '\n');
      try {
        let off = 0;
        while (off < buf.length) {
          // a short write is legal; the rest is retried until it lands or fails
          const { bytesWritten } = await this.journal.write(buf, off, buf.length - off);
          if (bytesWritten <= 0) throw new Error(`wrote ${off} of ${buf.length} bytes`);
          off += bytesWritten;
        }
      } catch (err) {
        this.writeFailures++;
        // no partial record may stay: the next append would be glued onto it
        await this.journal.truncate(this.journalBytes).catch(() => {});
        src.putBack?.(changes);
        throw new LeaseWriteError(this.journalFile, err);
      }
      this.journalBytes += buf.length;
      this.journalRecords += changes.length;
      this.writes++;
    }
    if (this.journalRecords >= this.compactAfter) {
      // the snapshot holds everything the journal says; then the journal can go.
      // A failed compaction loses nothing (the journal still holds it all) and is tried again later.
      try {
        this.db.data = { version: 2, leases: src.all() };
        await this.db.write();
        await this.journal.truncate(0);
        await this.journal.datasync();
        this.journalRecords = 0;
        this.journalBytes = 0;
        this.compactions++;
      } catch {
        this.compactionFailures++;
      }
    }
  }

  async close(): Promise<void> {
    await this.writer.settled();
    await this.journal.close();
  }
}

/** Snapshot, then the journal's whole records in order; what follows the last newline is a torn append. */
async function recover(db: Low<LeaseDoc>, journalFile: string): Promise<{ leases: Lease[]; records: number; wholeBytes: number; tornBytes: number }> {
  await db.read();
  if (!Array.isArray(db.data.leases)) db.data = { version: 2, leases: [] };
  const byIp = new Map<string, Lease>(db.data.leases.map((l) => [l.ip, l]));
  const raw = await fs.readFile(journalFile).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? Buffer.alloc(0) : Promise.reject(err)));
  // only bytes up to the last newline are whole records; the rest is a torn append
  const whole = raw.lastIndexOf(0x0a) + 1;
  let records = 0;
  for (const line of raw.subarray(0, whole).toString('utf8').split('\n')) {
    if (line === '') continue;
    let rec: LeaseChange | LegacyChange;
    try {
      rec = JSON.parse(line) as LeaseChange | LegacyChange;
    } catch {
      continue; // damaged inside: a line glued onto a torn one by an older version
    }
    if ('ip' in rec && typeof rec.ip === 'string') {
      if (rec.lease) byIp.set(rec.ip, rec.lease);
      else byIp.delete(rec.ip);
    } else if ('mac' in rec) {
      // a record from the MAC-keyed journal: the MAC had one lease
      for (const [ip, l] of byIp) if (l.mac === rec.mac) byIp.delete(ip);
      if (rec.lease) byIp.set(rec.lease.ip, rec.lease);
    }
    records++;
  }
  return { leases: [...byIp.values()], records, wholeBytes: whole, tornBytes: raw.length - whole };
}
