/**
 * proxyDHCP beside a real DHCP server: dnsmasq gives the address, bootd in
 * proxy mode gives the boot file; a PXE-like client (test/tools/pxe-client.mjs)
 * receives both offers and then gets the boot file from bootd's port 4011.
 * The firmware proof (iPXE, OVMF) comes with the QEMU lab.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED dhcp proxy test: ${skip}`);

interface Offer {
  from: string;
  type: number;
  serverId: string | null;
  yiaddr: string;
  siaddr: string;
  file: string;
  bootfile: string | null;
  vendorClass: string | null;
  opt43: string | null;
}

describe.skipIf(skip !== null)('proxyDHCP beside dnsmasq', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;

  beforeAll(async () => {
    dir = await makeWorkDir('proxy');
    net = await TestNet.create({ hosts: ['server', 'dhcp', 'client'] });
    const dnsmasq = net.spawn('dhcp', ['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root', '--interface=eth0', '--bind-interfaces',
      '--dhcp-range=198.18.0.100,198.18.0.150,255.255.255.0,10m', '--no-ping', `--dhcp-leasefile=${dir}/dnsmasq.leases`, `--pid-file=${dir}/dnsmasq.pid`]);
    dnsmasq.stderr?.resume();
    bootd = await startBootd(
      net,
      'server',
      ['--tftp-root', path.join(dir, 'root'), '--listen', '198.18.0.1', '--interface', 'eth0', '--dhcp-mode', 'proxy', '--unknown-hosts', 'boot', '--state', path.join(dir, 'state')],
      'dhcp listening',
    );
  });

  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the client gets its address from dnsmasq and its boot file from bootd, also on port 4011', async () => {
    const r = await net.run('client', [process.execPath, path.join(REPO, 'test/tools/pxe-client.mjs'), '198.18.0.255', '52:54:00:cc:00:01', '3000'], { timeoutMs: 30_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const { offers, acks } = JSON.parse(r.stdout) as { offers: Offer[]; acks: Offer[] };
    const address = offers.find((o) => o.serverId === '198.18.0.2');
    const proxy = offers.find((o) => o.serverId === '198.18.0.1');
    expect(address?.yiaddr, JSON.stringify(offers)).toMatch(/^198\.18\.0\.1\d\d$/);
    expect(proxy).toMatchObject({ yiaddr: '0.0.0.0', siaddr: '198.18.0.1', file: 'pxelinux.0', bootfile: 'pxelinux.0', vendorClass: 'PXEClient', opt43: '060108' });
    expect(acks).toEqual([expect.objectContaining({ type: 5, serverId: '198.18.0.1', file: 'pxelinux.0' })]);
  });
});
