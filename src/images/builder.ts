/**
 * The image builder: one pipeline of named steps that turns a recipe
 * (./recipe.ts) into a catalog version (kernel, initrd, manifest.json) and
 * only then switches `current`. `bootd images build` and the running
 * appliance both call buildImage(); a lock file per image keeps two builds
 * of one image from racing.
 *
 * Steps: prepare, resolve, download, kernel, root, modules, overlay, hooks,
 * strip, pack, manifest, publish. Each one's commands go to the build log
 * (<state>/logs/images/<name>-<version>.log); a failure names the step and
 * the log. Nothing is visible in the catalog until `publish`: the version
 * folder is written under a hidden name and renamed into place, then
 * `current` moves with one rename(2) (ImageCatalog.setCurrent).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BuildLog, run } from './build-log.js';
import { ImageCatalog, currentLink, isRecipeEntry } from './catalog.js';
import { CopyExec, realInside } from './copy-exec.js';
import { MANIFEST_FILE, SMOKE_TEST_FILE, parseManifest, type Manifest } from './manifest.js';
import { parseModulesDep, selectModules } from './modules.js';
import { peSignatureOfFile } from './pe-signature.js';
import { flavourFor, hostArch, type ImageArch } from './arch.js';
import { AptSource, fetchPackages, hashFile, type DebRef, type FetchReport, type PackageSource } from './packages.js';
import { silentProgress, type BuildProgress } from './progress.js';
import { loadRecipe, type LoadedRecipe, type Recipe } from './recipe.js';
import { NVIDIA_COMPONENTS } from './nvidia.js';
import { buildNvidiaPayload, type NvidiaPayload, type NvidiaRecipe } from './nvidia-payload.js';
import { packTree } from './cpio.js';
import { formatIssue } from '../config/yaml-config.js';

const execFileP = promisify(execFile);

export const KERNEL_FILE = 'vmlinuz';
export const INITRD_FILE = 'initrd.img';
export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

export interface BuildOptions {
  readonly imagesDir: string;
  readonly name: string;
  /** Logs go to <stateDir>/logs/images, the work tree to <stateDir>/build/<name>. */
  readonly stateDir: string;
  /** Download cache; default <stateDir>/cache. */
  readonly cacheDir?: string;
  readonly source?: PackageSource;
  readonly progress?: BuildProgress;
  /** Wall clock for the version name and built_at. */
  readonly now?: () => Date;
  /** Public keys installed for root (and handed to hooks as AUTHORIZED_KEYS). */
  readonly authorizedKeys?: string;
  /** Overrides the recipe's kernel flavour (`amd64` for real NICs). */
  readonly kernelFlavour?: string;
  /** The architecture to build for; default the recipe's `arch`, else amd64. Programs are never run for it (src/images/copy-exec.ts). */
  readonly arch?: ImageArch;
  /** Debian mirror for debootstrap. */
  readonly mirror?: string;
  /** Keep the work tree after a successful build (it is always kept after a failure). */
  readonly keepWork?: boolean;
}

export interface StepTiming {
  readonly name: string;
  readonly ms: number;
}

export interface BuildResult {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  readonly logFile: string;
  readonly manifest: Manifest;
  readonly steps: readonly StepTiming[];
  readonly downloads: FetchReport;
}

export class BuildError extends Error {
  constructor(
    readonly step: string,
    readonly logFile: string,
    readonly workDir: string,
    override readonly cause: unknown,
  ) {
    super(`image build failed in step "${step}": ${(cause as Error)?.message ?? String(cause)}\n  full log: ${logFile}\n  work tree kept at: ${workDir}`);
    this.name = 'BuildError';
  }
}

/** Thrown before a build starts (no log yet): another build holds the lock, the recipe is invalid. */
export class BuildRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildRefused';
  }
}

interface Ctx {
  readonly opts: BuildOptions;
  readonly recipe: Recipe;
  readonly loaded: LoadedRecipe;
  readonly version: string;
  readonly log: BuildLog;
  readonly work: string;
  readonly root: string;
  readonly out: string;
  readonly cacheDir: string;
  readonly source: PackageSource;
  readonly progress: BuildProgress;
  readonly builtAt: Date;
  readonly flavour: string;
  readonly arch: ImageArch;
  /** The recipe's git commit, read once in prepare for /etc/bootd-release and the manifest. */
  recipeCommit: string;
  kernelRef?: DebRef | undefined;
  rootRefs: DebRef[];
  kernelVersion?: string;
  kernelTree?: string;
  packages: Record<string, string>;
  downloads: { downloaded: number; cached: number; bytes: number };
  modules: number;
  /** What the nvidia step made (recipe key nvidia): the payload beside the initrd. */
  nvidia?: NvidiaPayload;
  /** Why a recipe's nvidia: was left out of this build (another architecture than the build host's). */
  nvidiaSkipped?: string;
  /** Archive components apt read (main, or more for a recipe's apt: or nvidia:). */
  components: readonly string[];
  manifest?: Manifest;
}

interface Step {
  readonly name: string;
  /** Whether the recipe asks for this step at all (absent: always). */
  readonly when?: (r: Recipe) => boolean;
  readonly run: (c: Ctx) => Promise<void>;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** `20261122.063000` (UTC), with `.2`, `.3` … when a version of that second exists. */
export function versionName(now: Date, exists: (v: string) => boolean): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const base = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}.${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  if (!exists(base)) return base;
  for (let i = 2; i < 1000; i++) if (!exists(`${base}.${i}`)) return `${base}.${i}`;
  throw new Error(`too many versions named ${base}`);
}

async function which(cmd: string): Promise<boolean> {
  for (const d of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (d !== '' && existsSync(path.join(d, cmd))) return true;
  }
  return false;
}

/** Removes a tree without crossing into other filesystems (a leaked mount is left alone, never emptied). */
async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  await execFileP('rm', ['-rf', '--one-file-system', '--', dir]);
}

/** Joins an image path onto the root after resolving its symlinks inside the root, so no link leads out. */
async function inRoot(root: string, imagePath: string): Promise<string> {
  return path.join(root, await realInside(root, imagePath));
}

async function recipeCommit(dir: string): Promise<string> {
  try {
    const { stdout: head } = await execFileP('git', ['-C', dir, 'rev-parse', 'HEAD']);
    const { stdout: dirty } = await execFileP('git', ['-C', dir, 'status', '--porcelain', '--', '.']);
    return `${head.trim()}${dirty.trim() === '' ? '' : '-dirty'}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/** sha256 over the recipe folder's files (names and contents), so a manifest says exactly which recipe made it. */
export async function recipeDigest(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const entries = (await fs.readdir(path.join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (rel === '' && !isRecipeEntry(e.name)) continue; // built versions, not recipe
      const r = path.posix.join(rel, e.name);
      if (e.isDirectory()) {
        await walk(r);
      } else if (e.isFile()) {
        h.update(`${r}\0`);
        h.update(await fs.readFile(path.join(dir, r)));
      }
    }
  };
  await walk('');
  return h.digest('hex');
}

const COMPRESSORS: Record<Recipe['initrd']['compression'], (level: number) => string> = {
  zstd: (l) => `zstd -q -T0 -${l} -c`,
  xz: (l) => `xz -T0 --check=crc32 -${Math.min(l, 9)} -c`,
  gzip: (l) => `gzip -n -${Math.min(l, 9)} -c`,
};

const STEPS: readonly Step[] = [
  {
    name: 'prepare',
    async run(c) {
      const need = ['dpkg-deb', 'depmod', 'cpio', c.recipe.initrd.compression];
      if (c.recipe.root.base === 'debootstrap') need.push('debootstrap', 'chroot', 'unshare');
      if (c.source instanceof AptSource) need.push('apt-get');
      const missing: string[] = [];
      for (const t of need) if (!(await which(t))) missing.push(t);
      if (missing.length > 0) throw new Error(`missing programs on the build host: ${missing.join(', ')} (bash scripts/setup.sh installs them)`);
      if (c.recipe.root.base === 'debootstrap' && !isRoot()) throw new Error('a debootstrap root needs root (device nodes, chroot, file owners)');
      if (c.recipe.root.base === 'debootstrap' && c.arch !== hostArch()) throw new Error(`a debootstrap root for ${c.arch} would run ${c.arch} programs on this ${hostArch()} host (debootstrap's second stage, apt in the chroot): build it on a ${c.arch} machine, or use base: packages`);
      await removeTree(c.work);
      await fs.mkdir(c.root, { recursive: true });
      await fs.mkdir(c.out, { recursive: true });
      c.recipeCommit = await recipeCommit(c.loaded.dir);
      c.log.write(`image ${c.loaded.name} version ${c.version} for ${c.arch}; recipe ${c.loaded.file} at ${c.recipeCommit}; kernel flavour ${c.flavour}`);
    },
  },
  {
    name: 'resolve',
    async run(c) {
      const meta = `linux-image-${c.flavour}`;
      const kernelClosure = await c.source.resolve(c.log, [meta]);
      const kre = new RegExp(`^linux-image-[0-9].*-${c.flavour.replace(/[.+]/g, '\\$&')}(-unsigned)?$`);
      c.kernelRef = kernelClosure.find((r) => kre.test(r.name));
      if (c.kernelRef === undefined) throw new Error(`${meta} resolves to no linux-image-<version>-${c.flavour} package (got ${kernelClosure.map((r) => r.name).join(', ')})`);
      if (c.recipe.root.base === 'packages') c.rootRefs = await c.source.resolve(c.log, c.recipe.root.packages);
      c.log.write(`kernel package ${c.kernelRef.name} ${c.kernelRef.version}; ${c.rootRefs.length} root packages`);
    },
  },
  {
    name: 'download',
    async run(c) {
      const refs = [c.kernelRef as DebRef, ...c.rootRefs];
      const r = await fetchPackages(c.log, c.source, refs, path.join(c.cacheDir, 'debs'), (d, t) => c.progress.count(d, t, 'packages'));
      c.downloads.downloaded += r.downloaded;
      c.downloads.cached += r.cached;
      c.downloads.bytes += r.bytes;
    },
  },
  {
    name: 'kernel',
    async run(c) {
      const ref = c.kernelRef as DebRef;
      const tree = path.join(c.work, 'kernel');
      await fs.mkdir(tree, { recursive: true });
      await run(c.log, 'dpkg-deb', ['-x', path.join(c.cacheDir, 'debs', ref.filename), tree]);
      const vmlinuz = (await fs.readdir(path.join(tree, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
      if (vmlinuz === undefined) throw new Error(`${ref.filename} has no boot/vmlinuz-*`);
      c.kernelVersion = vmlinuz.slice('vmlinuz-'.length);
      // bookworm ships /lib/modules, trixie (merged /usr) /usr/lib/modules.
      const modRoot = ['lib/modules', 'usr/lib/modules'].map((d) => path.join(tree, d, c.kernelVersion as string)).find((d) => existsSync(d));
      if (modRoot === undefined) throw new Error(`${ref.filename} has no lib/modules/${c.kernelVersion}`);
      c.kernelTree = modRoot;
      await fs.copyFile(path.join(tree, 'boot', vmlinuz), path.join(c.out, KERNEL_FILE));
      // The package carries no modules.dep; make one to follow dependencies.
      await run(c.log, 'depmod', ['-b', modRoot.startsWith(path.join(tree, 'usr') + path.sep) ? path.join(tree, 'usr') : tree, c.kernelVersion]);
      c.packages[ref.name] = ref.version;
    },
  },
  {
    name: 'root',
    async run(c) {
      const r = c.recipe.root;
      if (r.base === 'packages') {
        const sysroot = path.join(c.work, 'sysroot');
        await fs.mkdir(sysroot, { recursive: true });
        let i = 0;
        for (const ref of c.rootRefs) {
          await run(c.log, 'dpkg-deb', ['-x', path.join(c.cacheDir, 'debs', ref.filename), sysroot]);
          c.packages[ref.name] = ref.version;
          c.progress.count(++i, c.rootRefs.length, 'unpacked');
        }
        for (const d of ['dev', 'proc', 'sys', 'run', 'tmp', 'root', 'etc', 'var/log', 'mnt']) await fs.mkdir(path.join(c.root, d), { recursive: true });
        await fs.chmod(path.join(c.root, 'tmp'), 0o1777);
        await fs.chmod(path.join(c.root, 'root'), 0o700);
        const cx = new CopyExec(sysroot, c.root, c.log);
        for (const p of r.programs) {
          c.progress.detail(p);
          await cx.copy(p);
        }
        for (const p of r.files) await cx.copy(p);
        // Let the image's loader find libraries through a cache, as on any Debian system.
        await fs.writeFile(path.join(c.root, 'etc/ld.so.conf'), '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n');
        if (await which('ldconfig')) await run(c.log, 'ldconfig', ['-r', c.root]);
        return;
      }
      const mirror = c.opts.mirror ?? DEFAULT_MIRROR;
      const cache = path.join(c.cacheDir, 'debootstrap');
      await fs.mkdir(cache, { recursive: true });
      await fs.rm(c.root, { recursive: true, force: true });
      const args = [`--variant=${r.variant}`, `--cache-dir=${cache}`, '--components=main'];
      if (r.packages.length > 0) args.push(`--include=${r.packages.join(',')}`);
      // A private mount namespace: debootstrap mounts /proc and /sys in the
      // target, and an interrupted build must not leave them mounted on the host.
      let n = 0;
      await run(c.log, 'unshare', ['--mount', '--propagation', 'private', '--', 'debootstrap', ...args, r.suite, c.root, mirror], {
        onLine: (l) => {
          if (l.startsWith('I: ')) {
            n++;
            c.progress.detail(`${n} ${l.slice(3)}`);
          }
        },
      });
      const status = await fs.readFile(path.join(c.root, 'var/lib/dpkg/status'), 'utf8');
      for (const block of status.split('\n\n')) {
        const name = /^Package: (.+)$/m.exec(block)?.[1];
        const version = /^Version: (.+)$/m.exec(block)?.[1];
        if (name && version && /^Status: install ok installed$/m.test(block)) c.packages[name] = version;
      }
    },
  },
  {
    name: 'modules',
    async run(c) {
      const kver = c.kernelVersion as string;
      const src = c.kernelTree as string;
      const deps = parseModulesDep(await fs.readFile(path.join(src, 'modules.dep'), 'utf8'));
      const sel = selectModules(deps, c.recipe.kernel.modules);
      for (const u of sel.unmatched) c.log.write(`warning: module pattern ${u} matches nothing in ${kver} (flavour ${c.flavour})`);
      const dst = await inRoot(c.root, `/lib/modules/${kver}`);
      await fs.mkdir(dst, { recursive: true });
      for (const m of sel.modules) {
        await fs.mkdir(path.dirname(path.join(dst, m)), { recursive: true });
        await fs.copyFile(path.join(src, m), path.join(dst, m));
      }
      for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
        if (existsSync(path.join(src, f))) await fs.copyFile(path.join(src, f), path.join(dst, f));
      }
      // Built here so the booted system runs modprobe without depmod (seed 004).
      await run(c.log, 'depmod', ['-b', c.root, kver]);
      for (const f of ['modules.dep', 'modules.dep.bin', 'modules.alias.bin']) {
        if (!existsSync(path.join(dst, f))) throw new Error(`depmod made no ${f}`);
      }
      c.modules = sel.modules.length;
      c.log.write(`${sel.modules.length} modules in the initrd`);
    },
  },
  {
    name: 'nvidia',
    when: (r) => r.nvidia !== undefined,
    async run(c) {
      const r = await buildNvidiaPayload({
        nvidia: c.recipe.nvidia as NvidiaRecipe,
        arch: c.arch,
        log: c.log,
        progress: c.progress,
        source: c.source,
        cacheDir: c.cacheDir,
        work: c.work,
        root: c.root,
        sysroot: path.join(c.work, 'sysroot'),
        recipeDir: c.loaded.dir,
        kernel: { version: c.kernelVersion as string, flavour: c.flavour, packageVersion: (c.kernelRef as DebRef).version, tree: c.kernelTree as string },
        out: c.out,
      });
      if (r.kind === 'skipped') {
        c.nvidiaSkipped = r.reason;
        return;
      }
      c.nvidia = r.payload;
      Object.assign(c.packages, r.packages);
      c.downloads.downloaded += r.downloads.downloaded;
      c.downloads.cached += r.downloads.cached;
      c.downloads.bytes += r.downloads.bytes;
    },
  },
  {
    name: 'overlay',
    async run(c) {
      const overlay = path.join(c.loaded.dir, c.recipe.overlay ?? 'overlay');
      if (existsSync(overlay)) await fs.cp(overlay, c.root, { recursive: true, force: true, verbatimSymlinks: true });
      else if (c.recipe.overlay !== undefined) throw new Error(`overlay folder ${overlay} does not exist`);
      if (c.opts.authorizedKeys !== undefined) {
        const ssh = await inRoot(c.root, '/root/.ssh');
        await fs.mkdir(ssh, { recursive: true, mode: 0o700 });
        await fs.copyFile(c.opts.authorizedKeys, path.join(ssh, 'authorized_keys'));
        await fs.chmod(path.join(ssh, 'authorized_keys'), 0o600);
        await fs.copyFile(c.opts.authorizedKeys, path.join(c.work, 'authorized_keys'));
      }
      // What this image is, for people and smoke tests on the booted host (bee's bee-release).
      const release = [
        `IMAGE=${c.loaded.name}`,
        `VERSION=${c.version}`,
        `KERNEL_VERSION=${c.kernelVersion}`,
        `RECIPE_COMMIT=${c.recipeCommit}`,
        `BUILT_AT=${c.builtAt.toISOString()}`,
        // the driver payload the image fetches from its own version when it finds a GPU (images/bee: bee-nvidia)
        ...(c.nvidia ? [`NVIDIA_DRIVER=${c.nvidia.version}`, `NVIDIA_PAYLOAD=${c.nvidia.file}`, `NVIDIA_PAYLOAD_SHA256=${c.nvidia.sha256}`, ...(c.nvidia.signer ? [`NVIDIA_SIGNER=${c.nvidia.signer.subject.replace(/[^A-Za-z0-9 ,.=_@+-]/g, '_')}`] : [])] : []),
        ...(c.nvidiaSkipped !== undefined ? [`NVIDIA_NONE=${c.nvidiaSkipped}`] : []),
      ];
      await fs.writeFile(await inRoot(c.root, '/etc/bootd-release'), `${release.join('\n')}\n`);
    },
  },
  {
    name: 'hooks',
    when: (r) => r.hooks.length > 0,
    async run(c) {
      const env: Record<string, string> = {
        ROOT: c.root,
        IMAGE: c.loaded.name,
        VERSION: c.version,
        KERNEL_VERSION: c.kernelVersion as string,
        // the image's architecture; FOREIGN=1 when the build host cannot run its programs
        ARCH: c.arch,
        FOREIGN: c.arch === hostArch() ? '0' : '1',
        RECIPE_DIR: c.loaded.dir,
        AUTHORIZED_KEYS: c.opts.authorizedKeys === undefined ? '' : path.join(c.work, 'authorized_keys'),
      };
      for (const h of c.recipe.hooks) {
        const file = path.join(c.loaded.dir, h);
        if (!existsSync(file)) throw new Error(`hook ${h} does not exist in ${c.loaded.dir}`);
        c.progress.detail(h);
        c.log.write(`--- hook ${h}`);
        // Hooks that chroot may mount; a private namespace takes such mounts away with it.
        if (isRoot()) await run(c.log, 'unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-eu', file], { env, cwd: c.loaded.dir });
        else await run(c.log, 'bash', ['-eu', file], { env, cwd: c.loaded.dir });
      }
    },
  },
  {
    name: 'strip',
    async run(c) {
      const realRoot = await fs.realpath(c.root);
      for (const p of c.recipe.strip) {
        const target = await inRoot(c.root, p);
        if (!target.startsWith(`${realRoot}/`) && !target.startsWith(`${c.root}/`)) throw new Error(`strip path ${p} leads out of the root`);
        await fs.rm(target, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'pack',
    async run(c) {
      const { compression, level } = c.recipe.initrd;
      const total = Number((await run(c.log, 'bash', ['-c', 'cd "$1" && find . -mindepth 1 | wc -l', 'count', c.root], { capture: true })).trim());
      c.log.write(`packing ${total} files`);
      let done = 0;
      await packTree(c.log, c.root, path.join(c.out, INITRD_FILE), COMPRESSORS[compression](level), () => {
        done++;
        if (done % 200 === 0 || done === total) c.progress.count(done, total, 'files');
      });
    },
  },
  {
    name: 'manifest',
    async run(c) {
      const files: Record<string, { sha256: string; size: number }> = {};
      for (const f of [KERNEL_FILE, INITRD_FILE, ...(c.nvidia ? [c.nvidia.file] : [])]) {
        const p = path.join(c.out, f);
        files[f] = { sha256: await hashFile(p, 'sha256'), size: (await fs.stat(p)).size };
      }
      const r = c.recipe.root;
      // whether shim will take this kernel under Secure Boot: Debian's signed linux-image packages are
      const sig = peSignatureOfFile(path.join(c.out, KERNEL_FILE));
      const manifest = {
        name: c.loaded.name,
        version: c.version,
        kernel: KERNEL_FILE,
        initrds: [INITRD_FILE],
        kernel_version: c.kernelVersion,
        ...(c.arch !== 'amd64' ? { arch: c.arch } : {}),
        built_at: c.builtAt.toISOString(),
        recipe_commit: c.recipeCommit,
        ...(c.recipe.cmdline.length > 0 ? { cmdline: c.recipe.cmdline } : {}),
        ...(sig.pe ? { kernel_signature: { signed: sig.signed, signers: sig.signers } } : {}),
        ...(c.nvidia ? { nvidia: { file: c.nvidia.file, driver: c.nvidia.driver, version: c.nvidia.version, modules: c.nvidia.modules, firmware: c.nvidia.firmware, cuda: c.nvidia.cuda, stress: c.nvidia.stress, signer: c.nvidia.signer } } : {}),
        files,
        inputs: {
          recipe_sha256: await recipeDigest(c.loaded.dir),
          kernel_package: { name: c.kernelRef?.name, version: c.kernelRef?.version, flavour: c.flavour },
          modules: c.modules,
          apt_components: c.components,
          ...(r.base === 'debootstrap' ? { debootstrap: { suite: r.suite, variant: r.variant, mirror: c.opts.mirror ?? DEFAULT_MIRROR } } : {}),
          ...(c.opts.authorizedKeys !== undefined ? { authorized_keys_sha256: await hashFile(c.opts.authorizedKeys, 'sha256') } : {}),
          packages: Object.fromEntries(Object.entries(c.packages).sort(([a], [b]) => (a < b ? -1 : 1))),
        },
      };
      const text = `${JSON.stringify(manifest, null, 2)}\n`;
      const file = path.join(c.out, MANIFEST_FILE);
      const check = parseManifest(file, text, { name: c.loaded.name, version: c.version });
      if (!check.ok) throw new Error(`the manifest does not validate:\n${check.issues.map(formatIssue).join('\n')}`);
      await fs.writeFile(file, text);
      c.manifest = check.manifest;
      // the smoke test travels with the version it checks (not listed in files: never served)
      if (c.recipe.smoke_test !== undefined) await fs.copyFile(path.join(c.loaded.dir, c.recipe.smoke_test), path.join(c.out, SMOKE_TEST_FILE));
    },
  },
  {
    name: 'publish',
    async run(c) {
      const dir = path.join(c.opts.imagesDir, c.loaded.name, c.version);
      await fs.rename(c.out, dir);
      await new ImageCatalog(c.opts.imagesDir).setCurrent(c.loaded.name, c.version);
      c.log.write(`published ${dir}; ${currentLink(c.arch)} -> ${c.version}`);
    },
  },
];

export const STEP_NAMES: readonly string[] = STEPS.map((s) => s.name);

/** One build per image at a time: an O_EXCL lock file holding the builder's PID; a dead holder's lock is taken over. */
async function lock(file: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const h = await fs.open(file, 'wx');
      await h.writeFile(`${process.pid}\n`);
      await h.close();
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      let alive = false;
      try {
        if (pid > 0) {
          process.kill(pid, 0);
          alive = true;
        }
      } catch {
        alive = false;
      }
      if (alive) throw new BuildRefused(`a build of this image is already running (pid ${pid}, lock ${file})`);
      await fs.rm(file, { force: true });
    }
  }
  throw new BuildRefused(`cannot take the build lock ${file}`);
}

export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  let loaded: LoadedRecipe;
  try {
    loaded = await loadRecipe(opts.imagesDir, opts.name);
  } catch (err) {
    throw new BuildRefused((err as Error).message);
  }
  const arch: ImageArch = opts.arch ?? loaded.recipe.arch ?? 'amd64';
  // the recipe's components, and non-free ones for the NVIDIA driver (it asks for them by naming it)
  const components = [...new Set(['main', ...(loaded.recipe.apt?.components ?? []), ...(loaded.recipe.nvidia !== undefined ? NVIDIA_COMPONENTS : [])])];
  const unlock = await lock(path.join(loaded.dir, '.build.lock'));
  try {
    const builtAt = (opts.now ?? (() => new Date()))();
    const version = versionName(builtAt, (v) => existsSync(path.join(loaded.dir, v)));
    const work = path.join(opts.stateDir, 'build', opts.name);
    const log = new BuildLog(path.join(opts.stateDir, 'logs', 'images', `${opts.name}-${version}.log`));
    const c: Ctx = {
      opts,
      recipe: loaded.recipe,
      loaded,
      version,
      log,
      work,
      root: path.join(work, 'root'),
      out: path.join(loaded.dir, `.${version}.partial`),
      cacheDir: opts.cacheDir ?? path.join(opts.stateDir, 'cache'),
      source: opts.source ?? new AptSource(path.join(opts.stateDir, 'build', '.apt'), { arch: arch === hostArch() ? undefined : arch, components }),
      progress: opts.progress ?? silentProgress,
      builtAt,
      arch,
      // the recipe names its flavour for its own architecture (cloud-amd64): another one swaps the suffix
      flavour: opts.kernelFlavour ?? (arch === (loaded.recipe.arch ?? 'amd64') ? loaded.recipe.kernel.flavour : flavourFor(loaded.recipe.kernel.flavour, arch)),
      recipeCommit: '',
      rootRefs: [],
      packages: {},
      downloads: { downloaded: 0, cached: 0, bytes: 0 },
      modules: 0,
      components,
    };
    const steps = STEPS.filter((s) => s.when?.(loaded.recipe) ?? true);
    const timings: StepTiming[] = [];
    for (const [i, s] of steps.entries()) {
      const t0 = performance.now();
      c.progress.step(i + 1, steps.length, s.name);
      log.write(`=== step ${i + 1}/${steps.length}: ${s.name}`);
      try {
        await s.run(c);
      } catch (err) {
        const ms = performance.now() - t0;
        c.progress.stepFailed(ms);
        log.write(`step ${s.name} failed after ${(ms / 1000).toFixed(1)} s: ${(err as Error)?.stack ?? String(err)}`);
        await fs.rm(c.out, { recursive: true, force: true });
        throw new BuildError(s.name, log.file, work, err);
      }
      const ms = performance.now() - t0;
      timings.push({ name: s.name, ms });
      c.progress.stepDone(ms);
      log.write(`=== step ${s.name} done in ${(ms / 1000).toFixed(1)} s`);
    }
    if (!opts.keepWork) await removeTree(work);
    return {
      name: loaded.name,
      version,
      dir: path.join(loaded.dir, version),
      logFile: log.file,
      manifest: c.manifest as Manifest,
      steps: timings,
      downloads: c.downloads,
    };
  } finally {
    await unlock();
  }
}
