/**
 * Real DHCP clients from Debian packages against `bootd serve` in full mode,
 * inside test namespaces: busybox udhcpc, dhclient and dhcpcd each get a
 * lease with the right mask, router and next server; udhcpc renews and
 * releases; a reserved MAC gets its reserved address. Client scripts only
 * record what they got and set the address inside the client's namespace.
 */
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import { REPO, startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir, until } from '../helpers/workdir.js';
import { FileHostRecords } from '../../src/state/host-records.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED dhcp interop tests: ${skip}`);

describe.skipIf(skip !== null)('real DHCP clients against bootd serve (full mode, network namespaces)', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;
  const RESERVED_MAC = '52:54:00:aa:00:05';

  beforeAll(async () => {
    dir = await makeWorkDir('dhcp');
    // udhcpc's script: record the event, and (inside the client namespace only) set the address so renewals can be unicast
    await writeFile(
      path.join(dir, 'udhcpc.sh'),
      `#!/bin/sh\necho "$1 ip=$ip subnet=$subnet router=$router siaddr=$siaddr serverid=$serverid lease=$lease" >> "${dir}/udhcpc.events"\ncase "$1" in bound|renew) ip addr replace "$ip/$subnet" dev "$interface";; deconfig) ip addr flush dev "$interface";; esac\n`,
    );
    await writeFile(path.join(dir, 'dhclient.sh'), `#!/bin/sh\necho "$reason ip=$new_ip_address mask=$new_subnet_mask routers=$new_routers server=$new_dhcp_server_identifier" >> "${dir}/dhclient.events"\n`);
    await writeFile(path.join(dir, 'dhcpcd.sh'), `#!/bin/sh\necho "$reason ip=$new_ip_address mask=$new_subnet_mask routers=$new_routers server=$new_dhcp_server_identifier" >> "${dir}/dhcpcd.events"\n`);
    for (const f of ['udhcpc.sh', 'dhclient.sh', 'dhcpcd.sh']) await chmod(path.join(dir, f), 0o755);
    net = await TestNet.create({ hosts: ['server', 'udhcpc', 'dhclient', 'dhcpcd', 'reserved', 'second'] });
    const macs: Record<string, string> = { udhcpc: '52:54:00:aa:00:01', dhclient: '52:54:00:aa:00:02', dhcpcd: '52:54:00:aa:00:03', reserved: RESERVED_MAC };
    for (const [host, mac] of Object.entries(macs)) {
      // clients start with no address: DHCP must give them one
      await net.dhcpClient(host, mac);
    }
    bootd = await startBootd(
      net,
      'server',
      [
        '--tftp-root', path.join(dir, 'root'),
        '--listen', net.host('server').address,
        '--interface', 'eth0',
        '--dhcp-range', '198.18.0.100-198.18.0.150',
        '--unknown-hosts', 'lease',
        '--router', '198.18.0.254',
        '--next-server', '198.18.0.1',
        '--lease-time', '600',
        '--reserve', `${RESERVED_MAC}=198.18.0.42`,
        '--state', path.join(dir, 'state'),
        '--dhcp-probe-ms', '300',
      ],
      'dhcp listening',
    );
  });

  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const events = async (name: string): Promise<string> => readFile(path.join(dir, `${name}.events`), 'utf8').catch(() => '');

  it('busybox udhcpc gets a lease with mask, router and next server, renews it, and releases it', async () => {
    const child = net.spawn('udhcpc', ['busybox', 'udhcpc', '-f', '-i', 'eth0', '-t', '5', '-T', '1', '-s', path.join(dir, 'udhcpc.sh')]);
    try {
      await until(async () => (await events('udhcpc')).includes('bound'), 20_000, 'udhcpc bound');
      expect(await events('udhcpc')).toMatch(/bound ip=198\.18\.0\.1\d\d subnet=255\.255\.255\.0 router=198\.18\.0\.254 siaddr=198\.18\.0\.1 serverid=198\.18\.0\.1 lease=600/);
      // udhcpc leaves the broadcast bit clear: the OFFER and ACK went by unicast to yiaddr (RFC 2131 section 4.1),
      // through the ARP entry bootd installed, and udhcpc took them
      const first = bootd.logs.filter((l) => (l.msg === 'dhcp offer' || l.msg === 'dhcp ack') && l.mac === '52:54:00:aa:00:01').slice(0, 2);
      expect(first.map((l) => l.to)).toEqual([first[0]?.ip, first[0]?.ip]);
      expect(first[0]?.ip).toMatch(/^198\.18\.0\.1\d\d$/);
      child.kill('SIGUSR1'); // renew: unicast REQUEST with ciaddr (RENEWING)
      await until(async () => (await events('udhcpc')).includes('renew'), 20_000, 'udhcpc renew');
      const ip = /bound ip=(\S+)/.exec(await events('udhcpc'))?.[1];
      expect(await events('udhcpc')).toContain(`renew ip=${ip}`);
      const acks = bootd.logs.filter((l) => l.msg === 'dhcp ack' && l.mac === '52:54:00:aa:00:01');
      expect(acks.length).toBeGreaterThanOrEqual(2);
      child.kill('SIGUSR2'); // release
      await until(() => bootd.logs.some((l) => l.msg === 'dhcp release' && l.mac === '52:54:00:aa:00:01'), 10_000, 'release logged');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('dhclient (isc-dhcp-client) gets a lease with mask and router', async () => {
    const r = await net.run('dhclient', ['dhclient', '-1', '-sf', path.join(dir, 'dhclient.sh'), '-lf', path.join(dir, 'dhclient.leases'), '-pf', path.join(dir, 'dhclient.pid'), 'eth0'], { timeoutMs: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await events('dhclient')).toMatch(/BOUND ip=198\.18\.0\.1\d\d mask=255\.255\.255\.0 routers=198\.18\.0\.254 server=198\.18\.0\.1/);
    const rel = await net.run('dhclient', ['dhclient', '-r', '-sf', path.join(dir, 'dhclient.sh'), '-lf', path.join(dir, 'dhclient.leases'), '-pf', path.join(dir, 'dhclient.pid'), 'eth0'], { timeoutMs: 30_000 });
    expect(rel.exitCode, rel.stderr).toBe(0);
  });

  it('dhcpcd gets a lease with mask and router', async () => {
    const r = await net.run('dhcpcd', ['dhcpcd', '-4', '-1', '-B', '-t', '30', '--nogateway', '--noipv4ll', '-c', path.join(dir, 'dhcpcd.sh'), 'eth0'], { timeoutMs: 60_000 });
    expect(await events('dhcpcd'), `dhcpcd: ${r.stderr}`).toMatch(/BOUND ip=198\.18\.0\.1\d\d mask=255\.255\.255\.0 routers=198\.18\.0\.254 server=198\.18\.0\.1/);
  });

  it('a reserved MAC gets its reserved address, outside the dynamic range', async () => {
    const r = await net.run('reserved', ['busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '5', '-T', '1', '-s', path.join(dir, 'udhcpc.sh')], { timeoutMs: 30_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await events('udhcpc')).toMatch(/bound ip=198\.18\.0\.42 /);
  });

  it('keeps no after-boot records of plain DHCP clients that are not in hosts/ and that it does not boot', async () => {
    await new Promise((r) => setTimeout(r, 600)); // past the store's gathering delay
    const records = await FileHostRecords.reader(path.join(dir, 'state'));
    expect((await records.list()).items).toEqual([]);
    expect(bootd.logs.filter((l) => l.msg === 'dhcp ack').length).toBeGreaterThanOrEqual(4);
  });

  it('a second bootd in full mode on the same segment refuses to start, naming the server that answered', async () => {
    const r = await net.run(
      'second',
      [process.execPath, path.join(REPO, 'bin/bootd'), 'serve', '--log-format', 'json', '--tftp-root', path.join(dir, 'root'), '--listen', net.host('second').address, '--tftp-port', '6969',
        '--interface', 'eth0', '--dhcp-range', '198.18.0.200-198.18.0.210', '--unknown-hosts', 'lease', '--state', path.join(dir, 'state2'), '--dhcp-probe-ms', '1500'],
      { timeoutMs: 30_000 },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/another DHCP server answers on eth0 \(198\.18\.0\.1\)/);
  });

  it('gives each client a different address and keeps every ACKed lease on disk', async () => {
    const store = await FileLeaseStore.open(path.join(dir, 'state')); // snapshot + journal, as bootd recovers them
    const leases = store.leases();
    await store.close();
    const ips = leases.map((l) => l.ip);
    expect(new Set(ips).size).toBe(ips.length);
    expect(leases.map((l) => l.mac).sort()).toEqual(['52:54:00:aa:00:01', '52:54:00:aa:00:02', '52:54:00:aa:00:03', RESERVED_MAC]);
  });
});
