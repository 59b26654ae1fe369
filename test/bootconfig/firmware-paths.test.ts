/**
 * For each firmware path, the files a client would fetch, in order, exist on
 * bootd's TFTP service: the NBP that DHCP names for it, the NBP's own module,
 * the config bootd renders, and every kernel and initrd that config names.
 * A real client (tftp-hpa) fetches them from `startApp` on 127.0.0.1, with
 * the boot loaders placed by `bootd setup` from the Debian packages.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { BOOT_LOADERS, placeBootLoaders } from '../../src/bootconfig/bootloaders.js';
import { chooseBoot, type BootFileNames } from '../../src/dhcp/boot-policy.js';
import { silentLogger } from '../../src/log.js';
import { systemClock } from '../../src/net/clock.js';
import { linuxMtu } from '../../src/net/mtu.js';
import { nodeUdp } from '../../src/net/udp.js';
import { TFTP_DEFAULTS } from '../../src/tftp/server.js';
import { addVersion } from '../helpers/catalog.js';
import { makeWorkDir, until } from '../helpers/workdir.js';
import { TestClient } from '../helpers/tftp-client.js';

const run = promisify(execFile);
const MAC = '52:54:00:f1:00:01';
const HYPHEN = MAC.replace(/:/g, '-');
/** The DHCP server's defaults (bootd serve). */
const NAMES: BootFileNames = { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi' }, ipxe: 'boot.ipxe' };

describe('every file a firmware path asks for is served', () => {
  let dir: string;
  let app: App;
  const ac = new AbortController();
  const images = (): string => path.join(dir, 'images');

  beforeAll(async () => {
    dir = await makeWorkDir('fwpaths');
    const setup = await placeBootLoaders(path.join(dir, 'root'));
    // the setup script installs these packages; without them the paths below cannot work
    expect(setup.missing, 'run scripts/setup.sh (it installs pxelinux, syslinux-efi, syslinux-common, ipxe)').toEqual([]);
    await addVersion(images(), { name: 'bee', version: '1.0', files: { vmlinuz: 'kernel bytes', 'initrd.img': 'initrd bytes', 'overlay.img': 'overlay bytes' }, current: true });
    await mkdir(path.join(dir, 'hosts'));
    // reserved 127.0.0.1: the test's own requests come from this host, so its quirks apply to them
    await writeFile(path.join(dir, 'hosts', 'fw-01.yaml'), `mac: ${MAC}\nip: 127.0.0.1\nimage: bee\nquirks: { tftp_max_blksize: 512, tftp_no_windowsize: true }\n`);
    app = await startApp(
      {
        tftp: { root: path.join(dir, 'root'), listen: '127.0.0.1', port: 0, maxTransfers: 10, maxBlksize: TFTP_DEFAULTS.maxBlksize, maxWindowsize: TFTP_DEFAULTS.maxWindowsize, timing: TFTP_DEFAULTS.timing, cacheBytes: 16 << 20 },
        hosts: { dir: path.join(dir, 'hosts') },
        images: { dir: images() },
        boot: { serverAddress: '127.0.0.1', kernelArgs: [], ipxeBootFile: NAMES.ipxe },
      },
      { log: silentLogger, clock: systemClock, udp: nodeUdp, mtu: linuxMtu },
      ac.signal,
    );
  });
  afterAll(async () => {
    ac.abort();
    await app?.stopped;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** tftp-hpa, as pxelinux asks: leading slash allowed, binary mode. */
  async function fetch(name: string): Promise<Buffer> {
    const out = path.join(dir, `got-${Math.random().toString(16).slice(2)}`);
    const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(app.tftp.address.port), '-c', 'get', name, out]).catch((e: { stdout: string; stderr: string }) => e);
    const got = await readFile(out).catch(() => null);
    await rm(out, { force: true });
    if (got === null || /Error code/.test(`${r.stdout}${r.stderr}`)) throw new Error(`tftp get ${name}: ${r.stdout}${r.stderr}`);
    return got;
  }

  const source = (name: string): Promise<Buffer> => readFile((BOOT_LOADERS.find((b) => b.name === name) as { source: string }).source);
  const catalogFile = (p: string): Promise<Buffer> => readFile(path.join(images(), p.replace(/^\/images\//, '')));

  /** KERNEL and the initrd= list of a PXELINUX config, as PXELINUX reads them. */
  function pxelinuxFiles(cfg: string): string[] {
    const kernel = /^\s*KERNEL (\S+)/m.exec(cfg)?.[1];
    const initrd = /^\s*APPEND .*?\binitrd=(\S+)/m.exec(cfg)?.[1];
    expect(kernel, cfg).toBeDefined();
    expect(initrd, cfg).toBeDefined();
    return [kernel as string, ...(initrd as string).split(',')];
  }

  it.each([
    ['BIOS PXE ROM -> pxelinux.0', { arch: 0, pxe: true }, 'ldlinux.c32'],
    ['x64 UEFI PXE (EDK2) -> syslinux.efi', { arch: 7, pxe: true }, 'ldlinux.e64'],
  ])('%s -> its core module -> pxelinux.cfg/01-<mac> -> kernel and initrds', async (_path, facts, module) => {
    const boot = chooseBoot({ ...facts, ipxe: false, vendorClass: 'PXEClient' }, NAMES);
    if (boot.kind !== 'file') throw new Error(boot.reason);
    expect(await fetch(boot.file)).toEqual(await source(boot.file));
    // PXELINUX's path prefix is the NBP's folder; at the root it is empty (WIRE.md)
    expect(path.posix.dirname(boot.file)).toBe('.');
    expect(await fetch(module)).toEqual(await source(module));
    const cfg = (await fetch(`pxelinux.cfg/01-${HYPHEN}`)).toString();
    const files = pxelinuxFiles(cfg);
    expect(files).toEqual(['/images/bee/1.0/vmlinuz', '/images/bee/1.0/initrd.img', '/images/bee/1.0/overlay.img']);
    for (const f of files) expect(await fetch(f)).toEqual(await catalogFile(f));
  });

  it('iPXE (user class iPXE) -> boot.ipxe -> ipxe/<mac>.ipxe -> kernel and initrds', async () => {
    const boot = chooseBoot({ arch: 0, pxe: true, ipxe: true, vendorClass: 'PXEClient' }, NAMES);
    if (boot.kind !== 'file') throw new Error(boot.reason);
    const dispatch = (await fetch(boot.file)).toString();
    const chained = /^chain (\S+)/m.exec(dispatch)?.[1];
    expect(chained).toBe('/ipxe/${mac:hexhyp}.ipxe');
    const script = (await fetch((chained as string).replace('${mac:hexhyp}', HYPHEN))).toString();
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    const kernel = /^kernel (\S+)/m.exec(script)?.[1] as string;
    const initrds = [...script.matchAll(/^initrd --name (\S+) (\S+)/gm)].map((m) => ({ name: m[1] as string, path: m[2] as string }));
    expect(initrds.map((i) => i.name)).toEqual(['initrd.img', 'overlay.img']);
    // each initrd is named on the kernel line for the EFI stub
    for (const i of initrds) expect(script).toMatch(new RegExp(`^kernel .* initrd=${i.name.replace('.', '\\.')} `, 'm'));
    for (const f of [kernel, ...initrds.map((i) => i.path)]) expect(await fetch(f)).toEqual(await catalogFile(f));
  });

  it("applies the host's TFTP quirks: blksize capped, windowsize not acknowledged", async () => {
    const sock = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    try {
      const c = new TestClient(sock, app.tftp.address);
      c.request('images/bee/1.0/vmlinuz', [
        { name: 'tsize', value: '0' },
        { name: 'blksize', value: '1468' },
        { name: 'windowsize', value: '4' },
      ]);
      await until(() => c.done, 10_000, 'the transfer', 10);
      expect(c.oack).toEqual({ tsize: '12', blksize: '512' });
      expect(c.data.toString()).toBe('kernel bytes');
    } finally {
      sock.close();
    }
  });

  it('a machine not in hosts/ finds no 01-<mac> file and falls to pxelinux.cfg/default', async () => {
    await expect(fetch('pxelinux.cfg/01-52-54-00-99-99-99')).rejects.toThrow(/Error code 1: File not found/);
    expect((await fetch('pxelinux.cfg/default')).toString()).toMatch(/^\s*LOCALBOOT 0$/m);
  });
});
