/**
 * The nvidia build step (recipe key nvidia; docs/gpu.md): the driver's
 * packages, the modules built against the image's kernel (./nvidia.ts) or
 * taken from the module cache, the vermagic check, and the payload beside
 * the initrd (nvidia.img): the modules with their load order, nvidia-smi,
 * libnvidia-ml (and libcuda) with their soname links, the GSP firmware, a
 * stress program. The builder (./builder.ts) wires it into its pipeline.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { ARCH, hostArch, type ImageArch } from './arch.js';
import { run, type BuildLog } from './build-log.js';
import { libDirs, realInside } from './copy-exec.js';
import { packTree } from './cpio.js';
import { elfOfFile } from './elf-file.js';
import { parseModulesDep } from './modules.js';
import {
  GPU_STRESS_DIR, NVIDIA_DRIVERS, NVIDIA_MODULE_DIR, NVIDIA_PAYLOAD_FILE,
  buildModules, describeModule, kernelDepends, kernelHeaderPackages, kernelVermagic, missingDepends, moduleCacheKey, vermagicProblem, type BuiltModule,
} from './nvidia.js';
import { keyPlaceProblem, readSigner, signModule, type ModuleSigner } from './module-sign.js';
import { fetchPackages, hashFile, type DebRef, type FetchReport, type PackageSource } from './packages.js';
import type { BuildProgress } from './progress.js';
import type { Recipe } from './recipe.js';

export type NvidiaRecipe = NonNullable<Recipe['nvidia']>;

/** What the payload is, for the manifest and /etc/bootd-release. */
export interface NvidiaPayload {
  readonly file: string;
  readonly sha256: string;
  readonly driver: string;
  readonly version: string;
  readonly modules: readonly { readonly name: string; readonly vermagic: string; readonly sha256: string }[];
  readonly firmware: readonly string[];
  readonly cuda: boolean;
  readonly stress: string | null;
  /** The certificate the modules are signed for, or null: unsigned (recipe nvidia: sign:). */
  readonly signer: ModuleSigner | null;
}

export interface NvidiaPayloadInput {
  readonly nvidia: NvidiaRecipe;
  readonly arch: ImageArch;
  readonly log: BuildLog;
  readonly progress: BuildProgress;
  readonly source: PackageSource;
  /** Download cache (debs/) and module cache (nvidia/). */
  readonly cacheDir: string;
  /** The build's work tree: the throwaway build tree and the payload tree go under it. */
  readonly work: string;
  /** The image root as assembled so far: paths resolve through it, files it has stay out of the payload. */
  readonly root: string;
  /** The root packages unpacked (base: packages), where nvidia-smi's libraries come from when the root lacks them. */
  readonly sysroot: string;
  /** The recipe folder (a stress program is there). */
  readonly recipeDir: string;
  readonly kernel: { readonly version: string; readonly flavour: string; readonly packageVersion: string; readonly tree: string };
  /** The version folder being written: nvidia.img goes there. */
  readonly out: string;
}

export type NvidiaPayloadResult =
  | { readonly kind: 'skipped'; readonly reason: string }
  | { readonly kind: 'built'; readonly payload: NvidiaPayload; readonly packages: Record<string, string>; readonly downloads: FetchReport };

/** Whether a file of the payload is already in the image root, byte for byte (libc for nvidia-smi): then the payload leaves it out. */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.lstat(a).catch(() => null), fs.lstat(b).catch(() => null)]);
  if (!sa || !sb || !sa.isFile() || !sb.isFile() || sa.size !== sb.size) return false;
  return (await fs.readFile(a)).equals(await fs.readFile(b));
}

async function pruneSame(payload: string, root: string, rel = ''): Promise<void> {
  for (const e of await fs.readdir(path.join(payload, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) await pruneSame(payload, root, r);
    else if (e.isFile() && (await sameFile(path.join(payload, r), path.join(root, r)))) await fs.rm(path.join(payload, r));
  }
}

/**
 * The nvidia step (recipe key nvidia; src/images/nvidia.ts): the modules
 * built against this image's kernel (or taken from the module cache when
 * nothing that went into them changed), checked against its vermagic, then
 * the payload tree: modules and their load order, nvidia-smi, libnvidia-ml
 * (and libcuda) with their soname links, the GSP firmware, a stress program.
 */
export async function buildNvidiaPayload(i: NvidiaPayloadInput): Promise<NvidiaPayloadResult> {
  const nv = i.nvidia;
  if (i.arch !== hostArch()) {
    // the modules are compiled on the build host: for another architecture that needs a cross compiler and that
    // architecture's kbuild tools, which this builder does not drive. The image is still useful without the driver.
    const reason = `not built for ${i.arch} on an ${hostArch()} build host`;
    i.log.write(`warning: nvidia: ${reason}: the modules are compiled on the build host, and for ${i.arch} that needs a cross compiler and ${i.arch} kbuild tools this builder does not drive; build on an ${i.arch} machine for the driver`);
    i.progress.detail(`skipped (${i.arch} on a ${hostArch()} host)`);
    return { kind: 'skipped', reason };
  }
  const pk = NVIDIA_DRIVERS[nv.driver];
  const kver = i.kernel.version;
  const cuda = nv.cuda || nv.stress !== undefined;
  const runtime = await i.source.resolveExact(i.log, [pk.smi, pk.ml, ...(cuda ? [pk.cuda] : []), ...(nv.firmware ? [pk.firmware] : [])]);
  const build = await i.source.resolveExact(i.log, [...kernelHeaderPackages(kver, i.kernel.flavour, i.kernel.packageVersion), pk.dkms]);
  const dkmsRef = build.find((r) => r.name === pk.dkms) as DebRef;
  // the user space must be the module's own version: NVML refuses a mismatch ("Driver/library version mismatch")
  for (const r of runtime) if (r.version !== dkmsRef.version) throw new Error(`${r.name} is ${r.version} but ${pk.dkms} is ${dkmsRef.version}: the driver's parts must be one version (is the archive mid-update? build again later)`);
  const version = dkmsRef.version.replace(/-[^-]*$/, '');
  const compiler = (await run(i.log, 'gcc', ['--version'], { capture: true })).split('\n')[0] ?? '';
  const cacheDir = path.join(i.cacheDir, 'nvidia', moduleCacheKey(build, nv.modules, compiler));
  const cached = existsSync(path.join(cacheDir, '.done'));
  const need = cached ? runtime : [...runtime, ...build];
  const downloads = await fetchPackages(i.log, i.source, need, path.join(i.cacheDir, 'debs'), (d, t) => i.progress.count(d, t, 'driver packages'));
  const packages = Object.fromEntries([...runtime, ...build].map((ref) => [ref.name, ref.version]));
  let modules: BuiltModule[];
  if (cached) {
    i.log.write(`modules built before with the same inputs: ${cacheDir}`);
    modules = await Promise.all(nv.modules.map((n) => describeModule(n, path.join(cacheDir, `${n}.ko`))));
  } else {
    const tree = path.join(i.work, 'nvidia-build');
    await fs.mkdir(tree, { recursive: true });
    for (const ref of build) await run(i.log, 'dpkg-deb', ['-x', path.join(i.cacheDir, 'debs', ref.filename), tree]);
    const partial = `${cacheDir}.partial-${process.pid}`;
    await fs.rm(partial, { recursive: true, force: true });
    let n = 0;
    await buildModules({ log: i.log, tree, kernelVersion: kver, flavour: i.kernel.flavour, modules: nv.modules, out: partial, onLine: (l) => { if (/^\s*(CC|LD|CONFTEST)/.test(l) && ++n % 25 === 0) i.progress.detail(`${n} ${l.trim()}`); } });
    await fs.writeFile(path.join(partial, '.done'), `${compiler}\n`);
    await fs.rm(cacheDir, { recursive: true, force: true });
    await fs.rename(partial, cacheDir);
    // unpacked packages only, nothing mounted in it
    await fs.rm(tree, { recursive: true, force: true });
    modules = await Promise.all(nv.modules.map((n) => describeModule(n, path.join(cacheDir, `${n}.ko`))));
  }
  const kv = await kernelVermagic(i.kernel.tree, [...parseModulesDep(await fs.readFile(path.join(i.kernel.tree, 'modules.dep'), 'utf8')).keys()]);
  for (const m of modules) {
    const problem = vermagicProblem(`${m.name}.ko`, m.vermagic === '' ? undefined : m.vermagic, kv, kver);
    if (problem !== null) throw new Error(problem);
  }
  i.log.write(`modules ${modules.map((m) => m.name).join(', ')}: vermagic "${kv.trim()}" as the kernel's`);

  // the payload tree, unpacked over the image's root at boot: every path as the root resolves it
  // (a merged-/usr root has /lib -> usr/lib, and unpacking a folder over that link would break it)
  const unpacked = path.join(i.work, 'nvidia-unpacked');
  const proot = path.join(i.work, 'nvidia-root');
  const at = async (p: string): Promise<string> => path.join(proot, await realInside(i.root, p));
  await fs.mkdir(unpacked, { recursive: true });
  for (const ref of runtime) await run(i.log, 'dpkg-deb', ['-x', path.join(i.cacheDir, 'debs', ref.filename), unpacked]);
  const modDir = await at(NVIDIA_MODULE_DIR);
  await fs.mkdir(modDir, { recursive: true });
  for (const m of modules) await fs.copyFile(m.file, path.join(modDir, `${m.name}.ko`));
  // signed in the payload, never in the module cache: another key needs no rebuild
  let signer: ModuleSigner | null = null;
  if (nv.sign !== undefined) {
    const catalog = path.dirname(path.resolve(i.recipeDir));
    for (const [what, p] of [['key', nv.sign.key], ['cert', nv.sign.cert]] as const) {
      if (!(await fs.stat(p).catch(() => null))?.isFile()) throw new Error(`nvidia: sign: ${what}: ${p} is not a file on this build host`);
    }
    const problem = keyPlaceProblem(catalog, nv.sign.key);
    if (problem !== null) throw new Error(problem);
    const s = await readSigner(i.log, nv.sign.cert, i.work);
    for (const m of modules) await signModule(i.log, path.join(modDir, `${m.name}.ko`), nv.sign.key, s.pem);
    modules = await Promise.all(modules.map(async (m) => ({ ...m, sha256: await hashFile(path.join(modDir, `${m.name}.ko`), 'sha256') })));
    signer = s.signer;
    i.log.write(`modules signed for ${signer.subject} (certificate sha256 ${signer.sha256})`);
  }
  await fs.writeFile(path.join(modDir, 'load-order'), `${modules.map((m) => m.name).join('\n')}\n`);
  // the kernel's own modules they need (nvidia-drm: drm, drm_kms_helper) must be in the image: bee modprobes them first
  const inTree = kernelDepends(modules);
  const imageDep = path.join(i.root, await realInside(i.root, `/lib/modules/${kver}/modules.dep`));
  const missing = missingDepends(modules, [...parseModulesDep(await fs.readFile(imageDep, 'utf8').catch(() => '')).keys()]);
  if (missing.length > 0) throw new Error(`the NVIDIA modules need ${missing.join(', ')}, which the image's kernel modules (recipe kernel: modules:) do not include: add them (nvidia-drm needs drivers/gpu/drm/**), or leave those NVIDIA modules out (nvidia: modules:)`);
  await fs.writeFile(path.join(modDir, 'depends'), inTree.length > 0 ? `${inTree.join('\n')}\n` : '');
  const triplet = ARCH[i.arch].triplet;
  const found = await findFiles(unpacked, (rel) => /(^|\/)nvidia-smi$/.test(rel) || /(^|\/)lib(nvidia-ml|cuda)\.so\.\d+\.\d+/.test(rel));
  const smi = found.find((f) => f.endsWith('/nvidia-smi'));
  if (smi === undefined) throw new Error(`${pk.smi} has no nvidia-smi`);
  const smiAt = await at('/usr/bin/nvidia-smi');
  await fs.mkdir(path.dirname(smiAt), { recursive: true });
  await fs.copyFile(path.join(unpacked, smi), smiAt);
  await fs.chmod(smiAt, 0o755);
  // nvidia-smi's own libraries (libc6's) come from the image, or from the packages unpacked for it
  // (copy_exec took only what the image's programs need); it dlopens libnvidia-ml.so.1 by its soname
  const smiElf = await elfOfFile(path.join(unpacked, smi));
  const sysroot = i.sysroot;
  const dirs = libDirs(triplet);
  for (const lib of smiElf?.needed ?? []) {
    if (await anyExists(i.root, dirs.map((d) => `${d}/${lib}`))) continue;
    let from: string | null = null;
    for (const d of dirs) {
      const p = path.join(sysroot, await realInside(sysroot, `${d}/${lib}`));
      if (existsSync(p)) {
        from = p;
        break;
      }
    }
    if (from === null) throw new Error(`nvidia-smi needs ${lib}, which neither the image nor its packages have (add the package that ships it, libc6 for most, to root: packages)`);
    const to = await at(`/lib/${triplet}/${lib}`);
    await fs.mkdir(path.dirname(to), { recursive: true });
    await fs.copyFile(from, to);
  }
  const libDir = await at(`/usr/lib/${triplet}`);
  await fs.mkdir(libDir, { recursive: true });
  for (const lib of found.filter((f) => /lib(nvidia-ml|cuda)\.so\.\d+\.\d+/.test(f))) {
    const base = path.basename(lib);
    await fs.copyFile(path.join(unpacked, lib), path.join(libDir, base));
    const soname = (await elfOfFile(path.join(libDir, base)))?.soname;
    if (!soname) throw new Error(`${base} names no DT_SONAME`);
    // the seed's lesson: programs ask for the soname (libnvidia-ml.so.1), not the versioned file
    await fs.symlink(base, path.join(libDir, soname));
    if (soname.startsWith('libcuda.')) await fs.symlink(soname, path.join(libDir, 'libcuda.so'));
  }
  const firmware: string[] = [];
  if (nv.firmware) {
    const fw = path.join(unpacked, 'lib/firmware/nvidia', version);
    if (!existsSync(fw)) throw new Error(`${pk.firmware} has no lib/firmware/nvidia/${version}`);
    const fwAt = await at(`/lib/firmware/nvidia/${version}`);
    await fs.mkdir(path.dirname(fwAt), { recursive: true });
    await fs.cp(fw, fwAt, { recursive: true });
    firmware.push(...(await fs.readdir(fw)).sort());
  }
  let stress: string | null = null;
  if (nv.stress !== undefined) {
    // the operator's program with everything beside it (gpu_burn reads compare.ptx from its folder)
    const prog = path.join(i.recipeDir, nv.stress);
    const st = await fs.stat(prog).catch(() => null);
    if (!st?.isFile()) throw new Error(`nvidia: stress: ${nv.stress} is not a file in ${i.recipeDir} (the operator places the stress program there; bootd never downloads one)`);
    const dst = await at(GPU_STRESS_DIR);
    await fs.cp(path.dirname(prog), dst, { recursive: true });
    await fs.chmod(path.join(dst, path.basename(prog)), 0o755);
    await fs.writeFile(path.join(dst, '.program'), `${path.basename(prog)}\n`);
    stress = path.basename(prog);
  }
  await pruneSame(proot, i.root);
  const file = path.join(i.out, NVIDIA_PAYLOAD_FILE);
  // gzip: busybox unpacks it in the image (no zstd applet), and fast
  await packTree(i.log, proot, file, 'gzip -n -6 -c');
  const payload = { file: NVIDIA_PAYLOAD_FILE, sha256: await hashFile(file, 'sha256'), driver: nv.driver, version, modules: modules.map(({ name, vermagic, sha256 }) => ({ name, vermagic, sha256 })), firmware, cuda, stress, signer };
  i.log.write(`payload ${NVIDIA_PAYLOAD_FILE}: ${((await fs.stat(file)).size / 1048576).toFixed(1)} MiB, driver ${version}`);
  return { kind: 'built', payload, packages, downloads };
}

async function anyExists(root: string, paths: readonly string[]): Promise<boolean> {
  for (const p of paths) if (existsSync(path.join(root, await realInside(root, p)))) return true;
  return false;
}

/** Files (and links) under `dir` whose relative path passes `want`. */
async function findFiles(dir: string, want: (rel: string) => boolean, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.posix.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await findFiles(dir, want, r)));
    else if (e.isFile() && want(r)) out.push(r);
  }
  return out;
}

