/**
 * The store contract suite (./contract.ts) against every implementation:
 * the durable files in a temporary folder, reopened as a restarted bootd
 * reopens them, and the memory stores.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { systemClock } from '../../src/net/clock.js';
import { FileHostRecords } from '../../src/state/host-records.js';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import { FileMachineStore } from '../../src/state/machine-store.js';
import { MemoryHostRecords, MemoryLeaseStore, MemoryMachineStore } from '../../src/state/memory.js';
import { hostRecordsContract, leaseStoreContract, machineStoreContract } from './contract.js';

let root: string;
let n = 0;
const dirs = new WeakMap<object, string>();
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'bootd-contract-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const fresh = (): string => path.join(root, String(n++));

leaseStoreContract('durable files (snapshot + journal)', {
  make: async () => {
    const dir = fresh();
    const s = await FileLeaseStore.open(dir);
    dirs.set(s, dir);
    return s;
  },
  reopen: async (s) => FileLeaseStore.open(dirs.get(s) as string),
});

leaseStoreContract('memory', {
  make: async () => new MemoryLeaseStore(),
  // what a memory store holds lives as long as the process: a "restart" is a new store over its leases
  reopen: async (s) => new MemoryLeaseStore(await s.load()),
});

hostRecordsContract('durable file (hosts-state.json)', {
  make: async () => {
    const dir = fresh();
    const s = await FileHostRecords.open(dir, systemClock);
    dirs.set(s, dir);
    return s;
  },
  reopen: async (s) => FileHostRecords.open(dirs.get(s) as string, systemClock),
});

hostRecordsContract('memory', {
  make: async () => new MemoryHostRecords(),
  reopen: async (s) => s,
});

machineStoreContract('durable file (machines.json)', {
  make: async () => {
    const dir = fresh();
    const s = await FileMachineStore.open(dir);
    dirs.set(s, dir);
    return s;
  },
  reopen: async (s) => FileMachineStore.open(dirs.get(s) as string),
});

machineStoreContract('memory', {
  make: async () => new MemoryMachineStore(),
  reopen: async (s) => s,
});
