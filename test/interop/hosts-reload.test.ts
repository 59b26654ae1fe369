/**
 * hosts/*.yaml driving a running `bootd serve`, inside test namespaces:
 * a reservation and host name from a host file reach a real DHCP client
 * (udhcpc); editing the file changes what a PXELINUX-style request for
 * pxelinux.cfg/01-<mac> returns (tftp-hpa), with no restart; breaking the
 * file is reported and the last good config keeps serving.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED hosts reload interop tests: ${skip}`);

describe.skipIf(skip !== null)('hosts/*.yaml edited while bootd serves (network namespaces)', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;
  const PXE_MAC = '52:54:00:c0:00:01';
  const DHCP_MAC = '52:54:00:c0:00:02';
  const hostsDir = (): string => path.join(dir, 'hosts');

  beforeAll(async () => {
    dir = await makeWorkDir('hostsreload');
    await mkdir(hostsDir());
    await mkdir(path.join(dir, 'root'), { recursive: true });
    const images = path.join(dir, 'images');
    await addRecipe(images, 'bee');
    await addVersion(images, { name: 'bee', version: '1.0', current: true });
    await addVersion(images, { name: 'bee', version: '2.0' });
    await writeFile(path.join(hostsDir(), 'pxe-01.yaml'), `mac: ${PXE_MAC}\nimage: bee\n`);
    await writeFile(path.join(hostsDir(), 'audit-07.yaml'), `mac: ${DHCP_MAC}\nip: 198.18.0.77\nhostname: audit-07\nimage: bee\n`);
    await writeFile(path.join(dir, 'udhcpc.sh'), `#!/bin/sh\necho "$1 ip=$ip hostname=$hostname" >> "${dir}/udhcpc.events"\n`);
    await chmod(path.join(dir, 'udhcpc.sh'), 0o755);
    net = await TestNet.create({ hosts: ['server', 'pxe', 'dhcp'] });
    await net.dhcpClient('dhcp', DHCP_MAC);
    bootd = await startBootd(
      net,
      'server',
      [
        '--tftp-root', path.join(dir, 'root'),
        '--listen', net.host('server').address,
        '--interface', 'eth0',
        '--dhcp-range', '198.18.0.100-198.18.0.150',
        '--hosts', hostsDir(),
        '--images', images,
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

  /** What a PXELINUX-style request returns (tftp-hpa from the client namespace); '' when not found. */
  async function config(mac: string): Promise<string> {
    const out = path.join(dir, `cfg-${Math.random().toString(16).slice(2)}`);
    const r = await net.run('pxe', ['tftp', '-m', 'binary', net.host('server').address, '-c', 'get', `pxelinux.cfg/01-${mac.replace(/:/g, '-')}`, out]);
    const text = await readFile(out, 'utf8').catch(() => '');
    await rm(out, { force: true });
    return /Error code 1/.test(r.stdout + r.stderr) ? '' : text;
  }

  it('gives a DHCP client the address and host name from its host file', async () => {
    const child = net.spawn('dhcp', ['busybox', 'udhcpc', '-f', '-q', '-i', 'eth0', '-t', '5', '-T', '1', '-s', path.join(dir, 'udhcpc.sh')]);
    try {
      await until(async () => (await readFile(path.join(dir, 'udhcpc.events'), 'utf8').catch(() => '')).includes('bound'), 20_000, 'udhcpc bound');
      expect(await readFile(path.join(dir, 'udhcpc.events'), 'utf8')).toContain('bound ip=198.18.0.77 hostname=audit-07');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('serves the edited config without a restart, and keeps the last good one while the file is broken', async () => {
    const file = path.join(hostsDir(), 'pxe-01.yaml');
    expect(await config(PXE_MAC)).toMatch(/^\s*KERNEL \/images\/bee\/1\.0\/vmlinuz$/m);

    await writeFile(file, `mac: ${PXE_MAC}\nimage: bee@2.0\nkernel_args: console=ttyS0,115200\n`);
    await until(async () => (await config(PXE_MAC)).includes('/images/bee/2.0/vmlinuz'), 10_000, 'the edit to be served');
    expect(await config(PXE_MAC)).toMatch(/^\s*APPEND .* console=ttyS0,115200$/m);

    await writeFile(file, `mac: ${PXE_MAC}\nimage: bee@1.0\nnetboot: sometimes\n`);
    await until(() => bootd.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('pxe-01.yaml:3:10: netboot: expected true or false, got "sometimes"')), 10_000, 'the broken file to be reported');
    expect(bootd.logs.find((l) => typeof l.msg === 'string' && l.msg.includes('pxe-01.yaml:3:10'))).toMatchObject({ level: 40, line: 3, col: 10, key: 'netboot' });
    const served = await config(PXE_MAC);
    expect(served).toContain('/images/bee/2.0/vmlinuz');
    expect(served).toContain('console=ttyS0,115200');
  });

  it('starts and stops serving a host as its file appears and disappears', async () => {
    const mac = '52:54:00:c0:00:09';
    const file = path.join(hostsDir(), 'late-01.yaml');
    expect(await config(mac)).toBe('');
    await writeFile(file, `mac: ${mac}\nimage: bee\n`);
    await until(async () => (await config(mac)).includes('/images/bee/1.0/vmlinuz'), 10_000, 'the new host to be served');
    await rm(file);
    await until(async () => (await config(mac)) === '', 10_000, 'the removed host to be gone');
  });
});
