/**
 * What a TFTP name resolves to: a virtual file registered by another module
 * (generated pxelinux configs, iPXE scripts) or a regular file under the root
 * directory. Symlinks are followed only while they stay inside the root.
 */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { ErrorCode } from './packet.js';
import { normalizeRequestPath } from './paths.js';

/** Who is asking; virtual files may differ per client (per-MAC configs come by name, but not only). */
export interface RequestContext {
  readonly peer: { readonly address: string; readonly port: number };
}

/** A provider of generated files. Returning undefined means "not mine". */
export interface VirtualFiles {
  get(relPath: string, ctx: RequestContext): Buffer | undefined | Promise<Buffer | undefined>;
}

/** A simple in-memory table of virtual files. */
export class VirtualFileTable implements VirtualFiles {
  private readonly files = new Map<string, Buffer | ((ctx: RequestContext) => Buffer | undefined)>();

  /** `relPath` is normalized the same way requests are, so `/a//b` and `a/b` are one entry. */
  set(relPath: string, content: Buffer | string | ((ctx: RequestContext) => Buffer | undefined)): void {
    const n = normalizeRequestPath(relPath);
    if (!n.ok) throw new Error(`invalid virtual file path ${JSON.stringify(relPath)}: ${n.reason}`);
    this.files.set(n.path, typeof content === 'string' ? Buffer.from(content) : content);
  }

  delete(relPath: string): void {
    const n = normalizeRequestPath(relPath);
    if (n.ok) this.files.delete(n.path);
  }

  get(relPath: string, ctx: RequestContext): Buffer | undefined {
    const f = this.files.get(relPath);
    return typeof f === 'function' ? f(ctx) : f;
  }
}

export type Resolution =
  | { readonly ok: true; readonly kind: 'virtual'; readonly path: string; readonly content: Buffer }
  | { readonly ok: true; readonly kind: 'file'; readonly path: string; readonly realPath: string; readonly stat: Stats }
  | { readonly ok: false; readonly code: number; readonly message: string; readonly reason: string; readonly path?: string };

export class FileRoot {
  private constructor(
    /** The root with every symlink resolved. */
    readonly realRoot: string,
    private readonly virtual: readonly VirtualFiles[],
  ) {}

  /** Fails when the root does not exist or is not a directory. */
  static async open(root: string, virtual: readonly VirtualFiles[] = []): Promise<FileRoot> {
    const real = await fs.realpath(root);
    const st = await fs.stat(real);
    if (!st.isDirectory()) throw new Error(`TFTP root ${root} is not a directory`);
    return new FileRoot(real, virtual);
  }

  async resolve(rawName: string, ctx: RequestContext): Promise<Resolution> {
    const n = normalizeRequestPath(rawName);
    if (!n.ok) return deny(n.reason);
    for (const v of this.virtual) {
      const content = await v.get(n.path, ctx);
      if (content !== undefined) return { ok: true, kind: 'virtual', path: n.path, content };
    }
    const candidate = path.join(this.realRoot, n.path);
    let real: string;
    try {
      real = await fs.realpath(candidate);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        return { ok: false, code: ErrorCode.FILE_NOT_FOUND, message: 'File not found', reason: 'not found', path: n.path };
      }
      return deny(`cannot resolve: ${code ?? String(err)}`, n.path);
    }
    if (real !== this.realRoot && !real.startsWith(this.realRoot + path.sep)) {
      return deny('symlink resolves outside the root', n.path);
    }
    let stat: Stats;
    try {
      stat = await fs.stat(real);
    } catch (err) {
      return deny(`cannot stat: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, n.path);
    }
    // Devices, FIFOs and directories are never served: /dev/zero would never end.
    if (!stat.isFile()) return deny('not a regular file', n.path);
    return { ok: true, kind: 'file', path: n.path, realPath: real, stat };
  }
}

function deny(reason: string, p?: string): Resolution {
  return { ok: false, code: ErrorCode.ACCESS_VIOLATION, message: 'Access violation', reason, ...(p ? { path: p } : {}) };
}
