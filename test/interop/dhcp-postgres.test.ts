/**
 * bootd with its leases in PostgreSQL (--state-url) against real clients
 * (busybox udhcpc) in test namespaces, on a cluster the test starts itself:
 * the lease is in lease4 before the client has it; with the database down
 * no client is acknowledged (RFC 2131 section 4.3.2: the binding is stored
 * first) while TFTP keeps serving; when the database is back clients lease
 * again within seconds; a restarted bootd knows its leases from the database.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { postgresUnavailable, startCluster, type TestCluster } from '../helpers/postgres.js';
import { udhcpcScript } from '../helpers/udhcpc.js';
import { makeWorkDir, until } from '../helpers/workdir.js';
import { MIGRATIONS } from '../../src/state/pg/schema.js';

const skip = netnsUnavailable() ?? postgresUnavailable();
if (skip) console.warn(`SKIPPED DHCP on PostgreSQL interop tests: ${skip}`);

const MAC1 = '52:54:00:7a:00:01';
const MAC2 = '52:54:00:7a:00:02';

describe.skipIf(skip !== null)('DHCP with leases in PostgreSQL (network namespaces, a cluster of the test\'s own)', () => {
  let net: TestNet;
  let cluster: TestCluster;
  let bootd: RunningBootd;
  let dir: string;
  let url: string;
  let server: string;
  const serve = (): Promise<RunningBootd> =>
    startBootd(net, 'server', ['--interface', 'eth0', '--listen', server, '--dhcp-range', '198.18.0.100-198.18.0.150', '--unknown-hosts', 'lease', '--force', '--tftp-root', path.join(dir, 'root'), '--state', path.join(dir, 'state'), '--state-url', url, '--admin-listen', 'off'], 'dhcp listening');
  const udhcpc = (host: string, tries = 5) => net.run(host, ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', String(tries), '-T', '1', '-s', path.join(dir, 'udhcpc.sh')], { timeoutMs: 30_000 });
  const row = (mac: string) => cluster.psql('bootd', `SELECT host(address) || ' ' || state FROM lease4 WHERE hwaddr = '${mac}'`);

  beforeAll(async () => {
    dir = await makeWorkDir('dhcp-pg');
    cluster = await startCluster();
    url = await cluster.createDb('bootd');
    net = await TestNet.create({ hosts: ['server', 'c1', 'c2'] });
    server = net.host('server').address;
    await writeFile(path.join(dir, 'root', 'pxelinux.0'), Buffer.alloc(10_000, 3));
    await udhcpcScript(dir);
    await net.dhcpClient('c1', MAC1);
    await net.dhcpClient('c2', MAC2);
    await net.limitedBroadcast('server');
    bootd = await serve();
  }, 120_000);

  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stores the lease in lease4 before the client has it', async () => {
    const r = await udhcpc('c1');
    expect(r.exitCode, r.stderr).toBe(0);
    const got = /lease of (\d+\.\d+\.\d+\.\d+) obtained/.exec(r.stderr)?.[1];
    expect(got).toBeDefined();
    expect(await row(MAC1)).toBe(`${got} 0`);
    expect(await cluster.psql('bootd', 'SELECT max(version) FROM bootd_schema')).toBe(String(Math.max(...MIGRATIONS.map((m) => m.version))));
  });

  it('acknowledges no lease while the database is down, keeps serving TFTP, and leases again within seconds when it is back', async () => {
    await cluster.halt();
    const down = await udhcpc('c2', 3);
    expect(down.exitCode).not.toBe(0); // offers, maybe; never an ACK
    expect(down.stderr).not.toMatch(/obtained/);
    // said in the log: a commit refused, or the lead of the segment lost with the database (then nothing is answered)
    await until(() => bootd.logs.some((l) => l.msg === 'dhcp: lease not written, no ACK sent (the client will retry)' || String(l.msg).startsWith('dhcp: lead of the segment lost')), 5000, 'the outage in the log');
    const tftp = await net.run('c1', ['tftp', server, '-m', 'binary', '-c', 'get', 'pxelinux.0', path.join(dir, 'got')]);
    expect(tftp.exitCode, tftp.stderr).toBe(0);
    await cluster.resume();
    const back = Date.now();
    let ok = false;
    for (let i = 0; i < 10 && !ok; i++) ok = (await udhcpc('c2', 2)).exitCode === 0;
    const seconds = (Date.now() - back) / 1000;
    console.log(`leasing again ${seconds.toFixed(1)} s after the database came back`);
    expect(ok).toBe(true);
    expect(seconds).toBeLessThan(15);
    expect(await row(MAC2)).toMatch(/^198\.18\.0\.\d+ 0$/);
  }, 90_000);

  it('a restarted bootd knows its leases from the database: the client keeps its address', async () => {
    const before = (await row(MAC1)).split(' ')[0];
    await bootd.stop();
    bootd = await serve();
    expect(bootd.logs.find((l) => l.msg === 'dhcp listening')).toMatchObject({ leases: 2, state: 'postgresql' });
    const r = await udhcpc('c1');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(/lease of (\d+\.\d+\.\d+\.\d+) obtained/.exec(r.stderr)?.[1]).toBe(before);
  }, 60_000);
});
