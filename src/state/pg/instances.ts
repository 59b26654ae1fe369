/**
 * The bootd instances that share a database, each with what it serves: its
 * segment, its server address, whether it leads the segment's DHCP, and the
 * digest of its host set (hosts/*.yaml is read from each instance's own
 * checkout; the digests show when the checkouts differ). Every instance
 * writes its own row at start, on every change and every `everyMs`; a row
 * not refreshed for three periods belongs to an instance that is gone (a
 * clean stop deletes it).
 */
import pg from 'pg';
import type { Clock, TimerHandle } from '../../net/clock.js';
import { openPool } from './pool.js';

export interface InstanceInfo {
  readonly id: string;
  readonly hostname: string;
  readonly segment: string | null;
  readonly serverIp: string | null;
  readonly version: string;
}

export interface InstanceState {
  readonly hostsDigest: string | null;
  readonly hostsCount: number | null;
  readonly leading: boolean;
}

export interface InstanceRow extends InstanceInfo, InstanceState {
  readonly startedAt: number;
  readonly seenAt: number;
  /** Seen within three periods. */
  readonly alive: boolean;
}

/** Do the live instances serve the same host set? The groups, largest first. */
export interface HostSetAgreement {
  readonly agree: boolean;
  readonly groups: readonly { readonly digest: string | null; readonly hosts: number | null; readonly instances: readonly string[] }[];
}

export function hostSetAgreement(rows: readonly InstanceRow[]): HostSetAgreement {
  const by = new Map<string, { digest: string | null; hosts: number | null; instances: string[] }>();
  for (const r of rows) {
    if (!r.alive) continue;
    const key = r.hostsDigest ?? '';
    const g = by.get(key) ?? { digest: r.hostsDigest, hosts: r.hostsCount, instances: [] };
    g.instances.push(r.id);
    by.set(key, g);
  }
  const groups = [...by.values()].sort((a, b) => b.instances.length - a.instances.length || String(a.digest).localeCompare(String(b.digest)));
  return { agree: groups.length <= 1, groups };
}

interface Row {
  id: string;
  hostname: string;
  segment: string | null;
  server_ip: string | null;
  version: string;
  hosts_digest: string | null;
  hosts_count: number | null;
  is_leader: boolean;
  started_at: Date;
  seen_at: Date;
  alive: boolean;
}

function rowOf(x: Row): InstanceRow {
  return {
    id: x.id,
    hostname: x.hostname,
    segment: x.segment,
    serverIp: x.server_ip,
    version: x.version,
    hostsDigest: x.hosts_digest,
    hostsCount: x.hosts_count,
    leading: x.is_leader,
    startedAt: x.started_at.getTime(),
    seenAt: x.seen_at.getTime(),
    alive: x.alive,
  };
}

const LIST_SQL = `SELECT id, hostname, segment, host(server_ip) AS server_ip, version, hosts_digest, hosts_count, is_leader, started_at, seen_at,
         seen_at > now() - ($1::int * interval '1 millisecond') AS alive
  FROM bootd_instance ORDER BY id`;

/** Every instance with a row, read once (`bootd status --state-url`); `everyMs`: the instances' beat. */
export async function readInstances(url: string, everyMs = 5000): Promise<InstanceRow[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'bootd status' });
  await client.connect();
  try {
    const have = (await client.query<{ t: string | null }>("SELECT to_regclass('bootd_instance')::text AS t")).rows[0]?.t;
    return have ? (await client.query<Row>(LIST_SQL, [everyMs * 3])).rows.map(rowOf) : [];
  } finally {
    await client.end().catch(() => {});
  }
}

export class InstanceRegistry {
  private timer: TimerHandle | null = null;
  private closed = false;
  private snapshot: InstanceRow[] = [];
  private beating: Promise<void> = Promise.resolve();
  readonly counters = { beats: 0, beatFailures: 0 };

  private constructor(
    private readonly pool: pg.Pool,
    private readonly self: InstanceInfo,
    private readonly state: () => InstanceState,
    private readonly clock: Clock,
    private readonly everyMs: number,
  ) {}

  /** Registers this instance (the row replaces one a killed instance of the same id left) and starts beating. */
  static async open(url: string, self: InstanceInfo, state: () => InstanceState, clock: Clock, everyMs = 5000): Promise<InstanceRegistry> {
    // the first of bootd's parts to reach the database brings the schema up to date
    const pool = await openPool(url, { max: 1, name: `bootd ${self.id} registry` });
    const r = new InstanceRegistry(pool, self, state, clock, everyMs);
    await r.write(true);
    r.schedule();
    return r;
  }

  /** The instances as of the last beat (every `everyMs`, and after every change). */
  get instances(): readonly InstanceRow[] {
    return this.snapshot;
  }

  /** Writes this instance's row now (its hosts or its lead changed). */
  changed(): Promise<void> {
    this.beating = this.beating.then(() => this.write(false)).catch(() => {});
    return this.beating;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.clock.setTimer(this.everyMs, () => {
      void this.changed().finally(() => this.schedule());
    });
  }

  private async write(first: boolean): Promise<void> {
    if (this.closed) return;
    const s = this.state();
    try {
      await this.pool.query(
        `INSERT INTO bootd_instance (id, hostname, segment, server_ip, version, hosts_digest, hosts_count, is_leader, started_at, seen_at)
         VALUES ($1, $2, $3, $4::inet, $5, $6, $7, $8, now(), now())
         ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, segment = EXCLUDED.segment, server_ip = EXCLUDED.server_ip,
           version = EXCLUDED.version, hosts_digest = EXCLUDED.hosts_digest, hosts_count = EXCLUDED.hosts_count, is_leader = EXCLUDED.is_leader,
           seen_at = now()${first ? ', started_at = now()' : ''}`,
        [this.self.id, this.self.hostname, this.self.segment, this.self.serverIp, this.self.version, s.hostsDigest, s.hostsCount, s.leading],
      );
      this.snapshot = await this.list();
      this.counters.beats++;
    } catch (err) {
      this.counters.beatFailures++;
      if (first) throw err;
    }
  }

  /** Every instance with a row, alive or not, by id. */
  async list(): Promise<InstanceRow[]> {
    return (await this.pool.query<Row>(LIST_SQL, [this.everyMs * 3])).rows.map(rowOf);
  }

  /** Stops beating and removes this instance's row (it is not running any more). */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    await this.beating.catch(() => {});
    await this.pool.query('DELETE FROM bootd_instance WHERE id = $1', [this.self.id]).catch(() => {});
    await this.pool.end().catch(() => {});
  }
}
