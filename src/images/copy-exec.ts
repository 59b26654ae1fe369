/**
 * copy_exec for a root assembled from unpacked .debs: copy a program from
 * the sysroot (every package of the recipe, unpacked side by side) into the
 * image root at the same path, with the shared libraries it needs, as
 * initramfs-tools' copy_exec does for the running system.
 *
 * Libraries are found the way the dynamic loader would find them, from the
 * ELF files themselves (src/images/elf.ts: DT_NEEDED, DT_RUNPATH), in the
 * sysroot's library folders for the program's own architecture (x86-64 or
 * AArch64): nothing of the image is run, so a build host can assemble an
 * image of another architecture. A library found nowhere in the sysroot,
 * or only for another architecture, is an error naming the program and the
 * library: silently taking the build host's copy would make the image depend
 * on what the build machine has installed.
 * Symlinks (lsmod -> kmod, libz.so.1 -> libz.so.1.2.13) are kept as links.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BuildLog } from './build-log.js';
import { ARCH } from './arch.js';
import { elfOfFile as elfOf } from './elf-file.js';
import type { ElfInfo } from './elf.js';

/** Debian's multiarch triplet per ELF machine: where its libraries live. */
const MULTIARCH: ReadonlyMap<number, string> = new Map(Object.values(ARCH).map((a) => [a.elfMachine, a.triplet]));

/** The loader's default search path for a triplet (ld.so(8), Debian's ld.so.conf.d for multiarch). */
export function libDirs(triplet: string): string[] {
  return [`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib', '/usr/lib', '/lib64', '/usr/lib64'];
}

/** Resolves a path inside the sysroot through its symlinks, as the image will see it. */
export async function realInside(sysroot: string, imagePath: string, depth = 0): Promise<string> {
  if (depth > 32) throw new Error(`${imagePath}: too many levels of symbolic links`);
  const parts = imagePath.split('/').filter((p) => p !== '');
  let cur = '';
  for (let i = 0; i < parts.length; i++) {
    const next = `${cur}/${parts[i]}`;
    let st;
    try {
      st = await fs.lstat(path.join(sysroot, next));
    } catch {
      return `${next}/${parts.slice(i + 1).join('/')}`.replace(/\/$/, '');
    }
    if (st.isSymbolicLink()) {
      const target = await fs.readlink(path.join(sysroot, next));
      const abs = target.startsWith('/') ? target : path.posix.join(cur === '' ? '/' : cur, target);
      return realInside(sysroot, path.posix.normalize([abs, ...parts.slice(i + 1)].join('/')), depth + 1);
    }
    cur = next;
  }
  return cur === '' ? '/' : cur;
}

export class CopyExec {
  private readonly done = new Set<string>();

  constructor(
    private readonly sysroot: string,
    private readonly root: string,
    private readonly log: BuildLog,
  ) {}

  /** Copies one path (file or symlink chain); programs bring their libraries. */
  async copy(imagePath: string): Promise<void> {
    if (this.done.has(imagePath)) return;
    this.done.add(imagePath);
    const src = path.join(this.sysroot, imagePath);
    let st;
    try {
      st = await fs.lstat(src);
    } catch {
      throw new Error(`${imagePath} is not in any package of the recipe`);
    }
    // A symlink in a parent folder (usrmerge's /bin -> usr/bin) is followed first.
    const parentReal = await realInside(this.sysroot, path.posix.dirname(imagePath));
    if (parentReal !== path.posix.dirname(imagePath)) {
      await this.copy(path.posix.join(parentReal, path.posix.basename(imagePath)));
      await this.link(imagePath, path.posix.join(parentReal, path.posix.basename(imagePath)));
      return;
    }
    const dst = path.join(this.root, imagePath);
    await fs.mkdir(path.dirname(dst), { recursive: true });
    if (st.isSymbolicLink()) {
      const target = await fs.readlink(src);
      await fs.rm(dst, { force: true });
      await fs.symlink(target, dst);
      const abs = target.startsWith('/') ? target : path.posix.join(path.posix.dirname(imagePath), target);
      await this.copy(path.posix.normalize(abs));
      return;
    }
    if (!st.isFile()) throw new Error(`${imagePath} is not a file`);
    await fs.copyFile(src, dst);
    await fs.chmod(dst, st.mode & 0o7777);
    // Only a program with an interpreter (PT_INTERP) loads libraries;
    // static(-pie) programs such as busybox-static have none.
    const elf = await elfOf(src);
    if (elf?.interpreter) {
      // The path the kernel opens (/lib64/ld-linux-x86-64.so.2), link chain and all.
      await this.copy(elf.interpreter);
      for (const lib of await this.libraries(imagePath, elf)) await this.copy(lib);
    }
  }

  private async link(at: string, to: string): Promise<void> {
    const dst = path.join(this.root, at);
    await fs.mkdir(path.dirname(dst), { recursive: true });
    await fs.rm(dst, { force: true });
    await fs.symlink(to, dst);
  }

  /**
   * Image paths of the libraries a program needs, transitively: each
   * DT_NEEDED name looked up in the needing file's DT_RUNPATH ($ORIGIN
   * expanded), then in the library folders of the program's architecture.
   */
  private async libraries(imagePath: string, elf: ElfInfo): Promise<string[]> {
    const triplet = MULTIARCH.get(elf.machine);
    if (triplet === undefined) throw new Error(`${imagePath}: ELF machine ${elf.machine} is neither x86-64 nor AArch64`);
    const found: string[] = [];
    const seen = new Set<string>();
    const queue: { from: string; info: ElfInfo }[] = [{ from: imagePath, info: elf }];
    while (queue.length > 0) {
      const { from, info } = queue.shift() as { from: string; info: ElfInfo };
      for (const name of info.needed) {
        if (seen.has(name)) continue;
        seen.add(name);
        const origin = path.posix.dirname(from);
        const dirs = [...info.runpath.map((d) => d.replace(/\$ORIGIN|\$\{ORIGIN\}/g, origin)), ...libDirs(triplet)];
        let hit: { at: string; info: ElfInfo } | null = null;
        let otherArch: string | null = null;
        for (const d of dirs) {
          const at = path.posix.join(d, name);
          const real = await realInside(this.sysroot, at);
          let lib: ElfInfo | null;
          try {
            if (!(await fs.stat(path.join(this.sysroot, real))).isFile()) continue;
            lib = await elfOf(path.join(this.sysroot, real));
          } catch {
            continue;
          }
          if (lib === null) continue;
          if (lib.machine !== elf.machine) {
            otherArch ??= at;
            continue;
          }
          hit = { at, info: lib };
          break;
        }
        if (!hit) throw new Error(`${imagePath} needs ${name}${from !== imagePath ? ` (through ${from})` : ''}, which no package of the recipe provides${otherArch !== null ? ` for ${triplet} (${otherArch} is another architecture's)` : ''}; add its package`);
        this.log.write(`copy_exec: ${from} needs ${name}: ${hit.at}`);
        found.push(hit.at);
        queue.push({ from: hit.at, info: hit.info });
      }
    }
    return found;
  }
}
