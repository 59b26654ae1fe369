/**
 * A full disk (issue 19), on a small tmpfs mounted under the test's own
 * folder: while the state directory has no room, a real DHCP client gets no
 * ACK (its lease cannot be written) and an upload ends with ERROR 3 leaving
 * no partial file, while what was stored before stays whole; once space
 * returns, the client's own retries get the lease (on disk) and uploads land.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED disk-full test: ${skip}`);

const CLIENT_MAC = '52:54:00:ee:00:01';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(skip !== null)('a full disk under the state directory (tmpfs)', () => {
  let net: TestNet;
  let dir: string;
  let bootd: RunningBootd;
  let mounted = false;
  const state = (): string => path.join(dir, 'state');

  beforeAll(async () => {
    dir = await makeWorkDir('diskfull');
    await mkdir(state(), { recursive: true });
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'bootd-test-tmpfs', state()]);
    mounted = true;
    net = await TestNet.create({ hosts: ['server', 'client', 'uploader'] });
    await net.dhcpClient('client', CLIENT_MAC);
    await mkdir(path.join(dir, 'root'), { recursive: true });
    await mkdir(path.join(dir, 'hosts'), { recursive: true });
    await writeFile(path.join(dir, 'hosts', 'uploader.yaml'), `mac: 52:54:00:ee:00:02\nip: ${net.host('uploader').address}\nnetboot: false\n`);
    await writeFile(path.join(dir, 'udhcpc.sh'), `#!/bin/sh\necho "$1 ip=$ip" >> "${dir}/udhcpc.events"\n`, { mode: 0o755 });
    bootd = await startBootd(net, 'server', [
      '--tftp-root', path.join(dir, 'root'),
      '--listen', net.host('server').address,
      '--interface', 'eth0',
      '--dhcp-range', '198.18.0.100-198.18.0.150',
      '--unknown-hosts', 'lease',
      '--hosts', path.join(dir, 'hosts'),
      '--state', state(),
      '--report-tftp-port', '1069',
      '--tftp-give-up-ms', '2000',
      '--force',
    ], 'dhcp listening');
  });
  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy();
    if (mounted) await execa('umount', [state()], { reject: false });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const put = (local: string, remote: string) => net.run('uploader', ['busybox', 'tftp', '-p', '-l', local, '-r', remote, net.host('server').address, '1069'], { timeoutMs: 30_000 });
  const events = (): Promise<string> => readFile(path.join(dir, 'udhcpc.events'), 'utf8').catch(() => '');

  it('acknowledges nothing it cannot write, keeps what it stored, and resumes when space returns', async () => {
    const before = randomBytes(64 * 1024);
    await writeFile(path.join(dir, 'before.bin'), before);
    expect((await put(path.join(dir, 'before.bin'), 'before.bin')).exitCode).toBe(0);

    // fill the tmpfs to the last page
    const filler = path.join(state(), 'filler');
    await execa('sh', ['-c', `head -c 8m /dev/zero > '${filler}'`], { reject: false });
    const upload = randomBytes(200 * 1024);
    await writeFile(path.join(dir, 'during.bin'), upload);
    const during = await put(path.join(dir, 'during.bin'), 'during.bin');
    expect(during.exitCode).not.toBe(0);
    expect(during.stderr + during.stdout).toMatch(/disk|space|allocation|store/i);

    const udhcpc = net.spawn('client', ['busybox', 'udhcpc', '-f', '-i', 'eth0', '-t', '100', '-T', '1', '-A', '1', '-s', path.join(dir, 'udhcpc.sh')]);
    try {
      await until(() => bootd.logs.some((l) => l.msg === 'dhcp: lease not written, no ACK sent (the client will retry)'), 15_000, 'a lease write that failed');
      expect(await events()).not.toContain('bound');
      const stored = path.join(state(), 'uploads', 'uploader');
      expect((await readdir(stored)).sort()).toEqual(['before.bin']); // no partial upload left
      expect(sha(await readFile(path.join(stored, 'before.bin')))).toBe(sha(before));

      await rm(filler); // space is back
      await until(async () => (await events()).includes('bound'), 30_000, 'udhcpc bound once space returned');
      const ip = /bound ip=(\S+)/.exec(await events())?.[1];
      const onDisk = (await FileLeaseStore.read(state())).find((l) => l.mac === CLIENT_MAC);
      expect(onDisk?.ip).toBe(ip);
      expect((await put(path.join(dir, 'during.bin'), 'during.bin')).exitCode).toBe(0);
      expect(sha(await readFile(path.join(stored, 'during.bin')))).toBe(sha(upload));
      expect(bootd.child.exitCode).toBeNull();
    } finally {
      udhcpc.kill('SIGTERM');
    }
  });
});
