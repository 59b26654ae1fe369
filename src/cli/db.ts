/**
 * `bootd db migrate --state-url URL`: applies bootd's schema migrations
 * (src/state/pg/schema.ts) to a PostgreSQL database, as `bootd serve
 * --state-url` does at start; safe to run while instances start (one
 * advisory lock serialises them).
 */
import type { Command } from 'commander';
import pg from 'pg';
import { MIGRATIONS, migrate } from '../state/pg/schema.js';

export function addDbCommands(program: Command): void {
  const db = program.command('db').description('the PostgreSQL state database (--state-url)');
  db.command('migrate')
    .description('apply the schema migrations this database lacks (bootd serve does it at start too)')
    .requiredOption('--state-url <url>', 'postgresql://user@host/db, or postgresql:///db?host=/run/postgresql')
    .action(async (o: { stateUrl: string }) => {
      const client = new pg.Client({ connectionString: o.stateUrl, connectionTimeoutMillis: 5000 });
      try {
        await client.connect();
        const applied = await migrate(client);
        const newest = Math.max(...MIGRATIONS.map((m) => m.version));
        console.log(applied.length === 0 ? `schema is at version ${newest}: nothing to do` : `applied ${applied.map((v) => `${v} (${MIGRATIONS.find((m) => m.version === v)?.name ?? ''})`).join(', ')}; schema is at version ${newest}`);
      } catch (err) {
        console.error(`bootd db migrate: ${(err as Error).message}`);
        process.exitCode = 1;
      } finally {
        await client.end().catch(() => {});
      }
    });
}
