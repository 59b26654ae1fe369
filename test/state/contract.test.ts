/**
 * The store contract suite (./contract.ts) against every implementation:
 * the durable files in a temporary folder, reopened as a restarted bootd
 * reopens them, and the memory stores.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import type { HostRecordStore } from '../../src/afterboot/host-records.js';
import type { LeaseStore } from '../../src/dhcp/lease-store.js';
import type { MachineStore } from '../../src/machines/registry.js';
import { systemClock } from '../../src/net/clock.js';
import { FileHostRecords } from '../../src/state/host-records.js';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import { FileMachineStore } from '../../src/state/machine-store.js';
import { MemoryHostRecords, MemoryLeaseStore, MemoryMachineStore } from '../../src/state/memory.js';
import { PgHostRecords } from '../../src/state/pg/host-records.js';
import { PgLeaseStore } from '../../src/state/pg/lease-store.js';
import { PgMachineStore } from '../../src/state/pg/machine-store.js';
import { postgresUnavailable, startCluster, type TestCluster } from '../helpers/postgres.js';
import { hostRecordsContract, leaseStoreContract, machineStoreContract, type StoreMaker } from './contract.js';

let root: string;
let n = 0;
const dirs = new WeakMap<object, string>();
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'bootd-contract-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
/** A file store in a fresh folder, reopened from the same folder. */
function inFolder<S extends object>(open: (dir: string) => Promise<S>): StoreMaker<S> {
  return {
    make: async () => {
      const dir = path.join(root, String(n++));
      const s = await open(dir);
      dirs.set(s, dir);
      return s;
    },
    reopen: async (s) => open(dirs.get(s) as string),
  };
}

leaseStoreContract('durable files (snapshot + journal)', inFolder<LeaseStore>((dir) => FileLeaseStore.open(dir)));

leaseStoreContract('memory', {
  make: async () => new MemoryLeaseStore(),
  // what a memory store holds lives as long as the process: a "restart" is a new store over its leases
  reopen: async (s) => new MemoryLeaseStore(await s.load()),
});

hostRecordsContract('durable file (hosts-state.json)', inFolder<HostRecordStore>((dir) => FileHostRecords.open(dir, systemClock)));

hostRecordsContract('memory', {
  make: async () => new MemoryHostRecords(),
  reopen: async (s) => s,
});

machineStoreContract('durable file (machines.json)', inFolder<MachineStore>((dir) => FileMachineStore.open(dir)));

machineStoreContract('memory', {
  make: async () => new MemoryMachineStore(),
  reopen: async (s) => s,
});

// PostgreSQL: a cluster of this test's own (test/helpers/postgres.ts), a fresh database per store
const noPg = postgresUnavailable();
if (noPg) console.warn(`SKIPPED the PostgreSQL store contract: ${noPg}`);
describe.skipIf(noPg !== null)('on PostgreSQL 15', () => {
  let cluster: TestCluster;
  let dbs = 0;
  const urls = new WeakMap<object, string>();
  beforeAll(async () => {
    cluster = await startCluster();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  leaseStoreContract('PostgreSQL (lease4)', {
    make: async () => {
      const url = await cluster.createDb(`leases_${dbs++}`);
      const s = await PgLeaseStore.open(url);
      urls.set(s, url);
      return s;
    },
    reopen: async (s) => PgLeaseStore.open(urls.get(s) as string),
  });
  hostRecordsContract('PostgreSQL (host_record, host_inventory)', {
    make: async () => {
      const url = await cluster.createDb(`hosts_${dbs++}`);
      const s = await PgHostRecords.open(url, { instance: 'contract', clock: systemClock });
      urls.set(s, url);
      return s;
    },
    reopen: async (s) => PgHostRecords.open(urls.get(s) as string, { instance: 'contract', clock: systemClock }),
  });
  machineStoreContract<PgMachineStore>('PostgreSQL (machine_set)', {
    make: async () => {
      const url = await cluster.createDb(`machines_${dbs++}`);
      const s = await PgMachineStore.open(url, 'contract');
      urls.set(s, url);
      return s;
    },
    reopen: async (s) => {
      await s.close();
      return PgMachineStore.open(urls.get(s) as string, 'contract');
    },
  });
});
