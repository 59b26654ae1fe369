/**
 * Leases in PostgreSQL (table lease4, ./schema.ts), behind the LeaseStore
 * interface the DHCP server owns. A moment's changes are one transaction
 * (one multi-row upsert, one delete): a storm of a thousand ACKs costs a few
 * commits, not a thousand round trips. `commit()` resolves after COMMIT
 * returned, with synchronous_commit on (checked at open), so an ACK never
 * leaves before its lease is durable (RFC 2131 section 4.3.2).
 */
import pg from 'pg';
import type { CommitSource, LeaseChange, LeaseReader, LeaseStore } from '../../dhcp/lease-store.js';
import type { Lease } from '../../dhcp/leases.js';
import { OverlapWriter } from '../overlap-writer.js';
import { openPool } from './pool.js';

/** Connections: writes in flight side by side, and one more for reads. */
const POOL_SIZE = 4;


export class PgLeaseWriteError extends Error {
  constructor(cause: unknown) {
    super(`lease commit to PostgreSQL failed: ${(cause as Error).message}`, { cause });
    this.name = 'PgLeaseWriteError';
  }
}

interface Row {
  address: string;
  hwaddr: string;
  client_id: Buffer | null;
  expire: Date;
  hostname: string | null;
  state: number;
}

function leaseOf(r: Row): Lease {
  return {
    mac: r.hwaddr,
    ip: r.address,
    clientId: r.client_id ? r.client_id.toString('hex') : undefined,
    expiresAt: r.expire.getTime(),
    hostname: r.hostname ?? undefined,
    // absent means active, as in the journal's records
    ...(r.state === 2 ? { state: 'released' as const } : {}),
  };
}

const UPSERT_TAIL = `ON CONFLICT (address) DO UPDATE SET hwaddr = EXCLUDED.hwaddr, client_id = EXCLUDED.client_id, expire = EXCLUDED.expire,
  hostname = EXCLUDED.hostname, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at`;

/** Which leader writes: a write carries the segment and the epoch it leads under (./leadership.ts). */
export interface Fence {
  readonly segment: string;
  readonly epoch: number;
}

/** A write refused because this instance no longer leads its segment: nothing was written, nothing may be ACKed. */
export class NotLeaderError extends Error {
  constructor(segment: string) {
    super(`this instance no longer leads segment ${segment}; nothing written`);
    this.name = 'NotLeaderError';
  }
}

const COLUMNS = 'address, hwaddr, client_id, expire, hostname, state, updated_at';

/**
 * The upserts and the deletes as one statement, always the same text with
 * the rows as arrays (unnest): a named prepared statement, parsed and
 * planned once per connection instead of once per moment (the text of a
 * multi-row VALUES changes with the row count). Data-modifying WITH parts run
 * exactly once whether read or not (PostgreSQL 15, "WITH Queries"), and each
 * address is in a moment's changes once, so the delete and the upsert never
 * touch one row.
 *
 * With a fence, the statement writes only if `dhcp_leader` still holds this
 * instance's epoch, read FOR SHARE (a takeover's bump waits for it, and a
 * write after the bump finds the row changed: READ COMMITTED re-reads a
 * locked row's newest version), and answers whether it held.
 */
const ROWS = `unnest($1::inet[], $2::macaddr[], $3::bytea[], $4::timestamptz[], $5::text[], $6::smallint[]) AS v(address, hwaddr, client_id, expire, hostname, state)`;
const WRITE_UNFENCED = {
  name: 'bootd_lease_write',
  text: `WITH removed AS (DELETE FROM lease4 WHERE address = ANY($7::inet[])),
  written AS (INSERT INTO lease4 (${COLUMNS}) SELECT address, hwaddr, client_id, expire, hostname, state, now() FROM ${ROWS} ${UPSERT_TAIL})
SELECT 1 AS held`,
};
const WRITE_FENCED = {
  name: 'bootd_lease_write_fenced',
  text: `WITH fence AS (SELECT 1 FROM dhcp_leader WHERE segment = $8 AND epoch = $9 FOR SHARE),
  removed AS (DELETE FROM lease4 WHERE address = ANY($7::inet[]) AND EXISTS (SELECT 1 FROM fence)),
  written AS (INSERT INTO lease4 (${COLUMNS}) SELECT address, hwaddr, client_id, expire, hostname, state, now() FROM ${ROWS} WHERE EXISTS (SELECT 1 FROM fence) ${UPSERT_TAIL})
SELECT count(*)::int AS held FROM fence`,
};

function oneStatement(upserts: readonly Lease[], deletes: readonly string[], fence?: Fence): { name: string; text: string; values: unknown[] } {
  const values: unknown[] = [
    upserts.map((l) => l.ip),
    upserts.map((l) => l.mac),
    upserts.map((l) => (l.clientId !== undefined ? Buffer.from(l.clientId, 'hex') : null)),
    upserts.map((l) => new Date(l.expiresAt)),
    upserts.map((l) => l.hostname ?? null),
    upserts.map((l) => (l.state === 'released' ? 2 : 0)),
    [...deletes],
  ];
  if (fence === undefined) return { ...WRITE_UNFENCED, values };
  return { ...WRITE_FENCED, values: [...values, fence.segment, fence.epoch] };
}

export interface PgLeaseStoreOptions {
  /**
   * The leader's fence, read at each write: a write carries it, and while it
   * is null (standing by) nothing is written. Absent: writes are unfenced
   * (one instance per database, or tools).
   */
  readonly fence?: () => Fence | null;
  /** The segment the fence guards, for the error when there is none. */
  readonly segment?: string;
}

export class PgLeaseStore implements LeaseStore {
  private source: CommitSource | null = null;
  /**
   * Moments written side by side on the pool's connections, a moment after
   * an earlier one only when they share an address (../overlap-writer.ts):
   * an ACK waits for its own commit, not also for the one before it.
   */
  private readonly writer = new OverlapWriter<{ src: CommitSource; changes: LeaseChange[] }>(
    () => {
      const src = this.source;
      if (!src) return null;
      const changes = src.changes();
      return changes.length === 0 ? null : { keys: new Set(changes.map((c) => c.ip)), value: { src, changes } };
    },
    ({ src, changes }) => this.write(src, changes),
    POOL_SIZE - 1,
  );
  /** Transactions committed, and leases they carried (for the stats). */
  readonly counters = { commits: 0, leasesWritten: 0, commitFailures: 0 };

  private constructor(
    private readonly pool: pg.Pool,
    private readonly opts: PgLeaseStoreOptions,
  ) {}

  /** Connects (a postgresql:// URL; a unix socket directory as host works), applies migrations, checks durability. */
  static async open(url: string, opts: PgLeaseStoreOptions = {}): Promise<PgLeaseStore> {
    // each connection prepares the write an ACK waits for (no rows, and with a fence nobody holds: nothing written)
    const warm = (c: pg.ClientBase): Promise<unknown> => c.query(oneStatement([], [], opts.fence ? { segment: '', epoch: -1 } : undefined));
    const pool = await openPool(url, { max: POOL_SIZE, name: 'bootd leases', durableFor: 'an ACK could leave before its lease is durable', warm });
    return new PgLeaseStore(pool, opts);
  }

  /** Reading leases beside the server (`bootd leases`). */
  static reader(url: string): LeaseReader {
    return {
      list: async () => {
        const s = await PgLeaseStore.open(url);
        try {
          return await s.load();
        } finally {
          await s.close();
        }
      },
    };
  }

  async load(): Promise<Lease[]> {
    const r = await this.pool.query<Row>('SELECT host(address) AS address, hwaddr::text AS hwaddr, client_id, expire, hostname, state FROM lease4 ORDER BY address');
    return r.rows.map(leaseOf);
  }

  commit(src: CommitSource): Promise<void> {
    this.source = src;
    return this.writer.request();
  }

  private async write(src: CommitSource, changes: readonly LeaseChange[]): Promise<void> {
    const upserts = changes.flatMap((c) => (c.lease ? [c.lease] : []));
    const deletes = changes.flatMap((c) => (c.lease ? [] : [c.ip]));
    try {
      let fence: Fence | undefined;
      if (this.opts.fence) {
        fence = this.opts.fence() ?? undefined;
        if (fence === undefined) throw new NotLeaderError(this.opts.segment ?? '?');
      }
      // one statement is one transaction: one round trip, not BEGIN, the writes and COMMIT; its rows
      // are arrays, so a storm's moment of any size fits (no parameter limit to split on)
      const r = await this.pool.query<{ held: number }>(oneStatement(upserts, deletes, fence));
      if (fence && r.rows[0]?.held !== 1) throw new NotLeaderError(fence.segment);
      this.counters.commits++;
      this.counters.leasesWritten += changes.length;
    } catch (err) {
      this.counters.commitFailures++;
      src.putBack?.(changes);
      throw err instanceof NotLeaderError ? err : new PgLeaseWriteError(err);
    }
  }

  async close(): Promise<void> {
    await this.writer.settled();
    await this.pool.end();
  }
}
