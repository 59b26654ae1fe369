/**
 * The same file tree as TFTP (root directory, generated configs, image
 * files), read-only over HTTP for iPXE and UEFI HTTP boot clients. Under
 * TCG, iPXE fetches a kernel about 20x faster over HTTP than over TFTP
 * (WIRE.md, checklist 8).
 *
 * GET and HEAD with Content-Length; one byte range per request (range.ts).
 * Path rules are TFTP's (FileRoot): nothing outside the root is reachable.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Clock } from '../net/clock.js';
import type { Logger } from '../log.js';
import type { EventSink } from '../events/types.js';
import { RepeatLimiter } from '../log-limit.js';
import type { FileFailure, Resolution, Resolver } from '../files/root.js';
import type { CachedSource, FileCache } from '../files/source.js';
import { requestPathBytes } from './path.js';
import { decideRange } from './range.js';

export interface HttpTransfer {
  readonly peer: { readonly address: string; readonly port: number };
  readonly method: string;
  readonly file: string;
  readonly status: number;
  /** Body bytes sent. */
  readonly bytes: number;
  readonly size: number;
  readonly durationMs: number;
  readonly outcome: 'complete' | 'aborted' | 'refused' | 'server-error';
  readonly detail?: string;
}

/** HTTP statuses for the file tree's neutral failures (src/files/root.ts). */
const HTTP_STATUS_OF: Readonly<Record<FileFailure, number>> = { 'not-found': 404, denied: 403, busy: 503 };

export interface HttpServerDeps {
  readonly root: Resolver;
  /**
   * TFTP's whole-file cache, shared: a kernel or initrd is read once for both
   * protocols, and a body from it goes to the socket without waiting for disk
   * reads (see `handle`). Absent, or a file over its budget: streamed from disk.
   */
  readonly cache?: Pick<FileCache, 'openBuffer'>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly limits?: HttpLimits;
  /** Where requests are published as they start and finish (src/events/); absent: nowhere. */
  readonly events?: EventSink;
  /** The listener failed (not a passing accept error): this server cannot go on. */
  readonly onFatal?: (err: Error) => void;
}

/**
 * What one client may hold. A connection with no progress either way (a
 * client that stopped reading: its window stays shut) is closed after
 * `idleMs`; connections are capped in all and per client address, below the
 * process's descriptor limit, so TFTP transfers and DHCP always find
 * descriptors (see `httpLimitsFor`).
 */
export interface HttpLimits {
  readonly idleMs: number;
  readonly maxConnections: number;
  readonly maxPerClient: number;
}

/**
 * Defaults from the soft descriptor limit (Node raises it to the hard limit
 * at start): a quarter of it for HTTP, at most 4096, at least 64; 64 per
 * client address (iPXE opens one connection per file or keeps one alive). 30 s
 * of no progress is far beyond a TCG guest's slowest read (a 256 KiB window
 * drained in well under a second) and frees a stuck client's slot soon.
 */
export function httpLimitsFor(fdLimit: number): HttpLimits {
  return { idleMs: 30_000, maxConnections: Math.max(64, Math.min(4096, Math.floor(fdLimit / 4))), maxPerClient: 64 };
}

export interface HttpStats {
  requests: number;
  completed: number;
  aborted: number;
  refused: number;
  bytesSent: number;
  active: number;
  /** Connections closed at once: over the total or the per-client cap. */
  refusedConnections: number;
  /** Connections closed after `idleMs` without progress. */
  idleTimeouts: number;
}

const HTTP_SLICE_BYTES = 1 << 20;
const WARM_UP_HEADER = 'x-bootd-warm-up';
const TEXT = /\.(ipxe|cfg|txt|json|log)$|^pxelinux\.cfg\//;

/**
 * UEFI HTTP Boot decides what it downloaded by the Content-Type first, the
 * name's extension second (edk2 HttpBootDxe, UEFI 2.x section 24.7.5): an
 * EFI program, or a disk image it mounts as a RAM disk and boots from
 * (src/bootconfig/efi-disk.ts).
 */
function contentType(p: string): string {
  if (TEXT.test(p)) return 'text/plain; charset=utf-8';
  if (p.endsWith('.efi')) return 'application/efi';
  if (p.endsWith('.img')) return 'application/vnd.efi-img';
  if (p.endsWith('.iso')) return 'application/vnd.efi-iso';
  return 'application/octet-stream';
}

export class HttpFileServer {
  private readonly server: http.Server;
  readonly counters: HttpStats = { requests: 0, completed: 0, aborted: 0, refused: 0, bytesSent: 0, active: 0, refusedConnections: 0, idleTimeouts: 0 };
  private readonly perClient = new Map<string, number>();
  private readonly warnings: RepeatLimiter;
  private open = 0;
  private closing = false;
  /** Marks warmUp()'s own request (header WARM_UP_HEADER): answered as any other, but not counted, logged or reported. */
  private readonly warmToken = randomBytes(16).toString('hex');

  private constructor(private readonly d: HttpServerDeps) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.warnings = new RepeatLimiter(d.log, d.clock);
    // boot clients open one connection per file or keep one alive; neither needs long idle times
    this.server.keepAliveTimeout = 10_000;
    this.server.headersTimeout = 15_000;
    const limits = d.limits ?? httpLimitsFor(1024);
    // no progress either way for idleMs (a client that never reads): the socket is closed
    this.server.timeout = limits.idleMs;
    this.server.on('timeout', (socket: Socket) => {
      this.counters.idleTimeouts++;
      socket.destroy();
    });
    this.server.on('connection', (socket: Socket) => {
      const addr = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
      const mine = this.perClient.get(addr) ?? 0;
      if (this.open >= limits.maxConnections || mine >= limits.maxPerClient) {
        this.counters.refusedConnections++;
        socket.destroy();
        return;
      }
      this.open++;
      this.perClient.set(addr, mine + 1);
      socket.once('close', () => {
        this.open--;
        const n = (this.perClient.get(addr) ?? 1) - 1;
        if (n <= 0) this.perClient.delete(addr);
        else this.perClient.set(addr, n);
      });
    });
  }

  static async start(d: HttpServerDeps, address: string, port: number): Promise<HttpFileServer> {
    const s = new HttpFileServer(d);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen({ host: address, port, exclusive: true }, () => {
        s.server.off('error', reject);
        s.watchListener();
        resolve();
      });
    });
    return s;
  }

  get address(): { address: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  /**
   * Sends one request to ourselves over loopback (a missing file: it runs the
   * parser, the path resolution and a response) before any client comes. The
   * first request of the process otherwise takes some 9 ms longer while that
   * code compiles, and in boot modes 2 and 5 it is the iPXE script a booting
   * machine waits for (docs/performance.md, session 9). Never fails.
   */
  async warmUp(timeoutMs = 2000): Promise<void> {
    const { address, port } = this.address;
    const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
    await new Promise<void>((resolve) => {
      const req = http.request({ host, port, method: 'GET', path: `/.bootd-warm-up-${this.warmToken}`, headers: { [WARM_UP_HEADER]: this.warmToken }, agent: false, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve());
      req.end();
    });
  }

  /**
   * After listen: an accept error that is a passing shortage (descriptors,
   * a connection reset before it was taken) is counted and logged; any
   * other error, or the server closing when we did not close it, is fatal.
   */
  private watchListener(): void {
    this.server.on('error', (err: NodeJS.ErrnoException) => {
      if (['EMFILE', 'ENFILE', 'ECONNABORTED', 'ECONNRESET', 'ENOBUFS', 'ENOMEM'].includes(err.code ?? '')) {
        this.warnings.warn('accept', { err: err.message }, 'http accept failed');
        return;
      }
      if (this.closing) return;
      if (this.d.onFatal) this.d.onFatal(err);
      else this.warnings.warn('listener', { err: err.message }, 'http listener error');
    });
    this.server.on('close', () => {
      if (!this.closing) this.d.onFatal?.(new Error('the HTTP listener closed underneath bootd'));
    });
  }

  /** Stops accepting, ends open connections, resolves when closed. */
  close(): Promise<void> {
    this.closing = true;
    this.warnings.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const warm = req.headers[WARM_UP_HEADER] === this.warmToken;
    // warmUp()'s own request is answered as any other, but counted only on a copy
    const x = new Reply(req, res, warm ? { ...this.counters } : this.counters, this.d.clock.now(), (r, outcome, detail) => this.report(r, outcome, warm, detail));
    if (x.method !== 'GET' && x.method !== 'HEAD') {
      x.refuse(405, 'read-only: GET and HEAD only', { Allow: 'GET, HEAD' });
      return;
    }
    const decoded = requestPathBytes(x.file);
    if (decoded === null) {
      x.refuse(400, 'malformed percent-encoding in the path');
      return;
    }
    x.file = decoded;
    if (!warm) this.d.events?.publish({ type: 'transfer.started', protocol: 'http', direction: 'read', peer: x.peer.address, file: x.file });
    this.d.root.resolve(x.file, { peer: x.peer }).then(
      (r) => this.respond(x, r),
      (err: unknown) => {
        this.d.log.error({ peer: x.peer, file: x.file, err: String(err) }, 'http request failed');
        if (!res.headersSent) res.writeHead(500).end();
        x.finish('server-error', String(err));
      },
    );
  }

  /** One line and one event per finished request (warm-up requests: neither). */
  private report(x: Reply, outcome: HttpTransfer['outcome'], warm: boolean, detail: string | undefined): void {
    if (warm) return;
    const t: HttpTransfer = { peer: x.peer, method: x.method, file: x.file, status: x.res.statusCode, bytes: x.bytes, size: x.size, durationMs: Math.round((this.d.clock.now() - x.started) * 10) / 10, outcome, ...(detail ? { detail } : {}) };
    const line = { ...t, peer: `${x.peer.address}:${x.peer.port}` };
    if (outcome === 'complete' || outcome === 'refused') this.d.log.info(line, 'http transfer');
    else this.warnings.warn(`transfer-${outcome}`, line, 'http transfer'); // many aborted clients: a few lines and a count
    this.d.events?.publish({
      type: 'transfer.finished',
      protocol: 'http',
      direction: 'read',
      peer: x.peer.address,
      file: x.file,
      bytes: x.bytes,
      size: x.size,
      durationMs: t.durationMs,
      outcome,
      http: { method: x.method, status: t.status },
      ...(detail ? { detail } : {}),
    });
  }

  /** Headers, the range, then the body from memory, the cache or the disk. */
  private respond(x: Reply, r: Resolution): void {
    if (!r.ok) {
      x.refuse(HTTP_STATUS_OF[r.failure], r.failure === 'not-found' ? 'not found' : r.failure === 'busy' ? `busy: ${r.reason}` : `forbidden: ${r.reason}`);
      return;
    }
    x.file = r.path;
    x.size = r.kind === 'virtual' ? r.content.length : r.stat.size;
    const range = decideRange(typeof x.req.headers.range === 'string' ? x.req.headers.range : undefined, x.size);
    const headers: Record<string, string | number> = {
      'Content-Type': contentType(r.path),
      'Accept-Ranges': 'bytes',
    };
    // generated files change with hosts/*.yaml: never cache them
    if (r.kind === 'virtual') headers['Cache-Control'] = 'no-store';
    else headers['Last-Modified'] = r.stat.mtime.toUTCString();
    if (range.kind === 'unsatisfiable') {
      x.refuse(416, 'range not satisfiable', { 'Content-Range': `bytes */${x.size}` });
      return;
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : x.size - 1;
    headers['Content-Length'] = end - start + 1;
    if (range.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end}/${x.size}`;
    x.res.writeHead(range.kind === 'partial' ? 206 : 200, headers);
    if (x.method === 'HEAD' || end < start) {
      x.res.end();
      x.finish('complete');
      return;
    }
    if (r.kind === 'virtual') {
      x.bytes = end - start + 1;
      x.res.end(r.content.subarray(start, end + 1));
      x.finish('complete');
      return;
    }
    if (!this.d.cache) {
      sendFromDisk(x, r.realPath, start, end);
      return;
    }
    this.d.cache.openBuffer(r.realPath, r.stat).then(
      (src) => {
        if (src === null) sendFromDisk(x, r.realPath, start, end); // over the cache's budget
        else sendFromCache(x, src, start, end);
      },
      (err: unknown) => x.fail(err),
    );
  }
}

/** One request's bookkeeping: what was asked, what went out, and its one ending. */
class Reply {
  readonly peer: { readonly address: string; readonly port: number };
  readonly method: string;
  file: string;
  size = 0;
  bytes = 0;
  private ended = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly counters: HttpStats,
    readonly started: number,
    private readonly onEnd: (x: Reply, outcome: HttpTransfer['outcome'], detail: string | undefined) => void,
  ) {
    counters.requests++;
    counters.active++;
    this.peer = { address: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''), port: req.socket.remotePort ?? 0 };
    this.method = req.method ?? '';
    this.file = req.url ?? '';
  }

  finish(outcome: HttpTransfer['outcome'], detail?: string): void {
    if (this.ended) return;
    this.ended = true;
    const c = this.counters;
    c.active--;
    if (outcome === 'complete') c.completed++;
    else if (outcome === 'refused') c.refused++;
    else c.aborted++;
    c.bytesSent += this.bytes;
    this.onEnd(this, outcome, detail);
  }

  refuse(status: number, reason: string, headers: Record<string, string> = {}): void {
    this.res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(reason) + 1, ...headers });
    this.res.end(this.method === 'HEAD' ? undefined : `${reason}\n`);
    this.finish('refused', reason);
  }

  fail(err: unknown): void {
    this.res.destroy(err as Error);
    this.finish('server-error', `read error: ${String(err)}`);
  }

  /** The response's end, either way: `cleanup` gives back what the body came from. */
  onClosed(cleanup: () => void): void {
    this.res.on('close', () => {
      cleanup();
      if (this.res.writableFinished) this.finish('complete');
      else this.finish('aborted', 'client closed the connection');
    });
  }
}

function sendFromDisk(x: Reply, realPath: string, start: number, end: number): void {
  const stream = createReadStream(realPath, { start, end, highWaterMark: 256 * 1024 });
  stream.on('data', (c) => {
    x.bytes += c.length;
  });
  stream.on('error', (err) => {
    x.res.destroy(err);
    x.finish('server-error', `read error: ${err.message}`);
  });
  x.onClosed(() => stream.destroy());
  stream.pipe(x.res);
}

/**
 * From the cache, the body goes to the socket in 1 MiB slices, the next one
 * as soon as libuv has handed the last to the kernel ('drain'): the send
 * buffer is refilled at once, where a piped file stream stops at every
 * chunk for the next disk read. Under TCG iPXE then finds data waiting at
 * each ACK (ACK to next segment 42 us, as busybox httpd's sendfile, instead
 * of 85 us; docs/performance.md, boot bench mode 2).
 */
function sendFromCache(x: Reply, src: CachedSource, start: number, end: number): void {
  const res = x.res;
  x.onClosed(() => src.release());
  // bytes still loading come as a promise (CachedSource): wait for that slice only
  let off = start;
  const last = end + 1;
  const send = (slice: Buffer): boolean => {
    off += slice.length;
    x.bytes += slice.length;
    if (off >= last) {
      res.end(slice);
      return false;
    }
    return res.write(slice);
  };
  const pump = (): void => {
    while (off < last && !res.destroyed) {
      // what is loaded goes now, even short of a slice; with nothing loaded past
      // `off`, wait for the load's next read and look again
      const piece = src.read(off, src.loaded > off ? Math.min(off + HTTP_SLICE_BYTES, last, src.loaded) : off + 1);
      if (piece instanceof Promise) {
        piece.then(() => void (res.destroyed || pump()), (err: unknown) => x.fail(err));
        return;
      }
      if (!send(piece)) {
        if (off < last) res.once('drain', pump);
        return;
      }
    }
  };
  if (last <= off) res.end();
  else pump();
}
