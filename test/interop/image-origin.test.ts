/**
 * Images built once, served everywhere: instance B has no image of its own
 * and takes versions from instance A's HTTP port (--image-origin
 * http://A:8080/images), in test namespaces. B follows A's current version:
 * a host's PXELINUX config on B boots it, and the kernel and initrd a client
 * reads from B over TFTP are A's bytes. A host pinned to a version the
 * origin lacks gets a config that waits and asks again, with the reason,
 * and the wait is on its timeline.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { PXE_BIOS, udhcpcOnce, udhcpcScript } from '../helpers/udhcpc.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED image origin tests: ${skip}`);

const WEB = '52:54:00:7d:00:01';
const OLD = '52:54:00:7d:00:02';

describe.skipIf(skip !== null)('an instance that takes its images from another (network namespaces)', () => {
  let net: TestNet;
  let dir: string;
  const running: RunningBootd[] = [];
  const kernel = Buffer.alloc(700_000, 0x4b);
  const initrd = Buffer.alloc(1_200_000, 0x49);

  beforeAll(async () => {
    dir = await makeWorkDir('image-origin');
    await addRecipe(path.join(dir, 'images-a'), 'bee');
    await addVersion(path.join(dir, 'images-a'), { name: 'bee', version: '2026.12.01', current: true, files: { vmlinuz: kernel, 'initrd.img': initrd } });
    await mkdir(path.join(dir, 'images-b'));
    await mkdir(path.join(dir, 'hosts-a'));
    await mkdir(path.join(dir, 'hosts-b'));
    await writeFile(path.join(dir, 'hosts-b', 'web-1.yaml'), `mac: ${WEB}\nimage: bee\n`);
    await writeFile(path.join(dir, 'hosts-b', 'old-1.yaml'), `mac: ${OLD}\nimage: bee@2025.01.01\n`);
    await udhcpcScript(dir);
    net = await TestNet.create({ hosts: ['a', 'b', 'client'] });
    await net.limitedBroadcast('b');
    running.push(await startBootd(net, 'a', ['--listen', net.host('a').address, '--tftp-root', path.join(dir, 'root'), '--http-port', '8080', '--images', path.join(dir, 'images-a'), '--hosts', path.join(dir, 'hosts-a'), '--admin-listen', 'off'], 'http listening'));
  }, 60_000);

  afterAll(async () => {
    for (const b of running) await b.stop().catch(() => {});
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const tftp = async (file: string): Promise<Buffer | null> => {
    const out = path.join(dir, `got-${Math.random().toString(16).slice(2)}`);
    const r = await net.run('client', ['tftp', net.host('b').address, '-m', 'binary', '-c', 'get', file, out]);
    const data = await readFile(out).catch(() => null);
    await rm(out, { force: true });
    return r.exitCode === 0 && !/Error code/.test(r.stdout + r.stderr) ? data : null;
  };

  it('follows the origin\'s current version and serves its verified bytes; a version the origin lacks makes the host wait', async () => {
    const b = await startBootd(net, 'b', ['--interface', 'eth0', '--dhcp-range', '198.18.0.100-198.18.0.150', '--force', '--listen', net.host('b').address, '--tftp-root', path.join(dir, 'root'), '--images', path.join(dir, 'images-b'), '--hosts', path.join(dir, 'hosts-b'), '--state', path.join(dir, 'state-b'), '--image-origin', `http://${net.host('a').address}:8080/images`, '--admin-listen', 'off'], 'dhcp listening');
    running.push(b);
    await until(() => b.logs.some((l) => l.msg === 'image: fetched from the origin and verified'), 20_000, 'b to fetch bee from a');
    expect(b.logs.find((l) => l.msg === 'image: fetched from the origin and verified')).toMatchObject({ image: 'bee', version: '2026.12.01', bytes: kernel.length + initrd.length });
    const cfg = (await tftp(`pxelinux.cfg/01-${WEB.replaceAll(':', '-')}`))?.toString() ?? '';
    expect(cfg).toMatch(/KERNEL \/images\/bee\/2026\.12\.01\/vmlinuz/);
    expect(await tftp('images/bee/2026.12.01/vmlinuz')).toEqual(kernel);
    expect(await tftp('images/bee/2026.12.01/initrd.img')).toEqual(initrd);

    // pinned to a version the origin does not have: its PXE ROM's DHCP, then a config that waits and asks again, with the reason
    await net.dhcpClient('client', OLD);
    const d = await udhcpcOnce(net, 'client', path.join(dir, 'udhcpc.sh'), { vendorClass: PXE_BIOS });
    expect(d.exitCode, d.stderr).toBe(0);
    const wait = (await tftp(`pxelinux.cfg/01-${OLD.replaceAll(':', '-')}`))?.toString() ?? '';
    expect(wait).toMatch(/^# image bee@2025\.01\.01 is not here yet, it is being fetched from the image origin http:\/\/198\.18\.0\.\d+:8080\/images/m);
    expect(wait).toMatch(/^DEFAULT wait$/m);
    expect(wait).toMatch(/^TIMEOUT 100$/m);
    expect(wait).toMatch(/^ONERROR local$/m);
    const ipxe = (await tftp(`ipxe/${OLD.replaceAll(':', '-')}.ipxe`))?.toString() ?? '';
    expect(ipxe).toMatch(/^sleep 10$/m);
    expect(ipxe).toMatch(/^chain --replace --autofree \/ipxe\/\$\{mac:hexhyp\}\.ipxe \|\| exit 1$/m);
    await until(() => b.logs.some((l) => l.msg === 'image: fetch from the origin failed; retrying' && l.version === '2025.01.01'), 10_000, 'the failed fetch in the log');
    // on the host's timeline (the records in b's state folder)
    await until(async () => (await readFile(path.join(dir, 'state-b', 'logs', 'old-1', 'events.log'), 'utf8').catch(() => '')).includes('is not here yet'), 5000, 'the wait on the timeline');
  }, 90_000);
});
