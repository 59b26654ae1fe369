/**
 * Build-machine assignments in PostgreSQL (table machine_set), as
 * src/machines/ declares them (MachineStore). The ports are this instance's
 * own (UDP ports on its machine), so each instance keeps its own set under
 * its name; save() resolves after COMMIT.
 */
import pg from 'pg';
import type { Machine, MachineStore } from '../../machines/registry.js';
import { openPool } from './pool.js';

export class PgMachineStore implements MachineStore {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly instance: string,
  ) {}

  static async open(url: string, instance: string): Promise<PgMachineStore> {
    const pool = await openPool(url, { max: 1, name: `bootd ${instance} machines` });
    return new PgMachineStore(pool, instance);
  }

  async load(): Promise<Machine[]> {
    const r = await this.pool.query<{ machines: Machine[] }>('SELECT machines FROM machine_set WHERE instance = $1', [this.instance]);
    return r.rows[0]?.machines ?? [];
  }

  async save(machines: readonly Machine[]): Promise<void> {
    await this.pool.query(
      'INSERT INTO machine_set (instance, machines, updated_at) VALUES ($1, $2::jsonb, now()) ON CONFLICT (instance) DO UPDATE SET machines = EXCLUDED.machines, updated_at = now()',
      [this.instance, JSON.stringify(machines)],
    );
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => {});
  }
}

/** Every instance's machines as the database has them now, read once (`bootd machines list --state-url`). */
export async function readMachineSets(url: string): Promise<{ instance: string; updatedAt: string; machines: Machine[] }[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'bootd machines' });
  await client.connect();
  try {
    const have = (await client.query<{ t: string | null }>("SELECT to_regclass('machine_set')::text AS t")).rows[0]?.t;
    if (!have) return [];
    const r = await client.query<{ instance: string; updated_at: Date; machines: Machine[] }>('SELECT instance, updated_at, machines FROM machine_set ORDER BY instance');
    return r.rows.map((x) => ({ instance: x.instance, updatedAt: x.updated_at.toISOString(), machines: x.machines }));
  } finally {
    await client.end().catch(() => {});
  }
}
