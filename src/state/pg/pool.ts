/**
 * A connection pool to bootd's database, ready for use: connected, the
 * schema brought up to date (./schema.ts), and, for a store whose writes
 * someone is told about (an ACK, a smoke result), synchronous_commit
 * checked to be on. An idle connection the server dropped (a restart, a
 * failover) must not end bootd: the pool forgets it, and the next query
 * opens a new one.
 *
 * Every connection of the pool is opened here and kept (no idle timeout):
 * opening one costs a SCRAM exchange and the server's backend start, and a
 * named prepared statement is parsed once per connection. Opened lazily,
 * those costs fell on the first moments a pool serves (the closed-loop DHCP
 * benchmark's first DORAs took 48 ms against a median of 6 ms) and again on
 * the first burst after every quiet spell of ten seconds (pg's default idle
 * timeout) — a rack powering on after a quiet night. `warm` runs on each
 * connection once, to prepare the statements its hot path uses.
 */
import pg from 'pg';
import { migrate } from './schema.js';

export interface PoolOptions {
  readonly max: number;
  /** Shown in pg_stat_activity. */
  readonly name: string;
  /** What an asynchronous commit would risk, for the refusal's message; absent: not checked. */
  readonly durableFor?: string;
  /** Run once on every connection at start (prepare the hot path's named statements); absent: none. */
  readonly warm?: (c: pg.ClientBase) => Promise<unknown>;
}

export async function openPool(url: string, o: PoolOptions): Promise<pg.Pool> {
  // idleTimeoutMillis 0: an idle connection is kept, never closed for being idle
  const pool = new pg.Pool({ connectionString: url, max: o.max, idleTimeoutMillis: 0, connectionTimeoutMillis: 5000, application_name: o.name });
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
    // the rest of the pool, opened side by side and held until all are open, so that each is a new one
    const opened: pg.PoolClient[] = [];
    try {
      const more = await Promise.allSettled(Array.from({ length: o.max }, () => pool.connect()));
      for (const r of more) if (r.status === 'fulfilled') opened.push(r.value);
      const failed = more.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (o.warm) await Promise.all(opened.map((c) => o.warm?.(c)));
    } finally {
      for (const c of opened) c.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return pool;
}
