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
import { normalizeRequestPath } from '../files/paths.js';
import type { WriteDecision, WritePolicy } from '../tftp/write-transfer.js';
import { FileRoot, denied, notFound, type RequestContext, type Resolution, type Resolver } from '../files/root.js';
import { FileUploadSink, PARTIAL_PREFIX, isPartialPath } from './file-sink.js';
import { QuotaLedger } from './quota.js';

export interface HostUploadDirsOptions {
  /** The host name behind an address, or undefined for strangers. */
  whoIs(address: string): string | undefined;
  /** Bytes a host may keep in its directory. */
  quotaBytes(host: string): number;
  /** Replace an existing file (default true); false: ERROR 6 "file already exists". */
  overwrite?(host: string): boolean;
}

/** Bytes of whole files in a directory tree; partial uploads are left out (in-flight uploads hold reservations instead). */
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
    else if (e.isFile() && !e.name.startsWith(PARTIAL_PREFIX)) total += (await fs.stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

function refuse(code: number, message: string, reason: string): WriteDecision {
  return { ok: false, code, message, reason };
}

const inside = (p: string, root: string): boolean => p === root || p.startsWith(root + path.sep);

/**
 * The directory `rel` (a normalized relative path, '' for `own` itself)
 * under `own`, checked whole before anything is created: every segment that
 * exists must be a directory, or a symlink whose target stays inside `own`;
 * the first one missing and all after it cannot lead anywhere. Only then are
 * the missing ones made, one at a time. null when the path leaves `own`.
 */
export async function confinedDir(own: string, rel: string): Promise<string | null> {
  const parent = path.dirname(own);
  const realParent = await fs.realpath(parent);
  const segs = rel === '' ? [] : rel.split('/');
  // phase 1: check what exists
  let cur = realParent;
  let realOwn: string | null = null;
  let missing = -1; // index (in [own, ...segs]) of the first missing segment
  const names = [path.basename(own), ...segs];
  for (let i = 0; i < names.length; i++) {
    const next = path.join(cur, names[i] as string);
    const st = await fs.lstat(next).catch(() => null);
    if (st === null) {
      missing = i;
      break;
    }
    if (st.isSymbolicLink()) {
      const real = await fs.realpath(next).catch(() => null);
      if (real === null || (realOwn !== null && !inside(real, realOwn)) || (realOwn === null && !inside(real, realParent))) return null;
      const rst = await fs.stat(real);
      if (!rst.isDirectory()) return null;
      cur = real;
    } else if (st.isDirectory()) {
      cur = next;
    } else return null;
    if (i === 0) realOwn = cur;
  }
  // phase 2: the whole path is confined; make what is missing
  if (missing >= 0) {
    for (let i = missing; i < names.length; i++) {
      cur = path.join(cur, names[i] as string);
      await fs.mkdir(cur, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => (err.code === 'EEXIST' ? undefined : Promise.reject(err)));
    }
  }
  return cur;
}

/**
 * Also the read side of the upload port: a client reads only its own
 * directory (`x` or `<host>/x`), so two hosts never see each other's files.
 */
export class HostUploadDirs implements WritePolicy, Resolver {
  private readonly ledger = new QuotaLedger();
  /** Targets being uploaded now where overwrite is off: a second upload of one name is refused at once. */
  private readonly exclusiveInFlight = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly o: HostUploadDirsOptions,
  ) {}

  async resolve(rawName: string, ctx: RequestContext): Promise<Resolution> {
    const host = this.o.whoIs(ctx.peer.address);
    if (host === undefined) return denied(`no host has address ${ctx.peer.address}`);
    const own = path.join(this.dir, host);
    const n = normalizeRequestPath(rawName);
    if (!n.ok) return denied(n.reason);
    const rel = n.path.startsWith(`${host}/`) ? n.path.slice(host.length + 1) : n.path;
    if (isPartialPath(rel)) return notFound('upload in progress');
    const root = await FileRoot.open(own).catch(() => null);
    if (root === null) return notFound('nothing uploaded yet');
    return root.resolve(rel, ctx);
  }

  async authorize(peer: Remote, filename: string): Promise<WriteDecision> {
    const host = this.o.whoIs(peer.address);
    if (host === undefined) return refuse(ErrorCode.ACCESS_VIOLATION, 'Uploads are accepted only from known hosts', `no host has address ${peer.address}`);
    const n = normalizeRequestPath(filename);
    if (!n.ok) return refuse(ErrorCode.ACCESS_VIOLATION, 'Access violation', n.reason);
    const rel = n.path.startsWith(`${host}/`) ? n.path.slice(host.length + 1) : n.path;
    if (rel === '' || isPartialPath(rel)) return refuse(ErrorCode.ACCESS_VIOLATION, 'Access violation', 'not a file name');
    const own = path.join(this.dir, host);
    const relDir = path.posix.dirname(rel);
    // nothing is created before the whole path is known to stay in the host's directory
    const parent = await confinedDir(own, relDir === '.' ? '' : relDir);
    if (parent === null) return refuse(ErrorCode.ACCESS_VIOLATION, 'Access violation', 'path leaves the host directory');
    const target = path.join(parent, path.posix.basename(rel));
    const existing = await fs.lstat(target).catch(() => null);
    if (existing && !existing.isFile()) return refuse(ErrorCode.ACCESS_VIOLATION, 'Access violation', 'not a regular file');
    const exclusive = this.o.overwrite?.(host) === false;
    if (exclusive && (existing || this.exclusiveInFlight.has(target))) return refuse(ErrorCode.FILE_EXISTS, 'File already exists', existing ? 'overwrite is off for this host' : 'an upload of this name is in progress');
    // the old file's bytes are freed by the rename, so they count as available
    const quota = this.o.quotaBytes(host);
    const held = this.ledger.open(own, quota, await usageBytes(own), exclusive ? 0 : (existing?.size ?? 0));
    if (held === null) return refuse(ErrorCode.DISK_FULL, `Quota of ${quota} bytes used up`, 'quota used up');
    if (exclusive) this.exclusiveInFlight.add(target);
    const sink = new FileUploadSink(target, { reservation: held.reservation, exclusive, onEnd: () => this.exclusiveInFlight.delete(target) });
    return { ok: true, path: `${host}/${rel}`, sink, maxBytes: held.free };
  }
}
