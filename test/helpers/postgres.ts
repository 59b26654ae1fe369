/**
 * A PostgreSQL 15 cluster of the test's own: initdb as the unprivileged user
 * `postgres` into a temporary folder, listening only on a unix socket in that
 * folder (no TCP), fsync and synchronous_commit on; stopped and removed by
 * stop(). Never the distribution's cluster or service.
 */
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** Why a PostgreSQL test cannot run here, or null. */
export function postgresUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (initdb and the server run as the unprivileged user postgres; CI runs as root)';
  if (!existsSync(path.join(PG_BIN, 'initdb'))) return 'needs postgresql-15 (scripts/setup.sh installs it)';
  return null;
}

export interface TestCluster {
  /** The folder holding the data directory and the socket. */
  readonly dir: string;
  /** A libpq/node-postgres URL for a database of this cluster (made by createDb). */
  url(db: string): string;
  createDb(name: string): Promise<string>;
  psql(db: string, sql: string): Promise<string>;
  /** Stops the server, keeping its data (a database outage). */
  halt(): Promise<void>;
  /** Starts it again after halt(). */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

async function asPostgres(argv: readonly string[]): Promise<string> {
  const r = await execa('runuser', ['-u', 'postgres', '--', ...argv], { timeout: 60_000 });
  return String(r.stdout);
}

export async function startCluster(): Promise<TestCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bootd-pg-'));
  await chmod(dir, 0o755);
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  await mkdir(data, { mode: 0o700 });
  await mkdir(sock, { mode: 0o700 });
  const pgUser = await execa('id', ['-u', 'postgres']);
  const pgGroup = await execa('id', ['-g', 'postgres']);
  await chown(data, Number(pgUser.stdout), Number(pgGroup.stdout));
  await chown(sock, Number(pgUser.stdout), Number(pgGroup.stdout));
  const stop = async (): Promise<void> => {
    await execa('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'], { reject: false });
    await rm(dir, { recursive: true, force: true });
  };
  const start = (): Promise<string> => asPostgres([path.join(PG_BIN, 'pg_ctl'), '-D', data, '-w', '-t', '30', '-l', path.join(data, 'server.log'), '-o', `-k ${sock} -c listen_addresses='' -c fsync=on -c synchronous_commit=on`, 'start']);
  try {
    await asPostgres([path.join(PG_BIN, 'initdb'), '-D', data, '-U', 'postgres', '-E', 'UTF8', '--no-locale', '--auth-local=trust', '--auth-host=reject']);
    await start();
  } catch (err) {
    await stop();
    throw err;
  }
  const psql = (db: string, sql: string): Promise<string> => asPostgres([path.join(PG_BIN, 'psql'), '-h', sock, '-U', 'postgres', '-d', db, '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  return {
    dir,
    url: (db) => `postgresql:///${db}?host=${encodeURIComponent(sock)}&user=postgres`,
    createDb: async (name) => {
      await psql('postgres', `CREATE DATABASE ${name}`);
      return `postgresql:///${name}?host=${encodeURIComponent(sock)}&user=postgres`;
    },
    psql,
    halt: async () => {
      await asPostgres([path.join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
    },
    resume: async () => {
      await start();
    },
    stop,
  };
}

/**
 * The teardown of a test that runs bootd instances in its own namespaces
 * against its own cluster: the instances, then the namespaces, the cluster,
 * the work folder. Whatever was never made is skipped.
 */
export async function stopFleet(f: { readonly running: readonly { stop(): Promise<unknown> }[]; readonly nets: readonly ({ destroy(): Promise<void> } | undefined)[]; readonly cluster?: TestCluster | undefined; readonly dir?: string | undefined }): Promise<void> {
  for (const b of f.running) await b.stop().catch(() => {});
  for (const n of f.nets) await n?.destroy();
  await f.cluster?.stop();
  if (f.dir) await rm(f.dir, { recursive: true, force: true });
}
