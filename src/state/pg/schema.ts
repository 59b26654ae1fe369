/**
 * bootd's schema in PostgreSQL, as numbered migrations applied in order at
 * start (and by `bootd db migrate`), each in its own transaction, all under
 * one transaction-level advisory lock: two instances starting at once apply
 * each migration once, the second waits for the first and finds nothing to do.
 *
 * Leases are modelled on Kea's lease4 table (address as the primary key,
 * hardware address, client identifier, expiry, subnet, host name, state),
 * with the indexes its lookups need: by hardware address and by client
 * identifier (the server's identity lookups at start and on other
 * instances), and by expiry (reclaiming).
 */
import type pg from 'pg';

/** pg_advisory_xact_lock key for migrations: "bootd" in ASCII, so another application's key is unlikely to collide. */
export const MIGRATION_LOCK = 0x626f6f7464;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'lease4',
    sql: `
      CREATE TABLE lease4 (
        address     inet PRIMARY KEY,
        hwaddr      macaddr NOT NULL,
        client_id   bytea,
        expire      timestamptz NOT NULL,
        subnet      cidr,
        hostname    text,
        state       smallint NOT NULL DEFAULT 0,   -- 0 active, 2 released (Kea: 0 default, 1 declined, 2 expired-reclaimed)
        updated_at  timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX lease4_by_hwaddr ON lease4 (hwaddr);
      CREATE INDEX lease4_by_client_id ON lease4 (client_id) WHERE client_id IS NOT NULL;
      CREATE INDEX lease4_by_expire ON lease4 (expire);
    `,
  },
  {
    version: 2,
    name: 'instances and segment leaders',
    sql: `
      -- every running bootd on this database, what it serves and when it was last seen (./instances.ts)
      CREATE TABLE bootd_instance (
        id           text PRIMARY KEY,
        hostname     text NOT NULL,
        segment      text,
        server_ip    inet,
        version      text NOT NULL,
        hosts_digest text,
        hosts_count  integer,
        is_leader    boolean NOT NULL DEFAULT false,
        started_at   timestamptz NOT NULL DEFAULT now(),
        seen_at      timestamptz NOT NULL DEFAULT now()
      );
      -- who leads each segment's DHCP, and the fencing epoch its lease writes carry (./leadership.ts)
      CREATE TABLE dhcp_leader (
        segment   text PRIMARY KEY,
        epoch     bigint NOT NULL,
        instance  text NOT NULL,
        since     timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 3,
    name: 'host records, inventory, build machines',
    sql: `
      -- each host's recent boots with their timelines and smoke results (./host-records.ts); the
      -- record is the after-boot code's own document, kept whole as jsonb
      CREATE TABLE host_record (
        name        text PRIMARY KEY,
        record      jsonb NOT NULL,
        updated_by  text NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE host_inventory (
        name        text PRIMARY KEY,
        entry       jsonb NOT NULL,
        updated_by  text NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now()
      );
      -- build-machine port assignments: ports on one instance's machine, so one set per instance (./machine-store.ts)
      CREATE TABLE machine_set (
        instance    text PRIMARY KEY,
        machines    jsonb NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

/** Applies the migrations this database lacks; returns the versions applied. */
export async function migrate(client: pg.ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS bootd_schema (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const have = new Set((await client.query<{ version: number }>('SELECT version FROM bootd_schema')).rows.map((r) => r.version));
    const newest = Math.max(0, ...migrations.map((m) => m.version));
    const beyond = [...have].filter((v) => v > newest);
    if (beyond.length > 0) throw new Error(`the database has schema version ${Math.max(...beyond)}, newer than this bootd knows (${newest}): upgrade bootd`);
    for (const m of migrations) {
      if (have.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO bootd_schema (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return applied;
}
