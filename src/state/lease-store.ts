/**
 * Leases on disk (lowdb over DurableJsonFile). `commit()` resolves once the
 * current leases are durable; commits made in the same moment share one
 * write, so a burst of a thousand ACKs costs a few fsyncs, not a thousand.
 * The DHCP server sends an ACK only after its commit resolved.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import type { Lease } from '../dhcp/leases.js';
import { DurableJsonFile } from './durable-json-file.js';

interface LeaseDoc {
  version: 1;
  leases: Lease[];
}

export class LeaseStore {
  private next: Promise<void> | null = null;
  private current: Promise<void> = Promise.resolve();
  /** Number of writes done, for tests and stats. */
  writes = 0;

  private constructor(
    private readonly db: Low<LeaseDoc>,
    readonly file: string,
  ) {}

  static async open(stateDir: string): Promise<LeaseStore> {
    await mkdir(stateDir, { recursive: true });
    const file = path.join(stateDir, 'leases.json');
    const db = new Low<LeaseDoc>(new DurableJsonFile<LeaseDoc>(file), { version: 1, leases: [] });
    await db.read();
    if (!Array.isArray(db.data.leases)) db.data = { version: 1, leases: [] };
    return new LeaseStore(db, file);
  }

  leases(): Lease[] {
    return this.db.data.leases;
  }

  /**
   * Writes `snapshot()` (taken just before the write starts, so it includes
   * every change made until then) and resolves when it is on disk.
   */
  commit(snapshot: () => Lease[]): Promise<void> {
    if (this.next) return this.next;
    const run = async (): Promise<void> => {
      await this.current.catch(() => {});
      await new Promise<void>((r) => setImmediate(r)); // let this moment's other changes join
      this.next = null; // changes from here on go into the following write
      this.db.data = { version: 1, leases: snapshot() };
      this.writes++;
      const w = this.db.write();
      this.current = w;
      await w;
    };
    this.next = run();
    return this.next;
  }
}
