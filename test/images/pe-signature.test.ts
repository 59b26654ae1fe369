/**
 * The Secure Boot signature of PE files (src/images/pe-signature.ts), read
 * from real Debian binaries: shim (signed by Microsoft), Debian's signed
 * netboot GRUB, and syslinux.efi (never signed), all placed by setup.sh;
 * and a catalog that tells a host file under Secure Boot that its image's
 * kernel is not signed, with file, line, key and why.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_LOADERS } from '../../src/bootconfig/bootloaders.js';
import { formatIssue } from '../../src/config/yaml-config.js';
import { assemble } from '../../src/hosts/directory.js';
import { parseHostFile } from '../../src/hosts/schema.js';
import { ImageCatalog } from '../../src/images/catalog.js';
import { certificateTable, peSignature, peSignatureOfFile } from '../../src/images/pe-signature.js';
import { addVersion } from '../helpers/catalog.js';
import { makeWorkDir } from '../helpers/workdir.js';

/** Where setup.sh put a loader (installed package, or the unpacked one). */
function loader(name: string): string {
  const f = BOOT_LOADERS.find((l) => l.name === name);
  const found = [f?.source, ...(f?.alternates ?? [])].find((p) => p !== undefined && existsSync(p));
  if (!found) throw new Error(`${name} is not on this machine: run scripts/setup.sh (package ${f?.pkg})`);
  return found;
}

describe('PE signatures of real Debian binaries', () => {
  it('shim is signed by Microsoft, GRUB by Debian, syslinux.efi by nobody; pxelinux.0 is no PE file', () => {
    const shim = peSignatureOfFile(loader('shimx64.efi'));
    expect(shim).toMatchObject({ pe: true, signed: true });
    expect(shim.pe && shim.signers.some((s) => /^Microsoft/.test(s))).toBe(true);
    expect(peSignatureOfFile(loader('grubx64.efi'))).toEqual({ pe: true, signed: true, signers: ['Debian Secure Boot Signer 2022 - grub2'] });
    expect(peSignatureOfFile(loader('syslinux.efi'))).toEqual({ pe: true, signed: false, signers: [] });
    expect(peSignatureOfFile(loader('pxelinux.0'))).toEqual({ pe: false, reason: 'no MZ header' });
  });

  it('reads the same from memory as from the file; a table past the end or a cut header is no signature', async () => {
    const grub = await readFile(loader('grubx64.efi'));
    expect(peSignature(grub)).toEqual(peSignatureOfFile(loader('grubx64.efi')));
    const t = certificateTable(grub.subarray(0, 4096));
    expect('offset' in t && t.offset + t.size).toBe(grub.length);
    expect(peSignature(grub.subarray(0, grub.length - 100))).toEqual({ pe: false, reason: 'certificate table past the end of the file' });
    expect(peSignature(grub.subarray(0, 0x50))).toMatchObject({ pe: false });
  });
});

describe('a Secure Boot host and its image\'s kernel', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeWorkDir('pe-sig');
    // an unsigned PE "kernel" (syslinux.efi) and a signed one (GRUB): what counts is the signature
    await addVersion(dir, { name: 'plain', version: '1', files: { vmlinuz: await readFile(loader('syslinux.efi')), 'initrd.img': 'i' }, current: true });
    await addVersion(dir, { name: 'signed', version: '1', files: { vmlinuz: await readFile(loader('grubx64.efi')), 'initrd.img': 'i' }, current: true });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is an error naming the file, the line of image: and why; the same host without secure_boot, or with a signed kernel, is fine', () => {
    const catalog = new ImageCatalog(dir);
    expect(catalog.kernelSigned('plain')).toBe(false);
    expect(catalog.kernelSigned('signed')).toBe(true);
    expect(catalog.list().find((i) => i.name === 'signed')?.versions[0]?.kernelSigned).toBe(true);
    const files = new Map(
      Object.entries({
        a: 'mac: 52:54:00:5b:00:01\nsecure_boot: true\nimage: plain\n',
        b: 'mac: 52:54:00:5b:00:02\nimage: plain\n',
        c: 'mac: 52:54:00:5b:00:03\nsecure_boot: true\nimage: signed@1\n',
      }).map(([n, t]) => [path.join('hosts', `${n}.yaml`), parseHostFile(`hosts/${n}.yaml`, n, t)]),
    );
    const a = assemble(files, new Map(), catalog);
    expect(a.issues.map(formatIssue)).toEqual([
      "hosts/a.yaml:3:8: image: image plain (current version) has an unsigned kernel, and this host boots under Secure Boot (secure_boot: true), where shim refuses it; build the image with a signed kernel (Debian's linux-image-* packages, not -unsigned)",
    ]);
    expect(a.set.byName('b')?.loader).toBeUndefined();
    expect(a.set.byName('c')).toMatchObject({ loader: 'grub', secureBoot: true });
  });
});
