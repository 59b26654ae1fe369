/**
 * kill -9 during a burst of leases: every lease the clients saw acknowledged
 * is on disk afterwards, and the same MAC gets the same address from the
 * restarted server (ACKs leave only after their lease is durable).
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import { REPO, startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED dhcp restart test: ${skip}`);

describe.skipIf(skip !== null)('DHCP leases survive kill -9', () => {
  let net: TestNet;
  let dir: string;
  let bootd: RunningBootd | undefined;
  const args = (d: string): string[] => [
    '--tftp-root', path.join(d, 'root'),
    '--listen', '198.18.0.1',
    '--interface', 'eth0',
    '--dhcp-range', '198.18.0.10-198.18.0.250',
    '--unknown-hosts', 'lease',
    '--state', path.join(d, 'state'),
    '--force', // the first server's socket may linger for a moment after kill -9; no other server exists here
  ];

  beforeAll(async () => {
    dir = await makeWorkDir('restart');
    net = await TestNet.create({ hosts: ['server', 'client'] });
  });
  afterAll(async () => {
    await bootd?.stop('SIGKILL');
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged lease and gives each MAC its address again', async () => {
    bootd = await startBootd(net, 'server', args(dir), 'dhcp listening');
    const acked = path.join(dir, 'acked.txt');
    const burst = net.spawn('client', [process.execPath, path.join(REPO, 'test/tools/dhcp-burst.mjs'), '198.18.0.255', '200', acked, '6']);
    // let part of the burst through, then kill the server without warning
    const start = Date.now();
    for (;;) {
      const n = (await readFile(acked, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
      if (n >= 40 || Date.now() - start > 15_000) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await bootd.stop('SIGKILL');
    await new Promise<void>((r) => (burst.exitCode !== null ? r() : burst.on('exit', () => r())));
    const lines = (await readFile(acked, 'utf8')).split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThanOrEqual(40);
    const ackedLeases = new Map(lines.map((l) => l.split(' ') as [string, string]));

    const store = await FileLeaseStore.open(path.join(dir, 'state')); // snapshot + journal, as bootd recovers them
    const onDisk = new Map(store.leases().map((l) => [l.mac, l.ip]));
    await store.close();
    for (const [mac, ip] of ackedLeases) expect(onDisk.get(mac), `lease of ${mac}`).toBe(ip);

    // the restarted server honours them: the same MACs get the same addresses
    bootd = await startBootd(net, 'server', args(dir), 'dhcp listening');
    const again = path.join(dir, 'again.txt');
    const r = await net.run('client', [process.execPath, path.join(REPO, 'test/tools/dhcp-burst.mjs'), '198.18.0.255', String(Math.min(60, ackedLeases.size)), again, '20']);
    expect(r.exitCode, r.stderr).toBe(0);
    const second = (await readFile(again, 'utf8')).split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]);
    expect(second.length).toBe(Math.min(60, ackedLeases.size));
    for (const [mac, ip] of second) expect(ip, `address of ${mac} after restart`).toBe(ackedLeases.get(mac));
  });
});
