/**
 * A connection pool to bootd's database, ready for use: connected, the
 * schema brought up to date (./schema.ts), and, for a store whose writes
 * someone is told about (an ACK, a smoke result), synchronous_commit
 * checked to be on. An idle connection the server dropped (a restart, a
 * failover) must not end bootd: the pool forgets it, and the next query
 * opens a new one.
 */
import pg from 'pg';
import { migrate } from './schema.js';

export interface PoolOptions {
  readonly max: number;
  /** Shown in pg_stat_activity. */
  readonly name: string;
  /** What an asynchronous commit would risk, for the refusal's message; absent: not checked. */
  readonly durableFor?: string;
}

export async function openPool(url: string, o: PoolOptions): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, max: o.max, connectionTimeoutMillis: 5000, application_name: o.name });
  pool.on('error', () => {});
  try {
    const c = await pool.connect();
    try {
      if (o.durableFor !== undefined) {
        const sc = (await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]?.synchronous_commit;
        if (sc === 'off') throw new Error(`synchronous_commit is off for this role or database: ${o.durableFor}; turn it on`);
      }
      await migrate(c);
    } finally {
      c.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return pool;
}
