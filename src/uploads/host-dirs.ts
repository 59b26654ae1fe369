/**
 * Where TFTP uploads go: each host writes only inside its own directory
 * `<dir>/<host>/`, whoever it claims to be in the file name. The host is
 * known by the peer's address (its reservation or lease), never by the path.
 * A request for `<host>/x` from that host lands in `<host>/x` (the form
 * bee.report= uses); any other path is taken relative to the peer's own
 * directory, so no name reaches another host's files.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Remote } from '../net/udp.js';
import { ErrorCode } from '../tftp/packet.js';
import { normalizeRequestPath } from '../tftp/paths.js';
import type { WriteDecision, WritePolicy } from '../tftp/write-transfer.js';
import { FileRoot, type RequestContext, type Resolution, type Resolver } from '../tftp/fileroot.js';
import { FileUploadSink, PARTIAL_PREFIX } from './file-sink.js';

export interface HostUploadDirsOptions {
  /** The host name behind an address, or undefined for strangers. */
  whoIs(address: string): string | undefined;
  /** Bytes a host may keep in its directory. */
  quotaBytes(host: string): number;
  /** Replace an existing file (default true); false: ERROR 6 "file already exists". */
  overwrite?(host: string): boolean;
}

/** Bytes in a directory tree, temporary upload files included (they hold space too). */
export async function usageBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await usageBytes(p);
    else if (e.isFile()) total += (await fs.stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

function refuse(code: number, message: string, reason: string): WriteDecision {
  return { ok: false, code, message, reason };
}

/**
 * Also the read side of the upload port: a client reads only its own
 * directory (`x` or `<host>/x`), so two hosts never see each other's files.
 */
export class HostUploadDirs implements WritePolicy, Resolver {
  constructor(
    readonly dir: string,
    private readonly o: HostUploadDirsOptions,
  ) {}

  async resolve(rawName: string, ctx: RequestContext): Promise<Resolution> {
    const host = this.o.whoIs(ctx.peer.address);
    if (host === undefined) return { ok: false, code: ErrorCode.ACCESS_VIOLATION, message: 'Access violation', reason: `no host has address ${ctx.peer.address}` };
    const own = path.join(this.dir, host);
    await fs.mkdir(own, { recursive: true, mode: 0o755 });
    const n = normalizeRequestPath(rawName);
    const rel = n.ok && n.path.startsWith(`${host}/`) ? n.path.slice(host.length + 1) : rawName;
    if (path.posix.basename(rel).startsWith(PARTIAL_PREFIX)) return { ok: false, code: ErrorCode.FILE_NOT_FOUND, message: 'File not found', reason: 'upload in progress' };
    return (await FileRoot.open(own)).resolve(rel, ctx);
  }

  async authorize(peer: Remote, filename: string): Promise<WriteDecision> {
    const host = this.o.whoIs(peer.address);
    if (host === undefined) return refuse(ErrorCode.ACCESS_VIOLATION, 'Uploads are accepted only from known hosts', `no host has address ${peer.address}`);
    const n = normalizeRequestPath(filename);
    if (!n.ok) return refuse(ErrorCode.ACCESS_VIOLATION, 'Access violation', n.reason);
    const rel = n.path.startsWith(`${host}/`) ? n.path.slice(host.length + 1) : n.path;
    const base = path.posix.basename(rel);
    if (rel === '' || base.startsWith(PARTIAL_PREFIX)) return refuse(ErrorCode.ACCESS_VIOLATION, 'Access violation', 'not a file name');
    const own = path.join(this.dir, host);
    const target = path.join(own, rel);
    await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    // a symlink planted in the directory must not lead the write elsewhere
    const realOwn = await fs.realpath(own);
    const realParent = await fs.realpath(path.dirname(target));
    if (realParent !== realOwn && !realParent.startsWith(realOwn + path.sep)) return refuse(ErrorCode.ACCESS_VIOLATION, 'Access violation', 'path leaves the host directory');
    const existing = await fs.lstat(target).catch(() => null);
    if (existing && !existing.isFile()) return refuse(ErrorCode.ACCESS_VIOLATION, 'Access violation', 'not a regular file');
    if (existing && this.o.overwrite?.(host) === false) return refuse(ErrorCode.FILE_EXISTS, 'File already exists', 'overwrite is off for this host');
    // the old file's bytes are freed by the rename, so they count as available
    const free = this.o.quotaBytes(host) - (await usageBytes(own)) + (existing?.size ?? 0);
    if (free <= 0) return refuse(ErrorCode.DISK_FULL, `Quota of ${this.o.quotaBytes(host)} bytes used up`, 'quota used up');
    return { ok: true, path: `${host}/${rel}`, sink: new FileUploadSink(target), maxBytes: free };
  }
}
