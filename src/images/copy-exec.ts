/**
 * copy_exec for a root assembled from unpacked .debs: copy a program from
 * the sysroot (every package of the recipe, unpacked side by side) into the
 * image root at the same path, with the shared libraries it needs, as
 * initramfs-tools' copy_exec does for the running system.
 *
 * Libraries are found by the sysroot's own dynamic loader (`ld.so --list`,
 * which loads but does not run the program) restricted to the sysroot's
 * library folders. A library resolved outside the sysroot or not at all
 * is an error naming the program: silently taking the build host's copy
 * would make the image depend on what the build machine has installed.
 * Symlinks (lsmod -> kmod, libz.so.1 -> libz.so.1.2.13) are kept as links.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { run, type BuildLog } from './build-log.js';

const MULTIARCH = 'x86_64-linux-gnu';
const LIB_DIRS = [`lib/${MULTIARCH}`, `usr/lib/${MULTIARCH}`, 'lib', 'usr/lib', 'lib64', 'usr/lib64'];
const LOADER = 'ld-linux-x86-64.so.2';

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
  private loader: string | undefined;

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
    // Only a program with an interpreter (PT_INTERP) loads libraries; its
    // list is already transitive, and static(-pie) programs such as
    // busybox-static have none (ld.so --list even crashes on those).
    const interp = await interpreterOf(src);
    if (interp !== null) {
      // The path the kernel opens (/lib64/ld-linux-x86-64.so.2), link chain and all.
      await this.copy(interp);
      for (const lib of await this.libraries(imagePath)) await this.copy(lib);
    }
  }

  private async link(at: string, to: string): Promise<void> {
    const dst = path.join(this.root, at);
    await fs.mkdir(path.dirname(dst), { recursive: true });
    await fs.rm(dst, { force: true });
    await fs.symlink(to, dst);
  }

  /** Image paths of the libraries (and loader) a program needs. */
  private async libraries(imagePath: string): Promise<string[]> {
    const loader = await this.findLoader();
    const libPath = LIB_DIRS.map((d) => path.join(this.sysroot, d)).join(':');
    let out: string;
    try {
      out = await run(this.log, path.join(this.sysroot, loader), ['--library-path', libPath, '--list', path.join(this.sysroot, imagePath)], { capture: true });
    } catch (err) {
      const msg = (err as Error).message;
      if (/not a dynamic executable|statically linked/.test(msg)) return [];
      throw new Error(`cannot list the libraries of ${imagePath}: ${msg}`);
    }
    if (/statically linked/.test(out)) return [];
    const libs: string[] = [];
    for (const line of out.split('\n')) {
      const t = line.trim();
      if (t === '' || t.startsWith('linux-vdso')) continue;
      const found = /^(\S+) => (.+?) \(0x[0-9a-f]+\)$/.exec(t);
      if (found) {
        const where = found[2] as string;
        if (!where.startsWith(`${this.sysroot}/`)) throw new Error(`${imagePath} needs ${found[1]}, which no package of the recipe provides (found ${where === 'not found' ? 'nowhere' : `only on the build host at ${where}`}); add its package`);
        libs.push(where.slice(this.sysroot.length));
        continue;
      }
      if (/=> not found/.test(t)) throw new Error(`${imagePath} needs ${t.split(' ')[0]}, which no package of the recipe provides; add its package`);
      const interp = /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(t);
      if (interp) {
        const p = interp[1] as string;
        libs.push(p.startsWith(`${this.sysroot}/`) ? p.slice(this.sysroot.length) : p);
      }
    }
    return libs;
  }

  private async findLoader(): Promise<string> {
    if (this.loader !== undefined) return this.loader;
    for (const d of [`lib/${MULTIARCH}`, `usr/lib/${MULTIARCH}`, 'lib64']) {
      const real = await realInside(this.sysroot, `/${d}/${LOADER}`);
      try {
        if ((await fs.stat(path.join(this.sysroot, real))).isFile()) return (this.loader = real);
      } catch {
        // try the next folder
      }
    }
    throw new Error(`no ${LOADER} in the unpacked packages: dynamic programs need libc6 in the recipe's packages`);
  }
}

/** The PT_INTERP path of an ELF64 little-endian file (its dynamic loader), or null: not ELF, or static. */
export async function interpreterOf(file: string): Promise<string | null> {
  const h = await fs.open(file, 'r');
  try {
    const eh = Buffer.alloc(64);
    const { bytesRead } = await h.read(eh, 0, 64, 0);
    if (bytesRead < 64 || !eh.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return null;
    if (eh[4] !== 2 || eh[5] !== 1) throw new Error(`${file}: only 64-bit little-endian ELF (x86_64) is supported`);
    const phoff = Number(eh.readBigUInt64LE(0x20));
    const phentsize = eh.readUInt16LE(0x36);
    const phnum = eh.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    await h.read(ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (ph.readUInt32LE(o) !== 3) continue; // PT_INTERP
      const off = Number(ph.readBigUInt64LE(o + 8));
      const size = Number(ph.readBigUInt64LE(o + 32));
      const b = Buffer.alloc(Math.min(size, 4096));
      await h.read(b, 0, b.length, off);
      return b.toString('latin1').replace(/\0.*$/s, '');
    }
    return null;
  } finally {
    await h.close();
  }
}
