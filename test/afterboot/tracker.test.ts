/**
 * The after-boot tracker with fake SSH and a real store in a temporary
 * directory: a boot from DHCP to the smoke result, the audit report taken
 * in or kept aside, and everything on disk once acknowledged.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AfterBoot, type AfterBootDeps, type SmokePlan } from '../../src/afterboot/tracker.js';
import type { SmokeParams, SmokeRun } from '../../src/afterboot/smoke.js';
import type { DhcpSeen as DhcpEvent } from '../../src/afterboot/record.js';
import { silentLogger } from '../../src/log.js';
import { FileHostRecords } from '../../src/state/host-records.js';
import { MemoryHostRecords } from '../../src/state/memory.js';
import { systemClock } from '../../src/net/clock.js';
import pino from 'pino';

const MAC = '52:54:00:b0:07:01';
const IP = '198.18.77.100';
const pxe: DhcpEvent = { type: 'ack', mac: MAC, ip: IP, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, pxe: true, userClassIpxe: false, bootFile: 'pxelinux.0' };
const os_: DhcpEvent = { ...pxe, vendorClass: 'udhcp 1.35.0', arch: null, pxe: false, bootFile: null };

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('after-boot tracker', () => {
  let dir: string;
  let store: FileHostRecords;
  let sshUpAfter: number;
  let probes: number;
  let smokeCalls: SmokeParams[];
  let smokeResult: SmokeRun;
  let plan: SmokePlan;
  let t: AfterBoot;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bootd-afterboot-'));
    store = await FileHostRecords.open(dir, systemClock);
    probes = 0;
    sshUpAfter = 3;
    smokeCalls = [];
    smokeResult = { ok: true, exitCode: 0, attempts: 1, durationMs: 1200, passed: 15, failed: [], output: 'PASS a\nPASS b\n' };
    plan = { ok: true, user: 'root', port: 22, privateKey: 'KEY', script: 'echo PASS a', timeoutMs: 5000 };
    t = new AfterBoot({
      stateDir: dir,
      store,
      log: silentLogger,
      now: () => new Date(),
      hostOfMac: () => ({ name: 'vm1', image: 'bee' }),
      nameAt: (a) => (a === IP ? 'vm1' : undefined),
      smokePlan: async () => plan,
      runSmoke: async (p) => {
        smokeCalls.push(p);
        return smokeResult;
      },
      tcpAnswers: async () => ++probes >= sshUpAfter,
      probeEveryMs: 1,
    });
  });
  afterEach(async () => {
    t.close();
    await t.idle();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const boot = async (): Promise<void> => {
    t.onDhcp(pxe);
    t.onFile(IP, 'tftp', 'pxelinux.0', 42_000, 30, 'complete');
    t.onFile(IP, 'tftp', 'images/bee/1/vmlinuz', 14_000_000, 900, 'complete');
    t.onFile('198.18.77.200', 'tftp', 'someone-else', 1, 1, 'complete');
    t.onDhcp(os_);
  };

  it('waits for SSH after the OS lease, then runs the smoke test once and stores the result on disk', async () => {
    await boot();
    await until(async () => smokeCalls.length === 1 && (await t.current('vm1'))?.phase === 'smoke-passed', 'smoke passed');
    await t.idle();
    expect(probes).toBe(3);
    expect(smokeCalls[0]).toMatchObject({ host: IP, port: 22, user: 'root', script: 'echo PASS a' });
    await store.close(); // timeline events are gathered into one write: flush it
    const onDisk = await FileHostRecords.reader(dir);
    const b = (await onDisk.get('vm1'))?.boots.at(-1);
    expect(b?.events.map((e) => e.kind)).toEqual(['dhcp', 'file', 'file', 'os-dhcp', 'ssh', 'smoke']);
    expect(b?.smoke).toMatchObject({ ok: true, passed: 15, outputFile: `logs/vm1/smoke-${b?.id ?? ''}.log` });
    expect(await readFile(path.join(dir, b?.smoke?.outputFile ?? 'x'), 'utf8')).toBe('PASS a\nPASS b\n');
    const log = await readFile(path.join(dir, 'logs', 'vm1', 'events.log'), 'utf8');
    expect(log.split('\n').filter(Boolean)).toHaveLength(7);
    expect(log).toMatch(/ smoke smoke test passed \(15 checks, 1\.2 s\)\n$/);
  });

  it('records a failing check with its line; no SSH plan means no smoke run, with the reason', async () => {
    smokeResult = { ok: false, exitCode: 1, attempts: 2, durationMs: 900, passed: 3, failed: ['FAIL deliberate check'], output: 'FAIL deliberate check\n' };
    await boot();
    await until(async () => (await t.current('vm1'))?.phase === 'smoke-failed', 'smoke failed');
    expect((await t.current('vm1'))?.smoke?.failed).toEqual(['FAIL deliberate check']);
    await t.idle();
    plan = { ok: false, reason: 'image x has no smoke test', port: 22 };
    const r = await t.smoke('vm1');
    expect(r).toMatchObject({ ok: false, error: 'image x has no smoke test' });
    expect(smokeCalls).toHaveLength(1);
  });

  it('takes a good audit report in as inventory and keeps a bad one aside, never losing the good one', async () => {
    await boot();
    const good = path.join(dir, 'good.json');
    await writeFile(good, JSON.stringify({ schema: 'bee-audit/1', collectors: { cpu: { status: 'ok', data: { model: 'X', threads: 4 } } } }));
    const e = await t.ingestReport('vm1', good);
    expect('error' in e).toBe(false);
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '{"schema":"bee-audit/1", "collectors": ');
    const r = await t.ingestReport('vm1', bad);
    expect(r).toMatchObject({ error: expect.stringMatching(/^not JSON/) });
    const inv = await (await FileHostRecords.reader(dir)).inventory('vm1');
    expect(inv?.summary.cpu).toEqual({ model: 'X', threads: 4, sockets: null });
    expect(inv?.rejected?.error).toMatch(/^not JSON/);
    expect(await readFile(path.join(dir, inv?.rejected?.file ?? 'x'), 'utf8')).toBe('{"schema":"bee-audit/1", "collectors": ');
    expect(JSON.parse(await readFile(path.join(dir, 'inventory', 'vm1.json'), 'utf8'))).toMatchObject({ schema: 'bee-audit/1' });
    expect(t.counters).toMatchObject({ reports: 1, reportsRejected: 1 });
  });

  it('an upload of bee-audit.json on the write port is ingested', async () => {
    await boot();
    const f = path.join(dir, 'up.json');
    await writeFile(f, JSON.stringify({ schema: 'bee-audit/1', collectors: {} }));
    t.onUpload(IP, 'vm1/bee-audit.json', 60, 'complete', f);
    await until(async () => (await store.inventory('vm1')) !== undefined, 'inventory');
    t.onUpload(IP, 'vm1/other.json', 60, 'complete', f);
    t.onUpload(IP, 'vm1/bee-audit.json', 10, 'timeout', f);
    await until(async () => ((await t.current('vm1'))?.events.filter((e) => e.kind === 'upload').length ?? 0) === 3, 'uploads recorded');
    expect(t.counters.reports).toBe(1);
  });
});

describe('after-boot tracker log', () => {
  it('logs each phase change once, even when the next event lands while the previous one is being written', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bootd-afterboot-'));
    const store = await FileHostRecords.open(dir, systemClock);
    const lines: { msg: string; phase?: string }[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) });
    const t = new AfterBoot({ stateDir: dir, store, log, now: () => new Date(), hostOfMac: () => ({ name: 'vm1' }), nameAt: () => 'vm1', smokePlan: async () => ({ ok: false, reason: 'none', port: 22 }), runSmoke: async () => Promise.reject(new Error('not called')), tcpAnswers: async () => false, probeEveryMs: 1, upTimeoutMs: 20 });
    try {
      t.onDhcp(pxe);
      t.onFile(IP, 'tftp', 'images/bee/1/vmlinuz', 1, 1, 'complete');
      // dhclient's OFFER and ACK come back to back: both records are in flight together
      t.onDhcp({ ...os_, type: 'offer' });
      t.onDhcp(os_);
      await new Promise((r) => setTimeout(r, 50));
      await t.idle();
      expect(lines.filter((l) => l.msg === 'host phase').map((l) => l.phase)).toEqual(['dhcp', 'kernel', 'os-dhcp']);
    } finally {
      t.close();
      await t.idle();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** State folders of the trackers below, removed after the file's tests. */
const trackerDirs: string[] = [];
afterAll(async () => {
  for (const d of trackerDirs) await rm(d, { recursive: true, force: true });
});

/** A tracker over `store` whose hosts never answer on SSH (DHCP records only). */
async function noSshTracker(store: MemoryHostRecords, hostOfMac: AfterBootDeps['hostOfMac']): Promise<AfterBoot> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'bootd-afterboot-'));
  trackerDirs.push(stateDir);
  return new AfterBoot({
    stateDir,
    store,
    log: silentLogger,
    now: () => new Date(),
    hostOfMac,
    nameAt: () => undefined,
    smokePlan: async () => ({ ok: false, reason: 'none', port: 22 }),
    runSmoke: async () => Promise.reject(new Error('not called')),
    tcpAnswers: async () => false,
  });
}

describe('after-boot tracker and machines it keeps no record of', () => {
  it('never asks the store about a plain DHCP client (known hosts loaded); once it netboots it is recorded, and so are its later plain exchanges', async () => {
    const store = new MemoryHostRecords();
    let gets = 0;
    const realGet = store.get.bind(store);
    store.get = (name) => {
      gets++;
      return realGet(name);
    };
    let enlisting = false;
    const t = await noSshTracker(store, (mac) => ({ name: mac.replace(/:/g, '-'), ...(enlisting ? {} : { ifRecorded: true }) }));
    await t.loadKnown();
    try {
      for (let i = 0; i < 5; i++) {
        t.onDhcp(os_);
        await t.idle();
      }
      expect(gets).toBe(0);
      expect((await store.list()).total).toBe(0);
      enlisting = true;
      t.onDhcp(pxe);
      await t.idle();
      enlisting = false;
      t.onDhcp(os_); // its OS now: recorded, the store is asked again
      await t.idle();
      expect((await store.get('52-54-00-b0-07-01'))?.boots.at(-1)?.events.map((e) => e.text.slice(0, 20))).toEqual(['DHCP ack 198.18.77.1', 'DHCP ack 198.18.77.1']);
    } finally {
      t.close();
    }
  });
});

describe('after-boot tracker with the known hosts loaded', () => {
  it('drops events of hosts without a record without asking the store, and keeps recording those with one', async () => {
    const store = new MemoryHostRecords();
    await store.put({ name: '52-54-00-b0-07-01', boots: [] }, true);
    let gets = 0;
    const realGet = store.get.bind(store);
    store.get = (name) => {
      gets++;
      return realGet(name);
    };
    const t = await noSshTracker(store, (mac) => ({ name: mac.replace(/:/g, '-'), ifRecorded: true }));
    await t.loadKnown();
    try {
      for (let i = 0; i < 3; i++) t.onDhcp({ ...os_, mac: '52:54:00:b0:07:99' });
      await t.idle();
      expect(gets).toBe(0);
      t.onDhcp(pxe);
      await t.idle();
      expect(gets).toBe(1);
      expect((await store.get('52-54-00-b0-07-01'))?.boots).toHaveLength(1);
    } finally {
      t.close();
    }
  });
});
