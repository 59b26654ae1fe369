/**
 * Host records in PostgreSQL (tables host_record and host_inventory,
 * ./schema.ts), behind the HostRecordStore the after-boot code owns, shared
 * by every instance on the database.
 *
 * Each instance holds every record in memory (the queries are those of the
 * file store, ../../afterboot/host-records.ts) and keeps it current by
 * LISTEN: a write is one statement that upserts the records of its moment
 * and calls pg_notify('bootd_host', '<instance> <host>') per host, and
 * PostgreSQL delivers notifications only after COMMIT, in commit order, so
 * a listener that reads the named rows on receipt sees what was committed.
 * A listener that lost its connection reconnects and reads everything again
 * (notifications are not queued for an absent listener). `onRemote` tells
 * the wiring which hosts another instance changed, so the dashboard and
 * `bootd status` show a boot served elsewhere within a second.
 *
 * Durability as in the file store: a durable put resolves after COMMIT
 * (synchronous_commit on, checked at open); timeline events (durable:
 * false) are gathered for a quarter second into one write. A failed write
 * keeps its changes pending and is retried.
 */
import pg from 'pg';
import type { InventoryEntry } from '../../afterboot/inventory.js';
import { readerOver, type HostEvent, type HostQuery, type HostRecordReader, type HostRecordStore, type HostSummary, type Page, type PageQuery } from '../../afterboot/host-records.js';
import type { BootRecord, HostRecord } from '../../afterboot/record.js';
import type { Clock, TimerHandle } from '../../net/clock.js';
import { MomentWriter } from '../moment-writer.js';
import { openPool } from './pool.js';

const CHANNEL = 'bootd_host';
/** How long timeline events may wait to be gathered into one write (as the file store). */
const SOON_MS = 250;
/** After a failed write, or a lost listener, try again this much later. */
const RETRY_MS = 1000;
/** Notifications that arrive together are read in one query after this long. */
const GATHER_MS = 10;

export interface PgHostRecordsOptions {
  readonly instance: string;
  readonly clock: Clock;
  /** Hosts whose record or inventory another instance changed, after they were read. */
  readonly onRemote?: (hosts: readonly string[], instance: string) => void;
}

/** The records in the database as they are now, read once (`bootd status --state-url`, beside running instances). */
export async function readHostRecords(url: string): Promise<HostRecordReader> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'bootd status' });
  await client.connect();
  try {
    const hosts: Record<string, HostRecord> = {};
    const inv: Record<string, InventoryEntry> = {};
    const have = (await client.query<{ t: string | null }>("SELECT to_regclass('host_record')::text AS t")).rows[0]?.t;
    if (have) {
      for (const r of (await client.query<{ name: string; record: HostRecord }>('SELECT name, record FROM host_record')).rows) hosts[r.name] = r.record;
      for (const r of (await client.query<{ name: string; entry: InventoryEntry }>('SELECT name, entry FROM host_inventory')).rows) inv[r.name] = r.entry;
    }
    return readerOver(hosts, inv);
  } finally {
    await client.end().catch(() => {});
  }
}

const ONE_RECORD = 'SELECT record FROM host_record WHERE name = $1';

/** One host's record as the database has it now (`bootd logs NAME --state-url`); undefined: none. */
export async function readHostRecord(url: string, name: string): Promise<HostRecord | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'bootd logs' });
  await client.connect();
  try {
    const have = (await client.query<{ t: string | null }>("SELECT to_regclass('host_record')::text AS t")).rows[0]?.t;
    if (!have) return undefined;
    return (await client.query<{ record: HostRecord }>(ONE_RECORD, [name])).rows[0]?.record;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Hands `onRecord` the host's record once a second, on one connection, until
 * `signal` aborts (`bootd logs -f --state-url`: the caller prints what is new).
 */
export async function followHostRecord(url: string, name: string, onRecord: (rec: HostRecord | undefined) => void, signal: AbortSignal): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'bootd logs -f' });
  await client.connect();
  try {
    while (!signal.aborted) {
      onRecord((await client.query<{ record: HostRecord }>(ONE_RECORD, [name])).rows[0]?.record);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
    }
  } finally {
    await client.end().catch(() => {});
  }
}

export class PgHostRecords implements HostRecordStore {
  private readonly hosts: Record<string, HostRecord> = {};
  private readonly inv: Record<string, InventoryEntry> = {};
  private dirty = new Set<string>();
  private dirtyInv = new Set<string>();
  private readonly writer = new MomentWriter(() => this.write());
  private soon: { promise: Promise<void>; timer: TimerHandle } | null = null;
  private retry: TimerHandle | null = null;
  private listener: pg.Client | null = null;
  private listenRetry: TimerHandle | null = null;
  private incoming = new Map<string, string>();
  private gather: TimerHandle | null = null;
  private closed = false;
  readonly counters = { writes: 0, writeFailures: 0, notified: 0, remoteReads: 0, listenerLost: 0 };

  private constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
    private readonly o: PgHostRecordsOptions,
  ) {}

  static async open(url: string, o: PgHostRecordsOptions): Promise<PgHostRecords> {
    const pool = await openPool(url, { max: 2, name: `bootd ${o.instance} hosts`, durableFor: 'a smoke result could be reported before it is durable' });
    const s = new PgHostRecords(pool, url, o);
    try {
      // listening first, then reading everything: a change committed in between is read twice, never missed
      await s.listen();
      await s.readAll();
    } catch (err) {
      await s.close().catch(() => {});
      throw err;
    }
    return s;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000, application_name: `bootd ${this.o.instance} listen` });
    client.on('error', () => this.lostListener(client));
    client.on('end', () => this.lostListener(client));
    client.on('notification', (n) => {
      if (n.channel !== CHANNEL || !n.payload) return;
      const sp = n.payload.indexOf(' ');
      const from = n.payload.slice(0, sp);
      if (from === this.o.instance) return;
      this.counters.notified++;
      this.incoming.set(n.payload.slice(sp + 1), from);
      this.gather ??= this.o.clock.setTimer(GATHER_MS, () => void this.readIncoming());
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.listener = client;
  }

  private lostListener(client: pg.Client): void {
    if (this.listener !== client || this.closed) return;
    this.listener = null;
    this.counters.listenerLost++;
    void client.end().catch(() => {});
    this.scheduleRelisten();
  }

  private scheduleRelisten(): void {
    if (this.closed || this.listenRetry) return;
    this.listenRetry = this.o.clock.setTimer(RETRY_MS, () => {
      this.listenRetry = null;
      // what changed while nobody listened is read whole
      void this.listen()
        .then(() => this.readAll(true))
        .catch(() => {
          const l = this.listener;
          this.listener = null;
          void l?.end().catch(() => {});
          this.scheduleRelisten();
        });
    });
  }

  private async readIncoming(): Promise<void> {
    this.gather = null;
    const batch = this.incoming;
    this.incoming = new Map();
    const names = [...batch.keys()];
    try {
      await this.readSome(names);
      this.counters.remoteReads++;
      const by = new Map<string, string[]>();
      for (const [name, from] of batch) by.set(from, [...(by.get(from) ?? []), name]);
      for (const [from, hs] of by) this.o.onRemote?.(hs, from);
    } catch {
      // read again with the next notification, or on relisten
      for (const [n, f] of batch) this.incoming.set(n, f);
      this.gather ??= this.o.clock.setTimer(RETRY_MS, () => void this.readIncoming());
    }
  }

  /** Reads hosts from the database, except those with changes of ours not yet written (ours are newer). */
  private async readSome(names: readonly string[] | null): Promise<string[]> {
    const where = names === null ? '' : 'WHERE name = ANY($1::text[])';
    const args = names === null ? [] : [names];
    const [h, i] = await Promise.all([
      this.pool.query<{ name: string; record: HostRecord }>(`SELECT name, record FROM host_record ${where}`, args),
      this.pool.query<{ name: string; entry: InventoryEntry }>(`SELECT name, entry FROM host_inventory ${where}`, args),
    ]);
    const changed: string[] = [];
    for (const r of h.rows) {
      if (this.dirty.has(r.name)) continue;
      this.hosts[r.name] = r.record;
      changed.push(r.name);
    }
    for (const r of i.rows) if (!this.dirtyInv.has(r.name)) this.inv[r.name] = r.entry;
    return changed;
  }

  private async readAll(tell = false): Promise<void> {
    const changed = await this.readSome(null);
    if (tell && changed.length > 0) this.o.onRemote?.(changed, '?');
  }

  // reads go to memory, kept current by this instance's puts and others' notifications
  private readonly view = readerOver(this.hosts, this.inv);

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
    this.hosts[rec.name] = rec;
    this.dirty.add(rec.name);
    return durable ? this.writer.request() : this.saveSoon();
  }

  putInventory(name: string, entry: InventoryEntry): Promise<void> {
    this.inv[name] = entry;
    this.dirtyInv.add(name);
    return this.writer.request();
  }

  private saveSoon(): Promise<void> {
    if (this.soon) return this.soon.promise;
    let settle!: () => void;
    let fail!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      settle = res;
      fail = rej;
    });
    const timer = this.o.clock.setTimer(SOON_MS, () => {
      this.soon = null;
      this.writer.request().then(settle, fail);
    });
    this.soon = { promise, timer };
    return promise;
  }

  private async write(): Promise<void> {
    const names = [...this.dirty];
    const invNames = [...this.dirtyInv];
    if (names.length === 0 && invNames.length === 0) return;
    this.dirty = new Set();
    this.dirtyInv = new Set();
    try {
      // one statement, one transaction: the upserts and a notification per host, delivered at COMMIT
      await this.pool.query(
        `WITH h AS (
           INSERT INTO host_record (name, record, updated_by, updated_at)
           SELECT n, r, $5, now() FROM unnest($1::text[], $2::jsonb[]) AS t(n, r)
           ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
           RETURNING name),
         i AS (
           INSERT INTO host_inventory (name, entry, updated_by, updated_at)
           SELECT n, e, $5, now() FROM unnest($3::text[], $4::jsonb[]) AS t(n, e)
           ON CONFLICT (name) DO UPDATE SET entry = EXCLUDED.entry, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
           RETURNING name)
         SELECT count(pg_notify('${CHANNEL}', $5 || ' ' || name)) FROM (SELECT name FROM h UNION SELECT name FROM i) AS changed`,
        [names, names.map((n) => JSON.stringify(this.hosts[n])), invNames, invNames.map((n) => JSON.stringify(this.inv[n])), this.o.instance],
      );
      this.counters.writes++;
    } catch (err) {
      this.counters.writeFailures++;
      // pending again (unless changed meanwhile: then they already are), and tried again later
      for (const n of names) this.dirty.add(n);
      for (const n of invNames) this.dirtyInv.add(n);
      this.retry ??= this.o.clock.setTimer(RETRY_MS, () => {
        this.retry = null;
        if (!this.closed) void this.writer.request().catch(() => {});
      });
      throw new Error(`host record write to PostgreSQL failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.soon) {
      this.soon.timer.cancel();
      this.soon = null;
      await this.writer.request().catch(() => {});
    }
    await this.writer.settled();
    this.closed = true;
    this.retry?.cancel();
    this.listenRetry?.cancel();
    this.gather?.cancel();
    const l = this.listener;
    this.listener = null;
    await l?.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }
}
