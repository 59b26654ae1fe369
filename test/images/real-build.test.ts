/**
 * Real builds of the repository's bee and buildos recipes from Debian
 * packages (the build host's apt sources; debootstrap for buildos), then a
 * look inside what came out: the manifest, and the initrd's init, kernel
 * modules with their depmod metadata, programs with their libraries, and
 * bee's collectors, run for real in a chroot of the unpacked initrd.
 *
 * Downloads are cached in .cache/images (gitignored) so a second run, and
 * the warm rebuild below, fetch nothing. Needs root: debootstrap, chroot,
 * device nodes. CI runs as root, so CI runs these.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuildResult } from '../../src/images/builder.js';
import { ImageCatalog, isRecipeEntry } from '../../src/images/catalog.js';
import { ensureKeyPair } from '../../src/images/ssh-key.js';

const REPO = path.resolve(__dirname, '../..');
const CACHE = path.join(REPO, '.cache', 'images');
const skip = process.getuid?.() !== 0 ? 'real image builds need root (debootstrap, chroot, device nodes); CI runs as root' : null;
if (skip) console.warn(`SKIPPED real image builds: ${skip}`);

const MIB = 1 << 20;
function report(r: BuildResult, label: string): void {
  const secs = r.steps.reduce((a, s) => a + s.ms, 0) / 1000;
  const sizes = Object.entries(r.manifest.files).map(([f, x]) => `${f} ${(x.size / MIB).toFixed(1)} MiB`).join(', ');
  console.log(`image build ${label}: ${r.name}@${r.version} in ${secs.toFixed(1)} s; ${sizes}; downloaded ${r.downloads.downloaded} packages (${(r.downloads.bytes / MIB).toFixed(1)} MiB), ${r.downloads.cached} cached; steps ${r.steps.map((s) => `${s.name}=${(s.ms / 1000).toFixed(1)}`).join(' ')}`);
}

function listInitrd(file: string): Set<string> {
  return new Set(execFileSync('bash', ['-c', 'set -o pipefail; zstd -dc "$1" | cpio -t --quiet', '_', file], { encoding: 'utf8', maxBuffer: 64 * MIB }).split('\n').filter((l) => l !== ''));
}

function unpackInitrd(file: string, into: string): void {
  mkdirSync(into, { recursive: true });
  execFileSync('bash', ['-c', 'set -o pipefail; cd "$2" && zstd -dc "$1" | cpio -id --quiet', '_', file, into]);
}

describe.skipIf(skip !== null)('real image builds (Debian packages)', () => {
  let dir: string;
  let imagesDir: string;
  let stateDir: string;
  let pubKey: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bootd-realbuild-'));
    imagesDir = path.join(dir, 'images');
    stateDir = path.join(dir, 'state');
    for (const name of ['bee', 'buildos']) {
      // The recipe folders only, not versions built in the working tree.
      const from = path.join(REPO, 'images', name);
      cpSync(from, path.join(imagesDir, name), { recursive: true, filter: (src) => { const rel = path.relative(from, src); return rel === '' || rel.includes('/') || isRecipeEntry(rel); } });
    }
    pubKey = (await ensureKeyPair(stateDir)).publicKey;
  });

  afterAll(() => {
    if (dir) execFileSync('rm', ['-rf', '--one-file-system', dir]);
  });

  const build = (name: string) => buildImage({ imagesDir, name, stateDir, cacheDir: CACHE, authorizedKeys: pubKey });

  it('bee: kernel, initrd with init, modules and depmod metadata, collectors, and a manifest of what went in', { timeout: 25 * 60_000 }, async () => {
    const r = await build('bee');
    report(r, 'bee (first in this run)');
    const catalog = new ImageCatalog(imagesDir);
    expect(catalog.current('bee')).toBe(r.version);
    const resolved = await catalog.resolve({ name: 'bee' });
    expect(resolved.ok).toBe(true);
    const m = r.manifest;
    expect(m.kernel_version).toMatch(/^\d+\.\d+\.\d+-\d+-cloud-amd64$/);
    const pkgs = (m.inputs as { packages: Record<string, string> }).packages;
    for (const p of ['busybox-static', 'dropbear-bin', 'dmidecode', 'jq', 'libc6', `linux-image-${m.kernel_version}`]) expect(pkgs, p).toHaveProperty([p]);
    expect(m.files['initrd.img']?.size).toBeGreaterThan(2 * MIB);

    const files = listInitrd(path.join(r.dir, 'initrd.img'));
    const kmods = `lib/modules/${m.kernel_version}`;
    for (const f of [
      'init', 'sbin/init', 'bin/sh', 'etc/inittab', 'etc/init.d/rcS', 'etc/init.d/S20dropbear', 'etc/init.d/S30network',
      'usr/sbin/dropbear', 'sbin/modprobe', 'bin/kmod', 'usr/share/udhcpc/default.script',
      'usr/sbin/bee-audit', 'usr/sbin/bee-report', 'usr/share/bee/smoketest.sh',
      'usr/sbin/dmidecode', 'bin/lsblk', 'usr/sbin/smartctl', 'usr/sbin/nvme', 'usr/bin/lspci', 'usr/bin/ipmitool', 'usr/bin/jq', 'usr/bin/qrencode',
      'lib64/ld-linux-x86-64.so.2', 'root/.ssh/authorized_keys', 'etc/bootd-release',
      `${kmods}/modules.dep`, `${kmods}/modules.dep.bin`, `${kmods}/modules.alias.bin`, `${kmods}/modules.builtin.bin`,
    ]) expect(files.has(f), f).toBe(true);
    expect([...files].some((f) => /^lib\/modules\/[^/]+\/kernel\/drivers\/net\/virtio_net\.ko(\.xz|\.zst)?$/.test(f))).toBe(true);

    // The collectors, run for real: chroot into the unpacked initrd with
    // /proc and /sys of this machine (in a private mount namespace).
    const root = path.join(dir, 'bee-root');
    unpackInitrd(path.join(r.dir, 'initrd.img'), root);
    execFileSync('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', 'mount -t proc proc "$1/proc" && mount -t sysfs sysfs "$1/sys" && mount -t tmpfs tmpfs "$1/run" && chroot "$1" /usr/sbin/bee-audit', '_', root], { stdio: 'pipe' });
    const audit = JSON.parse(readFileSync(path.join(root, 'var/log/bee-audit.json'), 'utf8')) as { schema: string; image: Record<string, string>; collectors: Record<string, { status: string; data: unknown }> };
    expect(audit.schema).toBe('bee-audit/1');
    expect(audit.image.image).toBe('bee');
    expect(Object.keys(audit.collectors).sort()).toEqual(['board', 'cpu', 'firmware', 'gpu', 'memory', 'pcie', 'psu', 'storage']);
    // how this build machine booted, as the firmware collector sees it through the same /sys
    expect(audit.collectors.firmware).toMatchObject({ status: 'ok', data: { mode: existsSync('/sys/firmware/efi') ? 'uefi' : 'bios' } });
    for (const [name, c] of Object.entries(audit.collectors)) expect(c.status, name).toMatch(/^(ok|skipped: .+)$/);
    expect(audit.collectors.pcie?.status).toBe('ok');
    expect(audit.collectors.storage?.status).toBe('ok');
    // no NVIDIA GPU in this build machine: skipped, with why (bee-nvidia did not run in the chroot)
    expect(audit.collectors.gpu?.status).toMatch(/^skipped: no NVIDIA GPU on the PCI bus \(vendor 10de, display class 03xx\); driver: /);

    // The NVIDIA driver (issue 23): a payload beside the initrd, the modules built against this very kernel
    expect(m.nvidia).toMatchObject({ file: 'nvidia.img', driver: 'tesla-535', firmware: ['gsp_ga10x.bin', 'gsp_tu10x.bin'], cuda: false, stress: null });
    expect(m.nvidia?.modules.map((x) => x.name)).toEqual(['nvidia', 'nvidia-modeset', 'nvidia-uvm']);
    expect(m.files['nvidia.img']?.size).toBeGreaterThan(20 * MIB);
    expect(m.initrds).toEqual(['initrd.img']);
    for (const p of ['nvidia-tesla-535-kernel-dkms', 'nvidia-tesla-535-smi', 'libnvidia-tesla-535-ml1', 'firmware-nvidia-tesla-535-gsp', `linux-headers-${m.kernel_version}`, 'linux-kbuild-6.1']) expect(pkgs, p).toHaveProperty([p]);
    expect((m.inputs as { apt_components: string[] }).apt_components).toEqual(['main', 'non-free', 'non-free-firmware']);
    const payload = new Set(execFileSync('bash', ['-c', 'set -o pipefail; gunzip -c "$1" | cpio -t --quiet', '_', path.join(r.dir, 'nvidia.img')], { encoding: 'utf8', maxBuffer: 64 * MIB }).split('\n').filter((l) => l !== ''));
    const version = m.nvidia?.version as string;
    for (const f of [
      'usr/local/lib/nvidia/nvidia.ko', 'usr/local/lib/nvidia/nvidia-modeset.ko', 'usr/local/lib/nvidia/nvidia-uvm.ko', 'usr/local/lib/nvidia/load-order',
      'usr/bin/nvidia-smi', `usr/lib/x86_64-linux-gnu/libnvidia-ml.so.${version}`, 'usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1',
      `lib/firmware/nvidia/${version}/gsp_ga10x.bin`,
    ]) expect(payload.has(f), f).toBe(true);
    // nothing the initrd already has (libc) travels twice
    expect([...payload].filter((f) => /libc\.so\.6$/.test(f))).toEqual([]);
    for (const f of ['usr/sbin/bee-nvidia', 'usr/sbin/bee-gpu', 'usr/sbin/bee-gpu-pci', 'usr/sbin/bee-nvidia-json']) expect(files.has(f), f).toBe(true);
    const release = readFileSync(path.join(root, 'etc/bootd-release'), 'utf8');
    expect(release).toContain(`NVIDIA_PAYLOAD_SHA256=${m.files['nvidia.img']?.sha256}`);
    expect(release).toContain(`NVIDIA_DRIVER=${version}`);
    // unpacked over the image root as bee-nvidia does, then looked at with the host's own tools
    execFileSync('bash', ['-c', 'set -o pipefail; cd "$2" && gunzip -c "$1" | cpio -idmu --quiet', '_', path.join(r.dir, 'nvidia.img'), root]);
    const modinfo = (f: string) => execFileSync('modinfo', ['-F', 'vermagic', f], { encoding: 'utf8' }).trim();
    const virtio = [...files].find((f) => /\/virtio_net\.ko$/.test(f)) as string;
    const kernelVermagic = modinfo(path.join(root, virtio));
    expect(kernelVermagic.startsWith(`${m.kernel_version} `)).toBe(true);
    for (const mod of ['nvidia', 'nvidia-modeset', 'nvidia-uvm']) expect(modinfo(path.join(root, `usr/local/lib/nvidia/${mod}.ko`)), mod).toBe(kernelVermagic);
    expect(execFileSync('readlink', [path.join(root, 'usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1')], { encoding: 'utf8' }).trim()).toBe(`libnvidia-ml.so.${version}`);
    // nvidia-smi runs in the image and finds libnvidia-ml by its soname: it gets as far as asking for the
    // driver (exit 9); without the link it would say it cannot find libnvidia-ml.so (exit 12: test/fixtures/nvidia-smi)
    const smi = spawnSync('chroot', [root, '/usr/bin/nvidia-smi', '-L'], { encoding: 'utf8' });
    expect(`${smi.stdout}${smi.stderr}`).toMatch(/couldn't communicate with the NVIDIA driver/);
    expect(smi.status).toBe(9);
  });

  it('bee again, its NVIDIA modules now signed with a machine owner key: no downloads, no module rebuild, a new version, current moves', { timeout: 10 * 60_000 }, async () => {
    const before = new ImageCatalog(imagesDir).current('bee');
    // the key outside the catalog, as an operator keeps it; the certificate in DER, as mokutil imports it
    const keys = path.join(dir, 'mok');
    mkdirSync(keys);
    execFileSync('openssl', ['req', '-new', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=bee NVIDIA modules', '-keyout', path.join(keys, 'MOK.priv'), '-outform', 'DER', '-out', path.join(keys, 'MOK.der')], { stdio: 'pipe' });
    const recipe = path.join(imagesDir, 'bee', 'recipe.yaml');
    writeFileSync(recipe, readFileSync(recipe, 'utf8').replace(/^nvidia:\n  driver: tesla-535\n/m, `nvidia:\n  driver: tesla-535\n  sign:\n    key: ${keys}/MOK.priv\n    cert: ${keys}/MOK.der\n`));
    const r = await build('bee');
    report(r, 'bee (warm rebuild, modules signed)');
    expect(r.downloads.downloaded).toBe(0);
    expect(r.downloads.cached).toBeGreaterThan(20);
    expect(r.version).not.toBe(before);
    expect(new ImageCatalog(imagesDir).current('bee')).toBe(r.version);
    const nvidiaStep = r.steps.find((st) => st.name === 'nvidia');
    expect(nvidiaStep?.ms ?? Infinity, 'the module cache served the modules').toBeLessThan(120_000);

    expect(r.manifest.nvidia?.signer?.subject).toBe('CN=bee NVIDIA modules');
    const root = path.join(dir, 'bee-signed');
    mkdirSync(root);
    execFileSync('bash', ['-c', 'set -o pipefail; cd "$2" && gunzip -c "$1" | cpio -idmu --quiet', '_', path.join(r.dir, 'nvidia.img'), root]);
    for (const mod of ['nvidia', 'nvidia-modeset', 'nvidia-uvm']) {
      const file = path.join(root, `usr/local/lib/nvidia/${mod}.ko`);
      // kmod reads the appended signature as the kernel does: PKCS#7, its signer and hash
      const info = execFileSync('modinfo', [file], { encoding: 'utf8' });
      expect(info, mod).toMatch(/^signer:\s+bee NVIDIA modules$/m);
      expect(info, mod).toMatch(/^sig_hashalgo:\s+sha256$/m);
      expect(info, mod).toMatch(/^sig_id:\s+PKCS#7$/m);
      const bytes = readFileSync(file);
      expect(createHash('sha256').update(bytes).digest('hex'), `${mod}: the manifest hashes the signed file`).toBe(r.manifest.nvidia?.modules.find((x) => x.name === mod)?.sha256);
    }
    const release = execFileSync('bash', ['-c', 'set -o pipefail; zstd -dc "$1" | cpio -i --to-stdout --quiet etc/bootd-release', '_', path.join(r.dir, 'initrd.img')], { encoding: 'utf8' });
    expect(release).toContain('NVIDIA_SIGNER=CN=bee NVIDIA modules');
    // the private key went nowhere: not into the unpacked payload, nor the version folder's own files
    const keyBody = readFileSync(path.join(keys, 'MOK.priv'), 'utf8').split('\n')[1] as string;
    expect(keyBody.length).toBeGreaterThan(40);
    expect(execFileSync('bash', ['-c', 'grep -rlF "$1" "$2" "$3" || true', '_', keyBody, root, r.dir], { encoding: 'utf8' })).toBe('');
  });

  it('buildos: debootstrap root in the initrd with the custom init, systemd, SSH, the build user and the monitor', { timeout: 20 * 60_000 }, async () => {
    const r = await build('buildos');
    report(r, 'buildos');
    const m = r.manifest;
    const inputs = m.inputs as { packages: Record<string, string>; debootstrap: { suite: string; variant: string } };
    expect(inputs.debootstrap).toMatchObject({ suite: 'bookworm', variant: 'minbase' });
    for (const p of ['systemd', 'systemd-sysv', 'openssh-server', 'isc-dhcp-client', 'kmod', 'bash']) expect(inputs.packages, p).toHaveProperty([p]);
    const files = listInitrd(path.join(r.dir, 'initrd.img'));
    const kmods = `usr/lib/modules/${m.kernel_version}`;
    for (const f of [
      'init', 'usr/sbin/buildos-monitor', 'etc/systemd/system/buildos-monitor.service', 'etc/systemd/system/multi-user.target.wants/buildos-monitor.service',
      'etc/systemd/system/multi-user.target.wants/ssh.service', 'usr/sbin/sshd', 'usr/sbin/dhclient', 'etc/dhcp/dhclient.conf', 'usr/sbin/modprobe',
      'build/.ssh/authorized_keys', 'root/.ssh/authorized_keys', 'build/tftp', 'build/machines', 'usr/share/buildos/smoketest.sh', 'etc/bootd-release',
      `${kmods}/modules.dep.bin`, `${kmods}/modules.alias.bin`,
    ]) expect(files.has(f), f).toBe(true);
    // Host keys are made at boot, never shipped; docs are stripped.
    expect([...files].filter((f) => f.startsWith('etc/ssh/ssh_host_'))).toEqual([]);
    expect(files.has('usr/share/doc')).toBe(false);
    const root = path.join(dir, 'buildos-root');
    unpackInitrd(path.join(r.dir, 'initrd.img'), root);
    expect(readFileSync(path.join(root, 'etc/passwd'), 'utf8')).toMatch(/^build:x:1000:1000::\/build:\/bin\/bash$/m);
    expect(execFileSync('stat', ['-c', '%u:%g %a', path.join(root, 'build/tftp')], { encoding: 'utf8' }).trim()).toBe('1000:1000 755');
    expect(existsSync(path.join(root, 'sbin/init')) && execFileSync('readlink', ['-f', path.join(root, 'sbin/init')], { encoding: 'utf8' }).trim().endsWith('/lib/systemd/systemd')).toBe(true);
    expect(readFileSync(path.join(root, 'etc/machine-id'), 'utf8')).toBe('');
    rmSync(root, { recursive: true, force: true });
  });
});
