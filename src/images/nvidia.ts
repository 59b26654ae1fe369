/**
 * The NVIDIA driver for an image (issue 23; the seed's bee, seed 000): the
 * kernel modules built at image time against the image's own kernel, from
 * Debian's DKMS sources (non-free), with nvidia-smi, libnvidia-ml and the GSP
 * firmware, as one payload beside the initrd.
 *
 * The seed's lessons, and where each lives here:
 * - modules built against the exact kernel of the image (stale headers made
 *   modules that never loaded): the headers are the image kernel's own
 *   package version, and the build fails when a module's vermagic differs
 *   from the kernel's (vermagicProblem);
 * - modules kept at a path the image controls and loaded by absolute insmod
 *   (the payload's /usr/local/lib/nvidia; images/bee's bee-nvidia);
 * - soname links for libnvidia-ml.so.1 and libcuda.so.1 (made here from
 *   each library's DT_SONAME; bee-nvidia checks them at boot).
 *
 * DKMS itself is not run (it wants /var/lib/dkms and /lib/modules/<kver>/build
 * of the build host, that is, headers installed there): instead its recipe,
 * the package's dkms.conf, is sourced by bash as DKMS sources it, and its
 * MAKE[0] runs in a throwaway tree of unpacked packages (the image kernel's
 * linux-headers, linux-kbuild and the DKMS source) with the host's
 * compiler. Nothing is installed on the build host.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run, type BuildLog } from './build-log.js';
import { modinfoOfFile } from './elf-file.js';
import { hashFile, type DebRef } from './packages.js';

export type NvidiaDriver = 'tesla-535' | 'current';

/** Debian's packages of one driver branch (source nvidia-graphics-drivers[-tesla-535], non-free and non-free-firmware). */
export interface DriverPackages {
  /** The kernel modules' DKMS source (/usr/src/<name>-<version>/dkms.conf). */
  readonly dkms: string;
  readonly smi: string;
  readonly ml: string;
  readonly cuda: string;
  readonly firmware: string;
}

export const NVIDIA_DRIVERS: Readonly<Record<NvidiaDriver, DriverPackages>> = {
  'tesla-535': { dkms: 'nvidia-tesla-535-kernel-dkms', smi: 'nvidia-tesla-535-smi', ml: 'libnvidia-tesla-535-ml1', cuda: 'libnvidia-tesla-535-cuda1', firmware: 'firmware-nvidia-tesla-535-gsp' },
  current: { dkms: 'nvidia-kernel-dkms', smi: 'nvidia-smi', ml: 'libnvidia-ml1', cuda: 'libcuda1', firmware: 'firmware-nvidia-gsp' },
};

/** The archive components the driver comes from. */
export const NVIDIA_COMPONENTS = ['non-free', 'non-free-firmware'] as const;

/** Where the payload puts the modules in the image (the seed's path: one the image controls, not /lib/modules). */
export const NVIDIA_MODULE_DIR = '/usr/local/lib/nvidia';
/** Where a recipe's stress program goes. */
export const GPU_STRESS_DIR = '/usr/local/lib/gpu-stress';
export const NVIDIA_PAYLOAD_FILE = 'nvidia.img';

/**
 * The image kernel's headers, pinned to its package version: the flavour's
 * (`linux-headers-6.1.0-57-cloud-amd64`), the common tree it includes
 * (`linux-headers-6.1.0-57-common`) and kbuild (`linux-kbuild-6.1`). Pure.
 */
export function kernelHeaderPackages(kernelVersion: string, flavour: string, packageVersion: string): string[] {
  if (!kernelVersion.endsWith(`-${flavour}`)) throw new Error(`kernel ${kernelVersion} is not of flavour ${flavour}`);
  const abi = kernelVersion.slice(0, -flavour.length - 1);
  const mm = /^(\d+\.\d+)/.exec(packageVersion)?.[1];
  if (mm === undefined) throw new Error(`kernel package version ${packageVersion} does not start with major.minor`);
  return [`linux-headers-${kernelVersion}=${packageVersion}`, `linux-headers-${abi}-common=${packageVersion}`, `linux-kbuild-${mm}=${packageVersion}`];
}

export interface DkmsConf {
  readonly packageName: string;
  readonly packageVersion: string;
  /** MAKE[0] as DKMS runs it, ${kernelver} and ${parallel_jobs} expanded. */
  readonly make: string;
  /** BUILT_MODULE_NAME[i] with BUILT_MODULE_LOCATION[i] (relative to the source, '' = top). */
  readonly modules: readonly { readonly name: string; readonly location: string }[];
  readonly exclusiveKernel: string;
  readonly exclusiveConfig: readonly string[];
}

/**
 * Sources dkms.conf the way DKMS does (dkms(8): a bash fragment with
 * kernelver, arch and parallel_jobs set) and prints what a build needs,
 * one `key<TAB>value` per line. $1 kernel version, $2 arch, $3 jobs.
 */
export const DKMS_DUMP = `set -u
kernelver=$1; arch=$2; parallel_jobs=$3; source_tree=$PWD; dkms_tree=$PWD
unset PACKAGE_NAME PACKAGE_VERSION MAKE BUILT_MODULE_NAME BUILT_MODULE_LOCATION BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_CONFIG
set +u
. ./dkms.conf
one() { printf '%s\\t%s\\n' "$1" "$(printf '%s' "$2" | tr '\\n\\t' '  ')"; }
one name "$PACKAGE_NAME"; one version "$PACKAGE_VERSION"; one make "\${MAKE[0]}"
one exclusive_kernel "$BUILD_EXCLUSIVE_KERNEL"; one exclusive_config "$BUILD_EXCLUSIVE_CONFIG"
for i in "\${!BUILT_MODULE_NAME[@]}"; do one module "\${BUILT_MODULE_NAME[$i]}:\${BUILT_MODULE_LOCATION[$i]:-}"; done
`;

/** DKMS_DUMP's output as a DkmsConf. Pure. */
export function parseDkmsDump(text: string): DkmsConf {
  const v = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab <= 0) continue;
    const k = line.slice(0, tab);
    v.set(k, [...(v.get(k) ?? []), line.slice(tab + 1)]);
  }
  const one = (k: string): string => (v.get(k)?.[0] ?? '').replace(/\s+/g, ' ').trim();
  const conf: DkmsConf = {
    packageName: one('name'),
    packageVersion: one('version'),
    make: one('make'),
    modules: (v.get('module') ?? []).map((m) => {
      const i = m.indexOf(':');
      return { name: m.slice(0, i), location: m.slice(i + 1).replace(/^\/+|\/+$/g, '') };
    }),
    exclusiveKernel: one('exclusive_kernel'),
    exclusiveConfig: one('exclusive_config').split(' ').filter((w) => w !== ''),
  };
  if (conf.packageName === '' || conf.make === '' || conf.modules.length === 0) throw new Error('dkms.conf names no PACKAGE_NAME, MAKE[0] or BUILT_MODULE_NAME');
  return conf;
}

/**
 * Why this kernel cannot take the module (dkms.conf BUILD_EXCLUSIVE_KERNEL,
 * a regular expression on the version, and BUILD_EXCLUSIVE_CONFIG, options
 * the kernel's .config must have, `!` for must not), or null. Pure.
 */
export function exclusionProblem(conf: DkmsConf, kernelVersion: string, dotConfig: string): string | null {
  if (conf.exclusiveKernel !== '' && !new RegExp(conf.exclusiveKernel).test(kernelVersion)) return `${conf.packageName} builds only for kernels matching ${conf.exclusiveKernel} (dkms.conf BUILD_EXCLUSIVE_KERNEL), not ${kernelVersion}`;
  const set = new Set<string>();
  for (const m of dotConfig.matchAll(/^(CONFIG_[A-Za-z0-9_]+)=[ym]$/gm)) set.add(m[1] as string);
  for (const c of conf.exclusiveConfig) {
    const neg = c.startsWith('!');
    const name = neg ? c.slice(1) : c;
    if (neg && set.has(name)) return `${conf.packageName} does not build for a kernel with ${name} (dkms.conf BUILD_EXCLUSIVE_CONFIG), and ${kernelVersion} has it`;
    if (!neg && !set.has(name)) return `${conf.packageName} needs ${name} (dkms.conf BUILD_EXCLUSIVE_CONFIG), and ${kernelVersion} does not have it`;
  }
  return null;
}

/**
 * The vermagic check (the seed's lesson: modules built against other headers
 * never loaded). The kernel refuses a module whose vermagic string differs
 * from its own (kernel/module/version.c); the build refuses it first. Pure.
 */
export function vermagicProblem(module: string, moduleVermagic: string | undefined, kernelVermagic: string, kernelVersion: string): string | null {
  if (moduleVermagic === undefined) return `${module} has no vermagic in its .modinfo: not a module built by kbuild`;
  if (moduleVermagic.trim() === kernelVermagic.trim()) return null;
  return `${module} was built for "${moduleVermagic.trim()}" but the image's kernel ${kernelVersion} is "${kernelVermagic.trim()}" (vermagic): the headers it was built against are not that kernel's, and the kernel would refuse it`;
}

/** The vermagic of the image kernel, read from one of its own modules (modules.dep names them). */
export async function kernelVermagic(moduleTree: string, modulesDep: readonly string[]): Promise<string> {
  const plain = modulesDep.find((m) => m.endsWith('.ko'));
  if (plain === undefined) throw new Error(`no uncompressed module in ${moduleTree} to read the kernel's vermagic from`);
  const v = (await modinfoOfFile(path.join(moduleTree, plain)))?.get('vermagic')?.[0];
  if (v === undefined) throw new Error(`${plain} has no vermagic`);
  return v;
}

export interface BuiltModule {
  readonly name: string;
  /** The stripped module file. */
  readonly file: string;
  readonly vermagic: string;
  readonly sha256: string;
  /** `.modinfo` depends: the kernel's own modules it needs loaded first (nvidia-drm: drm, drm_kms_helper). */
  readonly depends: readonly string[];
}

const moduleName = (n: string): string => n.replace(/-/g, '_');

/** The kernel's own modules the built ones need (`.modinfo` depends less the NVIDIA modules themselves), sorted. Pure. */
export function kernelDepends(modules: readonly Pick<BuiltModule, 'name' | 'depends'>[]): string[] {
  const ours = new Set(modules.map((m) => moduleName(m.name)));
  return [...new Set(modules.flatMap((m) => m.depends).filter((d) => !ours.has(moduleName(d))))].sort();
}

/** Of kernelDepends, those the image's modules (paths as modules.dep names them) lack: `-` and `_` are one. Pure. */
export function missingDepends(modules: readonly Pick<BuiltModule, 'name' | 'depends'>[], imageModules: readonly string[]): string[] {
  const have = new Set(imageModules.map((p) => moduleName(path.basename(p).replace(/\.ko(\.(xz|zst|gz))?$/, ''))));
  return kernelDepends(modules).filter((d) => !have.has(moduleName(d)));
}

export interface ModuleBuildInput {
  readonly log: BuildLog;
  /** The throwaway tree: the header and DKMS packages unpacked side by side. */
  readonly tree: string;
  readonly kernelVersion: string;
  readonly flavour: string;
  /** Modules to keep, in load order (BUILT_MODULE_NAME values). */
  readonly modules: readonly string[];
  /** Where the stripped modules go. */
  readonly out: string;
  readonly onLine?: (line: string) => void;
}

/** Finds the DKMS source under usr/src (the folder holding dkms.conf). */
async function dkmsSource(tree: string): Promise<string> {
  const src = path.join(tree, 'usr/src');
  for (const d of await fs.readdir(src).catch(() => [] as string[])) {
    if (existsSync(path.join(src, d, 'dkms.conf'))) return path.join(src, d);
  }
  throw new Error(`no DKMS source (usr/src/*/dkms.conf) in the unpacked driver package`);
}

/**
 * Builds the modules in the throwaway tree: the flavour's Makefile includes
 * the common tree by its absolute /usr/src path, which is pointed into the
 * tree; MAKE[0] then runs with SYSSRC/SYSOUT naming the common and flavour
 * trees (what /lib/modules/<kver>/source and build name on an installed
 * system, the NVIDIA Makefile's own variables).
 */
export async function buildModules(i: ModuleBuildInput): Promise<BuiltModule[]> {
  const srcTree = path.join(i.tree, 'usr/src');
  const flavourDir = path.join(srcTree, `linux-headers-${i.kernelVersion}`);
  const abi = i.kernelVersion.slice(0, -i.flavour.length - 1);
  const commonDir = path.join(srcTree, `linux-headers-${abi}-common`);
  for (const d of [flavourDir, commonDir]) if (!existsSync(d)) throw new Error(`the kernel headers have no ${path.relative(i.tree, d)}`);
  const mk = path.join(flavourDir, 'Makefile');
  await fs.writeFile(mk, (await fs.readFile(mk, 'utf8')).replace(/(^|\s)\/usr\/src\//gm, `$1${srcTree}/`));
  const src = await dkmsSource(i.tree);
  const jobs = String(Math.max(1, os.availableParallelism()));
  const conf = parseDkmsDump(await run(i.log, 'bash', ['-c', DKMS_DUMP, 'dkms', i.kernelVersion, os.arch() === 'arm64' ? 'aarch64' : 'x86_64', jobs], { cwd: src, capture: true }));
  const excl = exclusionProblem(conf, i.kernelVersion, await fs.readFile(path.join(flavourDir, '.config'), 'utf8'));
  if (excl !== null) throw new Error(excl);
  for (const m of i.modules) if (!conf.modules.some((x) => x.name === m)) throw new Error(`${conf.packageName} ${conf.packageVersion} builds no module ${m} (its dkms.conf: ${conf.modules.map((x) => x.name).join(', ')})`);
  i.log.write(`building ${conf.packageName} ${conf.packageVersion} for ${i.kernelVersion}: ${conf.make}`);
  await run(i.log, 'bash', ['-c', conf.make], { cwd: src, env: { SYSSRC: commonDir, SYSOUT: flavourDir }, ...(i.onLine ? { onLine: i.onLine } : {}) });
  await fs.mkdir(i.out, { recursive: true });
  const built: BuiltModule[] = [];
  for (const name of i.modules) {
    const m = conf.modules.find((x) => x.name === name) as DkmsConf['modules'][number];
    const from = path.join(src, m.location, `${name}.ko`);
    if (!existsSync(from)) throw new Error(`the build made no ${path.join(m.location, `${name}.ko`)}`);
    const file = path.join(i.out, `${name}.ko`);
    // debug info is most of the file (nvidia.ko: 75 MB with, 65 MB without); .modinfo stays
    await run(i.log, 'strip', ['--strip-debug', '-o', file, from]);
    built.push(await describeModule(name, file));
  }
  return built;
}

export async function describeModule(name: string, file: string): Promise<BuiltModule> {
  const info = await modinfoOfFile(file);
  const depends = (info?.get('depends')?.[0] ?? '').split(',').filter((d) => d !== '');
  return { name, file, vermagic: info?.get('vermagic')?.[0] ?? '', sha256: await hashFile(file, 'sha256'), depends };
}

/** The cache key of a module build: what went in (packages by file and hash, modules, compiler). */
export function moduleCacheKey(refs: readonly DebRef[], modules: readonly string[], compiler: string): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ v: 1, refs: refs.map((r) => `${r.filename} ${r.hash}`).sort(), modules, compiler }));
  return h.digest('hex').slice(0, 24);
}
