/**
 * The image builder on a tiny recipe: real dpkg-deb, depmod, cpio and gzip,
 * packages served from a folder (no network), seconds in all.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError, BuildRefused, STEP_NAMES, buildImage, versionName, type BuildOptions } from '../../src/images/builder.js';
import { ImageCatalog } from '../../src/images/catalog.js';
import { hashFile } from '../../src/images/packages.js';
import type { BuildProgress } from '../../src/images/progress.js';
import { FolderSource } from '../helpers/debs.js';
import { craftElf } from '../helpers/elf.js';
import { EM_AARCH64 } from '../../src/images/elf.js';

const LIBDIR = '/lib/x86_64-linux-gnu';

const RECIPE = `description: tiny test image
kernel:
  flavour: test
  modules:
    - drivers/net/virtio_net
root:
  base: packages
  packages: [tiny-tools]
  programs: [/usr/bin/true, /usr/bin/hello]
hooks:
  - hooks/10-mark.sh
initrd:
  compression: gzip
  level: 1
cmdline: [console=ttyS0]
`;

class RecordingProgress implements BuildProgress {
  readonly events: string[] = [];
  onStep?: (name: string) => void;
  step(_i: number, _n: number, name: string): void {
    this.events.push(`step ${name}`);
    this.onStep?.(name);
  }
  count(done: number, total: number, unit: string): void {
    this.events.push(`count ${done}/${total} ${unit}`);
  }
  detail(): void {}
  stepDone(): void {
    this.events.push('done');
  }
  stepFailed(): void {
    this.events.push('failed');
  }
}

function initrdList(file: string): string[] {
  return execFileSync('bash', ['-c', 'gzip -dc "$1" | cpio -t --quiet', '_', file], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
}

describe('image builder (tiny recipe, no network)', () => {
  let dir: string;
  let source: FolderSource;
  let imagesDir: string;
  let clock = Date.UTC(2026, 10, 22, 10, 0, 0);
  const opts = (extra: Partial<BuildOptions> = {}): BuildOptions => ({
    imagesDir,
    name: 'tiny',
    stateDir: path.join(dir, 'state'),
    source,
    now: () => new Date((clock += 1000)),
    authorizedKeys: path.join(dir, 'keys.pub'),
    ...extra,
  });

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'bootd-builder-'));
    imagesDir = path.join(dir, 'images');
    source = new FolderSource(path.join(dir, 'repo'))
      .add({ name: 'linux-image-test', version: '1.0', deps: ['linux-image-1.0.0-test', 'kmod'], files: { 'usr/share/doc/linux-image-test/README': 'meta\n' } })
      .add({ name: 'kmod', version: '30-1', files: { 'usr/share/doc/kmod/README': 'not needed for the kernel\n' } })
      .add({
        name: 'linux-image-1.0.0-test',
        version: '1.0.0-1',
        files: { 'boot/vmlinuz-1.0.0-test': 'not really a kernel\n', 'lib/modules/1.0.0-test/modules.order': '', 'lib/modules/1.0.0-test/modules.builtin': '' },
      })
      .add({
        name: 'libc6',
        version: '2.36-9',
        files: {
          [`${LIBDIR.slice(1)}/ld-linux-x86-64.so.2`]: { from: `${LIBDIR}/ld-linux-x86-64.so.2` },
          [`${LIBDIR.slice(1)}/libc.so.6`]: { from: `${LIBDIR}/libc.so.6` },
          'lib64/ld-linux-x86-64.so.2': { link: `${LIBDIR}/ld-linux-x86-64.so.2` },
        },
        mode: { [`${LIBDIR.slice(1)}/ld-linux-x86-64.so.2`]: 0o755 },
      })
      .add({
        name: 'tiny-tools',
        version: '1:1.0-1',
        deps: ['libc6'],
        files: { 'usr/bin/true': { from: '/usr/bin/true' }, 'usr/bin/hello': '#!/bin/sh\necho hello\n' },
        mode: { 'usr/bin/true': 0o755, 'usr/bin/hello': 0o755 },
      });
    mkdirSync(path.join(imagesDir, 'tiny', 'hooks'), { recursive: true });
    mkdirSync(path.join(imagesDir, 'tiny', 'overlay'), { recursive: true });
    writeFileSync(path.join(imagesDir, 'tiny', 'recipe.yaml'), RECIPE);
    writeFileSync(path.join(imagesDir, 'tiny', 'overlay', 'init'), '#!/bin/sh\nexec /usr/bin/hello\n', { mode: 0o755 });
    writeFileSync(path.join(imagesDir, 'tiny', 'hooks', '10-mark.sh'), 'echo "hook sees $IMAGE $VERSION $KERNEL_VERSION"\necho marked > "$ROOT/etc/marked"\n');
    writeFileSync(path.join(dir, 'keys.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0 test\n');
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  let first: Awaited<ReturnType<typeof buildImage>>;

  it('runs every step in order and publishes a complete, valid version', async () => {
    const progress = new RecordingProgress();
    const catalog = new ImageCatalog(imagesDir);
    const seenAtPublish: { current: string | null; versions: string[] }[] = [];
    progress.onStep = (name) => {
      if (name === 'publish') seenAtPublish.push({ current: catalog.current('tiny'), versions: catalog.versions('tiny') });
    };
    first = await buildImage(opts({ progress }));

    expect(first.steps.map((s) => s.name)).toEqual(STEP_NAMES.filter((n) => n !== 'nvidia'));
    expect(progress.events.filter((e) => e.startsWith('step ')).map((e) => e.slice(5))).toEqual(STEP_NAMES.filter((n) => n !== 'nvidia'));
    expect(progress.events).toContain('count 3/3 packages');
    expect(progress.events.some((e) => /^count (\d+)\/\1 files$/.test(e))).toBe(true);
    // Nothing was visible before publish; after it, current points at the new version.
    expect(seenAtPublish).toEqual([{ current: null, versions: [] }]);
    expect(catalog.current('tiny')).toBe(first.version);
    expect(first.version).toBe('20261122.100001');

    const resolved = await catalog.resolve({ name: 'tiny' });
    expect(resolved.ok).toBe(true);
    const m = first.manifest;
    expect(m.kernel_version).toBe('1.0.0-test');
    expect(m.cmdline).toEqual(['console=ttyS0']);
    for (const [f, x] of Object.entries(m.files)) {
      expect(await hashFile(path.join(first.dir, f), 'sha256')).toBe(x.sha256);
    }
    const inputs = m.inputs as { packages: Record<string, string>; kernel_package: { name: string }; recipe_sha256: string; authorized_keys_sha256: string };
    expect(inputs.packages).toEqual({ 'linux-image-1.0.0-test': '1.0.0-1', libc6: '2.36-9', 'tiny-tools': '1:1.0-1' });
    expect(inputs.kernel_package.name).toBe('linux-image-1.0.0-test');
    expect(inputs.recipe_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(inputs.authorized_keys_sha256).toMatch(/^[0-9a-f]{64}$/);

    const files = initrdList(path.join(first.dir, 'initrd.img'));
    for (const f of ['init', 'usr/bin/true', 'usr/bin/hello', 'lib64/ld-linux-x86-64.so.2', 'lib/x86_64-linux-gnu/libc.so.6', 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'etc/marked', 'etc/bootd-release', 'root/.ssh/authorized_keys', 'lib/modules/1.0.0-test/modules.dep.bin']) {
      expect(files, f).toContain(f);
    }
    const log = readFileSync(first.logFile, 'utf8');
    expect(log).toContain(`hook sees tiny ${first.version} 1.0.0-test`);
    expect(log).toContain('warning: module pattern drivers/net/virtio_net matches nothing');
    // The work tree is gone after success.
    expect(existsSync(path.join(dir, 'state', 'build', 'tiny'))).toBe(false);
  });

  it('a second build with nothing changed downloads nothing', async () => {
    const before = source.downloads.length;
    expect(before).toBe(3); // the kernel, libc6, tiny-tools: not the meta package or its other dependencies
    const second = await buildImage(opts());
    expect(source.downloads.length).toBe(before);
    expect(second.downloads).toEqual({ downloaded: 0, cached: 3, bytes: 0 });
    expect(second.version).not.toBe(first.version);
    expect(new ImageCatalog(imagesDir).current('tiny')).toBe(second.version);
  });

  it('the recipe digest covers every recipe file, hidden ones in subfolders too, and no built version', async () => {
    const before = (first.manifest.inputs as { recipe_sha256: string }).recipe_sha256;
    const same = await buildImage(opts());
    expect((same.manifest.inputs as { recipe_sha256: string }).recipe_sha256).toBe(before);
    const hidden = path.join(imagesDir, 'tiny', 'overlay', 'root', '.profile');
    mkdirSync(path.dirname(hidden), { recursive: true });
    writeFileSync(hidden, 'export PS1=tiny\n');
    try {
      const changed = await buildImage(opts());
      expect((changed.manifest.inputs as { recipe_sha256: string }).recipe_sha256).not.toBe(before);
    } finally {
      rmSync(hidden);
    }
  });

  it('a failing step names itself and its log, and current does not move', async () => {
    const catalog = new ImageCatalog(imagesDir);
    const current = catalog.current('tiny');
    const versions = catalog.versions('tiny');
    const hook = path.join(imagesDir, 'tiny', 'hooks', '10-mark.sh');
    const good = readFileSync(hook, 'utf8');
    writeFileSync(hook, 'echo "about to fail"\nfalse\n');
    try {
      const err = await buildImage(opts()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BuildError);
      const be = err as BuildError;
      expect(be.step).toBe('hooks');
      expect(be.message).toContain('step "hooks"');
      expect(be.message).toContain(be.logFile);
      expect(readFileSync(be.logFile, 'utf8')).toContain('about to fail');
      expect(catalog.current('tiny')).toBe(current);
      expect(catalog.versions('tiny')).toEqual(versions);
      expect(readdirSync(path.join(imagesDir, 'tiny')).filter((f) => f.endsWith('.partial'))).toEqual([]);
      expect(existsSync(path.join(imagesDir, 'tiny', '.build.lock'))).toBe(false);
    } finally {
      writeFileSync(hook, good);
    }
  });

  it('a program whose library no package provides is an error naming both', async () => {
    const recipe = path.join(imagesDir, 'tiny', 'recipe.yaml');
    source.add({ name: 'zstd-only', version: '1', deps: ['libc6'], files: { 'usr/bin/zstd': { from: '/usr/bin/zstd' } }, mode: { 'usr/bin/zstd': 0o755 } });
    writeFileSync(recipe, RECIPE.replace('packages: [tiny-tools]', 'packages: [tiny-tools, zstd-only]').replace('/usr/bin/hello]', '/usr/bin/hello, /usr/bin/zstd]'));
    try {
      const err = (await buildImage(opts()).catch((e: unknown) => e)) as BuildError;
      expect(err).toBeInstanceOf(BuildError);
      expect(err.step).toBe('root');
      expect(err.message).toMatch(/\/usr\/bin\/zstd needs lib\S+, which no package of the recipe provides/);
    } finally {
      writeFileSync(recipe, RECIPE);
    }
  });

  it('builds for arm64 without running anything of it: libraries from the ELF files, arm64 folders only, its own current link', async () => {
    // an AArch64 program and its loader and libc, made here byte by byte (the build host cannot run them)
    const elfDir = path.join(dir, 'elf-arm64');
    mkdirSync(elfDir, { recursive: true });
    writeFileSync(path.join(elfDir, 'hello'), craftElf(EM_AARCH64, '/lib/ld-linux-aarch64.so.1', ['libhello.so.1', 'libc.so.6']));
    writeFileSync(path.join(elfDir, 'libhello'), craftElf(EM_AARCH64, null, ['libc.so.6']));
    writeFileSync(path.join(elfDir, 'libc'), craftElf(EM_AARCH64, null, ['ld-linux-aarch64.so.1']));
    writeFileSync(path.join(elfDir, 'ld'), craftElf(EM_AARCH64, null, []));
    writeFileSync(path.join(elfDir, 'lonely'), craftElf(EM_AARCH64, '/lib/ld-linux-aarch64.so.1', ['libz.so.1']));
    source
      .add({
        name: 'libc6-arm',
        version: '2.36-9',
        files: {
          'lib/aarch64-linux-gnu/ld-linux-aarch64.so.1': { from: path.join(elfDir, 'ld') },
          'lib/aarch64-linux-gnu/libc.so.6': { from: path.join(elfDir, 'libc') },
          'lib/ld-linux-aarch64.so.1': { link: 'aarch64-linux-gnu/ld-linux-aarch64.so.1' },
          'usr/lib/aarch64-linux-gnu/libhello.so.1': { from: path.join(elfDir, 'libhello') },
        },
      })
      .add({ name: 'hello-arm', version: '1', deps: ['libc6-arm'], files: { 'usr/bin/hello-arm': { from: path.join(elfDir, 'hello') }, 'usr/bin/lonely': { from: path.join(elfDir, 'lonely') } }, mode: { 'usr/bin/hello-arm': 0o755, 'usr/bin/lonely': 0o755 } })
      // libz.so.1 exists only for x86-64: not a library for an arm64 program
      .add({ name: 'zlib-x86', version: '1', files: { 'lib/x86_64-linux-gnu/libz.so.1': { from: '/usr/bin/true' }, 'lib/libz.so.1': { from: '/usr/bin/true' } } });
    mkdirSync(path.join(imagesDir, 'tinyarm', 'overlay'), { recursive: true });
    writeFileSync(path.join(imagesDir, 'tinyarm', 'overlay', 'init'), '#!/bin/sh\nexec /usr/bin/hello-arm\n', { mode: 0o755 });
    const recipe = (programs: string, packages: string): string => RECIPE.replace('packages: [tiny-tools]', `packages: [${packages}]`).replace('programs: [/usr/bin/true, /usr/bin/hello]', `programs: [${programs}]`).replace(/hooks:\n  - hooks\/10-mark.sh\n/, '');
    writeFileSync(path.join(imagesDir, 'tinyarm', 'recipe.yaml'), recipe('/usr/bin/hello-arm', 'hello-arm'));
    const r = await buildImage(opts({ name: 'tinyarm', arch: 'arm64' }));
    expect(r.manifest.arch).toBe('arm64');
    expect(readlinkSync(path.join(imagesDir, 'tinyarm', 'current-arm64'))).toBe(r.version);
    expect(existsSync(path.join(imagesDir, 'tinyarm', 'current'))).toBe(false);
    const files = initrdList(path.join(r.dir, 'initrd.img'));
    for (const f of ['usr/bin/hello-arm', 'lib/aarch64-linux-gnu/libc.so.6', 'usr/lib/aarch64-linux-gnu/libhello.so.1', 'lib/aarch64-linux-gnu/ld-linux-aarch64.so.1', 'lib/ld-linux-aarch64.so.1']) expect(files, f).toContain(f);
    const catalog = new ImageCatalog(imagesDir);
    expect((await catalog.resolve({ name: 'tinyarm' }, 'arm64')).ok).toBe(true);
    expect(await catalog.resolve({ name: 'tinyarm' })).toMatchObject({ ok: false, reason: 'image tinyarm has no current version (not built yet?)' });
    expect(await catalog.resolve({ name: 'tinyarm', version: r.version })).toMatchObject({ ok: false, reason: `image tinyarm@${r.version} is built for arm64, and this machine is amd64` });
    // a library found only for another architecture is named as such
    writeFileSync(path.join(imagesDir, 'tinyarm', 'recipe.yaml'), recipe('/usr/bin/lonely', 'hello-arm, zlib-x86'));
    const err = (await buildImage(opts({ name: 'tinyarm', arch: 'arm64' })).catch((e: unknown) => e)) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toMatch(/\/usr\/bin\/lonely needs libz\.so\.1, which no package of the recipe provides for aarch64-linux-gnu \(\/lib\/libz\.so\.1 is another architecture's\)/);
  });

  it('one build per image: a live lock refuses, a dead one is taken over', async () => {
    const lock = path.join(imagesDir, 'tiny', '.build.lock');
    writeFileSync(lock, `${process.pid}\n`);
    await expect(buildImage(opts())).rejects.toThrow(BuildRefused);
    await expect(buildImage(opts())).rejects.toThrow(/already running \(pid \d+/);
    // A PID that cannot be alive (above pid_max) is a stale lock.
    writeFileSync(lock, '99999999\n');
    const r = await buildImage(opts());
    expect(new ImageCatalog(imagesDir).current('tiny')).toBe(r.version);
    expect(existsSync(lock)).toBe(false);
  });

  it('an invalid recipe is refused with file, line and key', async () => {
    const recipe = path.join(imagesDir, 'tiny', 'recipe.yaml');
    writeFileSync(recipe, RECIPE.replace('compression: gzip', 'compression: lz4'));
    try {
      await expect(buildImage(opts())).rejects.toThrow(/recipe\.yaml:13:\d+: initrd\.compression: expected zstd, xz or gzip/);
    } finally {
      writeFileSync(recipe, RECIPE);
    }
  });

  it('versions are UTC timestamps, made unique within a second', () => {
    const t = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(versionName(t, () => false)).toBe('20260102.030405');
    const taken = new Set(['20260102.030405', '20260102.030405.2']);
    expect(versionName(t, (v) => taken.has(v))).toBe('20260102.030405.3');
    expect(readlinkSync(path.join(imagesDir, 'tiny', 'current'))).toMatch(/^2026/);
  });
});
