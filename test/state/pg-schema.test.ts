/**
 * bootd's PostgreSQL schema on a cluster of the test's own: migrations
 * applied once even when several instances start at the same moment (one
 * advisory lock), a database newer than this bootd refused, `bootd db
 * migrate` from the CLI.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgLeaseStore } from '../../src/state/pg/lease-store.js';
import { MIGRATIONS, migrate } from '../../src/state/pg/schema.js';
import { runCli } from '../helpers/bootd.js';
import { postgresUnavailable, startCluster, type TestCluster } from '../helpers/postgres.js';

const skip = postgresUnavailable();
if (skip) console.warn(`SKIPPED PostgreSQL schema tests: ${skip}`);

describe.skipIf(skip !== null)('the PostgreSQL schema (a cluster of the test\'s own)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('applies every migration once when three instances start at once', async () => {
    const url = await cluster.createDb('race');
    const clients = [0, 1, 2].map(() => new pg.Client({ connectionString: url }));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const applied = await Promise.all(clients.map((c) => migrate(c)));
      expect(applied.flat().sort()).toEqual(MIGRATIONS.map((m) => m.version).sort());
      expect(await cluster.psql('race', 'SELECT version, name FROM bootd_schema ORDER BY version')).toBe(MIGRATIONS.map((m) => `${m.version}|${m.name}`).join('\n'));
      expect(await cluster.psql('race', "SELECT indexname FROM pg_indexes WHERE tablename = 'lease4' ORDER BY indexname")).toBe('lease4_by_client_id\nlease4_by_expire\nlease4_by_hwaddr\nlease4_pkey');
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('refuses a database whose schema is newer than this bootd, and changes nothing', async () => {
    const url = await cluster.createDb('newer');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await migrate(c);
      await c.query("INSERT INTO bootd_schema (version, name) VALUES (999, 'from the future')");
      await expect(migrate(c, [...MIGRATIONS, { version: 99, name: 'next', sql: 'CREATE TABLE should_not_exist (x int)' }])).rejects.toThrow(/schema version 999, newer than this bootd knows/);
      expect(await cluster.psql('newer', "SELECT count(*) FROM pg_tables WHERE tablename = 'should_not_exist'")).toBe('0');
    } finally {
      await c.end();
    }
  });

  it('writes a moment larger than one statement (12,000 leases and deletes) as one transaction', async () => {
    const url = await cluster.createDb('big');
    const s = await PgLeaseStore.open(url);
    try {
      const lease = (i: number) => ({ mac: `52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, expiresAt: 1_900_000_000_000 + i });
      const all = Array.from({ length: 12_000 }, (_, i) => lease(i));
      await s.commit({ changes: () => all.map((l) => ({ ip: l.ip, lease: l })), all: () => all });
      await s.commit({ changes: () => [...all.slice(0, 3000).map((l) => ({ ip: l.ip, lease: undefined })), ...all.slice(3000, 9000).map((l) => ({ ip: l.ip, lease: { ...l, state: 'released' as const } }))], all: () => [] });
      expect(await cluster.psql('big', 'SELECT count(*), sum(state) FROM lease4')).toBe('9000|12000');
    } finally {
      await s.close();
    }
  });

  it('opens every connection of the lease pool at start, each with the ACK\'s write already run once, and writes nothing doing so', async () => {
    const url = await cluster.createDb('warm');
    const s = await PgLeaseStore.open(url);
    try {
      // the last statement of every backend of the pool: the lease write (a named statement, so
      // it is parsed and planned there now, not on the first ACK's path)
      const last = await cluster.psql('warm', "SELECT left(query, 40) FROM pg_stat_activity WHERE application_name = 'bootd leases' AND datname = 'warm' ORDER BY pid");
      expect(last.split('\n')).toEqual(Array(4).fill('WITH removed AS (DELETE FROM lease4 WHER'));
      expect(await cluster.psql('warm', 'SELECT count(*) FROM lease4')).toBe('0');
    } finally {
      await s.close();
    }
  });

  it('fences lease writes by the segment\'s epoch: after a takeover the old leader writes nothing, even a write that waited', async () => {
    const url = await cluster.createDb('fence');
    let epoch: number | null = null;
    const old = await PgLeaseStore.open(url, { segment: 'rack-1', fence: () => (epoch === null ? null : { segment: 'rack-1', epoch }) });
    const lease = (i: number, mac = `52:54:00:00:01:${String(i).padStart(2, '0')}`) => ({ mac, ip: `10.1.0.${i}`, expiresAt: 1_900_000_000_000 });
    const commit = (ls: { mac: string; ip: string; expiresAt: number }[], del: string[] = []) => old.commit({ changes: () => [...ls.map((l) => ({ ip: l.ip, lease: l })), ...del.map((ip) => ({ ip, lease: undefined }))], all: () => [] });
    const leader = new pg.Client({ connectionString: url });
    await leader.connect();
    try {
      // standing by: nothing written, the caller told why
      await expect(commit([lease(1)])).rejects.toThrow(/no longer leads segment rack-1/);
      await leader.query("INSERT INTO dhcp_leader (segment, epoch, instance) VALUES ('rack-1', 1, 'old')");
      epoch = 1;
      await commit([lease(1), lease(2)]);
      await commit([lease(3)], ['10.1.0.2']);
      expect(await cluster.psql('fence', 'SELECT string_agg(host(address), \' \' ORDER BY address) FROM lease4')).toBe('10.1.0.1 10.1.0.3');
      // a takeover in progress holds the leader row: the old leader's write waits for it, then finds the new epoch
      await leader.query('BEGIN');
      await leader.query("UPDATE dhcp_leader SET epoch = epoch + 1, instance = 'new' WHERE segment = 'rack-1'");
      const waiting = commit([lease(4)], ['10.1.0.1']);
      await new Promise((r) => setTimeout(r, 200));
      await leader.query('COMMIT');
      await expect(waiting).rejects.toThrow(/no longer leads segment rack-1/);
      await expect(commit([lease(5)])).rejects.toThrow(/no longer leads/);
      expect(await cluster.psql('fence', 'SELECT string_agg(host(address), \' \' ORDER BY address) FROM lease4')).toBe('10.1.0.1 10.1.0.3');
      expect(old.counters.commitFailures).toBe(3);
    } finally {
      await leader.end();
      await old.close();
    }
  });

  it('bootd db migrate applies the schema, then finds nothing to do', async () => {
    const url = await cluster.createDb('cli');
    const first = await runCli(['db', 'migrate', '--state-url', url]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^applied 1 \(lease4\), 2 \(instances and segment leaders\), 3 \(host records, inventory, build machines\); schema is at version \d+/);
    const again = await runCli(['db', 'migrate', '--state-url', url]);
    expect(again.stdout).toMatch(/nothing to do/);
    const bad = await runCli(['db', 'migrate', '--state-url', cluster.url('no_such_db')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bootd db migrate: .*no_such_db/);
  });
});
