/**
 * The UEFI HTTP Boot disk of the signed chain (src/bootconfig/efi-disk.ts),
 * built with mtools from the real shim and GRUB setup.sh placed, and read
 * back with mtools: shim at the removable-media path, GRUB beside it under
 * the name shim loads, GRUB's config; served by name with the content type
 * edk2 mounts as a RAM disk.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_LOADERS } from '../../src/bootconfig/bootloaders.js';
import { EfiDisks, efiDiskGrubConfig, efiDiskPath } from '../../src/bootconfig/efi-disk.js';
import { makeWorkDir } from '../helpers/workdir.js';

function loader(name: string): string {
  const f = BOOT_LOADERS.find((l) => l.name === name);
  const found = [f?.source, ...(f?.alternates ?? [])].find((p) => p !== undefined && existsSync(p));
  if (!found) throw new Error(`${name} is not on this machine: run scripts/setup.sh (package ${f?.pkg})`);
  return found;
}

const mtools = (cmd: string, img: string, ...args: string[]): string => execFileSync(cmd, ['-i', img, ...args], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });

describe('the UEFI HTTP Boot disk', () => {
  let dir: string;
  let root: string;
  let ip = '198.18.77.1';
  beforeAll(async () => {
    dir = await makeWorkDir('efidisk');
    root = path.join(dir, 'tftp');
    await mkdir(root, { recursive: true });
    await copyFile(loader('shimx64.efi'), path.join(root, 'shimx64.efi'));
    await copyFile(loader('grubx64.efi'), path.join(root, 'grubx64.efi'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds shim as EFI/BOOT/BOOTX64.EFI, Debian\'s GRUB beside it as grubx64.efi, and grub/grub.cfg going on over TFTP', async () => {
    const disks = new EfiDisks({ root, serverIp: () => ip });
    const disk = await disks.get('amd64');
    expect(disk).toBeInstanceOf(Buffer);
    const img = path.join(dir, 'disk.img');
    await writeFile(img, disk as Buffer);
    const listing = mtools('mdir', img, '-b', '::/EFI/BOOT');
    expect(listing).toMatch(/BOOTX64\.EFI/i);
    expect(listing).toMatch(/grubx64\.efi/i);
    mtools('mcopy', img, '::/EFI/BOOT/BOOTX64.EFI', path.join(dir, 'shim-back.efi'));
    expect((await readFile(path.join(dir, 'shim-back.efi'))).equals(await readFile(loader('shimx64.efi')))).toBe(true);
    const cfg = mtools('mtype', img, '::/grub/grub.cfg');
    expect(cfg).toBe(efiDiskGrubConfig('198.18.77.1'));
    expect(cfg).toContain('net_bootp\n');
    expect(cfg).toContain('configfile "(tftp,198.18.77.1)/grub/mac-${bootd_mac}.cfg"');
    expect(efiDiskPath('amd64')).toBe('efi/http-boot-x64.img');
  });

  it('is built once, again when the server address changes; none without shim and GRUB for the architecture', async () => {
    const disks = new EfiDisks({ root, serverIp: () => ip });
    const a = await disks.get('amd64');
    expect(await disks.get('amd64')).toBe(a);
    ip = '198.18.77.9';
    const b = await disks.get('amd64');
    expect(b).not.toBe(a);
    const img = path.join(dir, 'disk2.img');
    await writeFile(img, b as Buffer);
    expect(mtools('mtype', img, '::/grub/grub.cfg')).toContain('(tftp,198.18.77.9)');
    expect(await disks.get('arm64')).toBeUndefined();
  });
});
