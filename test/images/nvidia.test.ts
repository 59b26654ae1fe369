/**
 * The NVIDIA driver's build decisions (src/images/nvidia.ts), and the apt
 * sources a recipe with non-free components reads (src/images/packages.ts):
 * pure parts on crafted inputs; dkms.conf sourced by bash as DKMS does. The
 * real build of the modules is in test/images/real-build.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bufferReader, readModinfo } from '../../src/images/elf.js';
import { DKMS_DUMP, exclusionProblem, kernelHeaderPackages, missingDepends, moduleCacheKey, parseDkmsDump, vermagicProblem } from '../../src/images/nvidia.js';
import { debianArchives, parsePrintUris, sourcesList } from '../../src/images/packages.js';
import { parseRecipe } from '../../src/images/recipe.js';

/** A relocatable ELF-64 with a .modinfo section holding `entries` (what kbuild leaves in a .ko). */
function craftModule(entries: readonly string[]): Buffer {
  const modinfo = Buffer.from(`${entries.join('\0')}\0`, 'latin1');
  const shstr = Buffer.from('\0.modinfo\0.shstrtab\0', 'latin1');
  const dataAt = 64;
  const shstrAt = dataAt + modinfo.length;
  const shoff = (shstrAt + shstr.length + 7) & ~7;
  const b = Buffer.alloc(shoff + 3 * 64);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(1, 0x10); // ET_REL
  b.writeUInt16LE(62, 0x12); // x86-64
  b.writeUInt32LE(1, 0x14);
  b.writeBigUInt64LE(BigInt(shoff), 0x28);
  b.writeUInt16LE(64, 0x34);
  b.writeUInt16LE(64, 0x3a);
  b.writeUInt16LE(3, 0x3c);
  b.writeUInt16LE(2, 0x3e);
  modinfo.copy(b, dataAt);
  shstr.copy(b, shstrAt);
  const sh = (i: number, name: number, type: number, offset: number, size: number) => {
    const o = shoff + i * 64;
    b.writeUInt32LE(name, o);
    b.writeUInt32LE(type, o + 4);
    b.writeBigUInt64LE(BigInt(offset), o + 24);
    b.writeBigUInt64LE(BigInt(size), o + 32);
  };
  sh(1, 1, 1 /* PROGBITS */, dataAt, modinfo.length);
  sh(2, 10, 3 /* STRTAB */, shstrAt, shstr.length);
  return b;
}

describe('NVIDIA driver build decisions', () => {
  it('reads .modinfo of a module: vermagic, and every value of a repeated key', async () => {
    const vm = '6.1.0-57-cloud-amd64 SMP preempt mod_unload modversions ';
    const info = await readModinfo(bufferReader(craftModule([`vermagic=${vm}`, 'license=NVIDIA', 'alias=pci:v000010DEd*sv*sd*bc03sc00i00*', 'alias=pci:v000010DEd*sv*sd*bc03sc02i00*', 'depends='])));
    expect(info?.get('vermagic')).toEqual([vm]);
    expect(info?.get('alias')).toHaveLength(2);
    expect(info?.get('depends')).toEqual(['']);
    await expect(readModinfo(bufferReader(Buffer.from('not an ELF file at all, just text padding it out to sixty-four bytes...')))).rejects.toThrow(/not an ELF file/);
  });

  it('refuses a module whose vermagic is not the kernel\'s, naming both', () => {
    const k = '6.1.0-57-cloud-amd64 SMP preempt mod_unload modversions ';
    expect(vermagicProblem('nvidia.ko', k, k, '6.1.0-57-cloud-amd64')).toBeNull();
    // the seed's trap: headers of another kernel
    expect(vermagicProblem('nvidia.ko', '6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ', k, '6.1.0-57-cloud-amd64')).toMatch(/^nvidia\.ko was built for "6\.1\.0-56-cloud-amd64 .*" but the image's kernel 6\.1\.0-57-cloud-amd64 is "6\.1\.0-57-cloud-amd64 .*" \(vermagic\)/);
    expect(vermagicProblem('nvidia.ko', '6.1.0-57-cloud-amd64 SMP mod_unload modversions ', k, '6.1.0-57-cloud-amd64')).not.toBeNull();
    expect(vermagicProblem('nvidia.ko', undefined, k, '6.1.0-57-cloud-amd64')).toMatch(/no vermagic/);
  });

  it('pins the headers to the image kernel\'s package version', () => {
    expect(kernelHeaderPackages('6.1.0-57-cloud-amd64', 'cloud-amd64', '6.1.192-3')).toEqual([
      'linux-headers-6.1.0-57-cloud-amd64=6.1.192-3',
      'linux-headers-6.1.0-57-common=6.1.192-3',
      'linux-kbuild-6.1=6.1.192-3',
    ]);
    expect(kernelHeaderPackages('6.1.0-57-amd64', 'amd64', '6.1.192-3')[1]).toBe('linux-headers-6.1.0-57-common=6.1.192-3');
    expect(() => kernelHeaderPackages('6.1.0-57-amd64', 'cloud-amd64', '6.1.192-3')).toThrow(/not of flavour/);
  });

  it('sources dkms.conf as DKMS does: MAKE[0] expanded, every BUILT_MODULE_NAME with its location', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bootd-dkms-'));
    try {
      writeFileSync(path.join(dir, 'dkms.conf'), [
        '# a dkms.conf in the syntax of Debian\'s NVIDIA packages (dkms(8))',
        'PACKAGE_NAME="nvidia-test"',
        'PACKAGE_VERSION="535.1"',
        'BUILD_EXCLUSIVE_KERNEL="^(3\\.[1-9][0-9]|[4-9]\\.)"',
        'BUILD_EXCLUSIVE_CONFIG="!CONFIG_PREEMPT_RT !CONFIG_PREEMPT_RT_FULL"',
        'MAKE[0]="env NV_VERBOSE=1 \\',
        '    make ${parallel_jobs+-j$parallel_jobs} modules KERNEL_UNAME=${kernelver}"',
        'BUILT_MODULE_NAME[0]="nvidia"',
        'DEST_MODULE_LOCATION[0]="/updates/dkms"',
        'BUILT_MODULE_NAME[1]="nvidia-uvm"',
        'BUILT_MODULE_LOCATION[1]="uvm/"',
        '',
      ].join('\n'));
      const conf = parseDkmsDump(execFileSync('bash', ['-c', DKMS_DUMP, 'dkms', '6.1.0-57-cloud-amd64', 'x86_64', '4'], { cwd: dir, encoding: 'utf8' }));
      expect(conf).toEqual({
        packageName: 'nvidia-test',
        packageVersion: '535.1',
        make: 'env NV_VERBOSE=1 make -j4 modules KERNEL_UNAME=6.1.0-57-cloud-amd64',
        modules: [{ name: 'nvidia', location: '' }, { name: 'nvidia-uvm', location: 'uvm' }],
        exclusiveKernel: '^(3\\.[1-9][0-9]|[4-9]\\.)',
        exclusiveConfig: ['!CONFIG_PREEMPT_RT', '!CONFIG_PREEMPT_RT_FULL'],
      });
      expect(exclusionProblem(conf, '6.1.0-57-cloud-amd64', 'CONFIG_SMP=y\n# CONFIG_PREEMPT_RT is not set\n')).toBeNull();
      expect(exclusionProblem(conf, '6.1.0-57-rt-amd64', 'CONFIG_PREEMPT_RT=y\n')).toMatch(/does not build for a kernel with CONFIG_PREEMPT_RT/);
      expect(exclusionProblem(conf, '2.6.32-5-amd64', '')).toMatch(/BUILD_EXCLUSIVE_KERNEL/);
      expect(() => parseDkmsDump('name\tx\n')).toThrow(/names no PACKAGE_NAME, MAKE\[0\] or BUILT_MODULE_NAME/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the kernel modules the NVIDIA ones need that the image lacks (nvidia-drm without DRM)', () => {
    const image = ['kernel/drivers/net/virtio_net.ko', 'kernel/drivers/i2c/i2c-core.ko'];
    expect(missingDepends([{ name: 'nvidia', depends: [] }, { name: 'nvidia-uvm', depends: ['nvidia'] }, { name: 'nvidia-modeset', depends: ['nvidia'] }], image)).toEqual([]);
    expect(missingDepends([{ name: 'nvidia', depends: [] }, { name: 'nvidia-drm', depends: ['drm_kms_helper', 'nvidia-modeset', 'drm'] }, { name: 'nvidia-modeset', depends: ['nvidia'] }], image)).toEqual(['drm', 'drm_kms_helper']);
    expect(missingDepends([{ name: 'nvidia-peermem', depends: ['ib_core', 'i2c_core'] }], image)).toEqual(['ib_core']);
  });

  it('keys the module cache on what went in', () => {
    const refs = parsePrintUris("'http://deb.debian.org/debian/pool/non-free/n/x/nvidia-tesla-535-kernel-dkms_535.216.03-3%7edeb12u1_amd64.deb' nvidia-tesla-535-kernel-dkms_535.216.03-3~deb12u1_amd64.deb 44936564 SHA256:aa\n'http://x/linux-kbuild-6.1_6.1.192-3_amd64.deb' linux-kbuild-6.1_6.1.192-3_amd64.deb 1567812 SHA256:bb\n");
    expect(refs.map((r) => `${r.name} ${r.version}`)).toEqual(['nvidia-tesla-535-kernel-dkms 535.216.03-3~deb12u1', 'linux-kbuild-6.1 6.1.192-3']);
    const k = moduleCacheKey(refs, ['nvidia'], 'gcc (Debian 12.2.0-14) 12.2.0');
    expect(moduleCacheKey([...refs].reverse(), ['nvidia'], 'gcc (Debian 12.2.0-14) 12.2.0')).toBe(k);
    expect(moduleCacheKey(refs, ['nvidia', 'nvidia-uvm'], 'gcc (Debian 12.2.0-14) 12.2.0')).not.toBe(k);
    expect(moduleCacheKey(refs, ['nvidia'], 'gcc (Debian 12.2.0-15) 12.2.0')).not.toBe(k);
    expect(moduleCacheKey([{ ...(refs[0] as (typeof refs)[number]), hash: 'SHA256:cc' }, refs[1] as (typeof refs)[number]], ['nvidia'], 'gcc (Debian 12.2.0-14) 12.2.0')).not.toBe(k);
  });
});

describe('apt sources with non-free components', () => {
  const policy = [
    'Package files:',
    ' 100 /var/lib/dpkg/status',
    '     release a=now',
    ' 500 https://deb.nodesource.com/node_20.x nodistro/main amd64 Packages',
    '     release o=Node Source,n=nodistro,l=Node Source,c=main,b=amd64',
    '     origin deb.nodesource.com',
    ' 500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages',
    '     release v=12,o=Debian,a=oldstable-security,n=bookworm-security,l=Debian-Security,c=main,b=amd64',
    '     origin deb.debian.org',
    ' 500 http://deb.debian.org/debian bookworm-updates/main amd64 Packages',
    '     release v=12-updates,o=Debian,a=oldstable-updates,n=bookworm-updates,l=Debian,c=main,b=amd64',
    '     origin deb.debian.org',
    ' 500 http://deb.debian.org/debian bookworm/main amd64 Packages',
    '     release v=12.15,o=Debian,a=oldstable,n=bookworm,l=Debian,c=main,b=amd64',
    '     origin deb.debian.org',
    ' 500 http://deb.debian.org/debian bookworm/main all Packages',
    '     release v=12.15,o=Debian,a=oldstable,n=bookworm,l=Debian,c=main,b=all',
    'Pinned packages:',
  ].join('\n');

  it('takes the Debian archives the host reads, not third-party ones, each once', () => {
    expect(debianArchives(policy)).toEqual([
      { uri: 'http://deb.debian.org/debian-security', suite: 'bookworm-security' },
      { uri: 'http://deb.debian.org/debian', suite: 'bookworm-updates' },
      { uri: 'http://deb.debian.org/debian', suite: 'bookworm' },
    ]);
    expect(sourcesList(debianArchives(policy), ['main', 'non-free', 'non-free-firmware'], '/usr/share/keyrings/debian-archive-keyring.gpg')).toBe(
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main non-free non-free-firmware\n'
      + 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main non-free non-free-firmware\n'
      + 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main non-free non-free-firmware\n',
    );
  });

  it('a recipe asks for the driver and components; unknown values are errors on their line', () => {
    const base = 'description: x\nkernel:\n  flavour: cloud-amd64\nroot:\n  base: packages\n  packages: [busybox-static]\n  programs: [/bin/busybox]\n';
    const r = parseRecipe('recipe.yaml', `${base}apt:\n  components: [main, non-free]\nnvidia:\n  driver: tesla-535\n`);
    expect(r.apt?.components).toEqual(['main', 'non-free']);
    expect(r.nvidia).toEqual({ driver: 'tesla-535', modules: ['nvidia', 'nvidia-modeset', 'nvidia-uvm'], firmware: true, cuda: false });
    expect(() => parseRecipe('recipe.yaml', `${base}nvidia:\n  driver: 999\n`)).toThrow(/recipe\.yaml:9:\d+.*expected tesla-535 or current/s);
    expect(() => parseRecipe('recipe.yaml', `${base}apt:\n  components: [main, universe]\n`)).toThrow(/expected main, contrib, non-free or non-free-firmware/);
    expect(() => parseRecipe('recipe.yaml', `${base}nvidia:\n  stress: ../gpu_burn\n`)).toThrow(/without \.\./);
    // a machine owner key: paths on the build host, both needed, on their lines when wrong
    expect(parseRecipe('recipe.yaml', `${base}nvidia:\n  sign:\n    key: /etc/bootd/mok/MOK.priv\n    cert: /etc/bootd/mok/MOK.der\n`).nvidia?.sign).toEqual({ key: '/etc/bootd/mok/MOK.priv', cert: '/etc/bootd/mok/MOK.der' });
    expect(() => parseRecipe('recipe.yaml', `${base}nvidia:\n  sign:\n    key: mok/MOK.priv\n    cert: /etc/bootd/mok/MOK.der\n`)).toThrow(/recipe\.yaml:10:\d+.*expected an absolute path on the build host/s);
    expect(() => parseRecipe('recipe.yaml', `${base}nvidia:\n  sign:\n    key: /etc/bootd/mok/MOK.priv\n`)).toThrow(/cert/);
  });
});
