/**
 * The TFTP server: a decode, decide, dispatch loop on the listening socket.
 * Each accepted request gets its own socket and transfer; everything about
 * one transfer lives in transfer.ts and session.ts.
 *
 * Writes: the main port refuses WRQ with an access violation. A listener
 * built with a `writes` policy (per-machine ports, a later issue) hands WRQs
 * to it instead; the request path below is shared.
 */
import type { Clock } from '../net/clock.js';
import type { MtuLookup } from '../net/mtu.js';
import { SocketLostError, type Remote, type UdpSocket, type UdpSocketFactory } from '../net/udp.js';
import type { Logger } from '../log.js';
import type { EventSink, TransferProtocol } from '../events/types.js';
import { RepeatLimiter } from '../log-limit.js';
import { ClientLimiter, type ClientLimits } from './client-limits.js';
import type { FileFailure, Resolver } from '../files/root.js';
import { NetasciiShare, toNetascii } from './netascii.js';
import { blksizeForMtu, negotiate, MAX_BLKSIZE, MAX_WINDOWSIZE, type NegotiationLimits } from './options.js';
import { ErrorCode, Opcode, TftpDecodeError, decodePacket, encodePacket, errorPacket, type RequestPacket } from './packet.js';
import { ReadSession, type TimingConfig } from './session.js';
import { BufferSource, type BlockSource, type FileCache } from '../files/source.js';
import { ReadTransfer, type TransferResult } from './transfer.js';
import { WriteSession } from './write-session.js';
import { WriteTransfer, type WritePolicy } from './write-transfer.js';

/** Named defaults; every one is a `bootd serve` flag (see README). */
export const TFTP_DEFAULTS = {
  port: 69,
  maxTransfers: 1000,
  maxBlksize: MAX_BLKSIZE,
  maxWindowsize: MAX_WINDOWSIZE,
  timing: {
    /** RFC 6298's initial RTO, also the fixed RTO when adaptive timing is off. */
    initialMs: 1000,
    /** Below this, event-loop jitter in a boot storm would fire spurious retransmissions. */
    minMs: 10,
    /** Ceiling for backoff when the client did not negotiate `timeout`. */
    maxMs: 3000,
    adaptive: true,
    /** A transfer with no progress for this long is abandoned (frees its slot). */
    giveUpMs: 30_000,
  } satisfies TimingConfig,
  /** Shared file cache budget; larger files are streamed. */
  cacheBytes: 1024 * 1024 * 1024,
  /** netascii is converted in memory (one shared copy per file); it is for text files. */
  netasciiMaxBytes: 64 * 1024 * 1024,
  /**
   * Per client address. A PXE client fetches its files one after another
   * (PXELINUX's config search is ten quick requests, EDK2's size probe ends
   * before its real request), so 32 transfers at once is far above any boot,
   * while 1000 slots then take at least 32 addresses to fill. 50 requests a
   * second with a burst of 100 is ten times PXELINUX's search and stops one
   * address from keeping the server resolving names for a flood.
   */
  perClient: { maxTransfers: 32, requestsPerSecond: 50, burst: 100 } satisfies ClientLimits,
} as const;

export interface TftpServerConfig {
  readonly maxTransfers: number;
  readonly maxBlksize: number;
  readonly maxWindowsize: number;
  readonly timing: TimingConfig;
  /** Address transfer sockets bind to: the listen address, or 0.0.0.0. */
  readonly transferAddress: string;
  /** Per client address (default TFTP_DEFAULTS.perClient). */
  readonly perClient?: ClientLimits;
}

/** Per-client negotiation limits (firmware quirks from hosts/*.yaml, a later issue). */
export type LimitsFor = (peer: Remote) => Partial<NegotiationLimits> | undefined;

export interface TftpServerDeps {
  readonly listener: UdpSocket;
  readonly udp: UdpSocketFactory;
  readonly clock: Clock;
  readonly root: Resolver;
  readonly cache: FileCache;
  readonly mtu: MtuLookup;
  readonly log: Logger;
  readonly config: TftpServerConfig;
  readonly limitsFor?: LimitsFor;
  /** Accept WRQs under this policy; absent: writes are refused (the main port). */
  readonly writes?: WritePolicy;
  /** Where transfers are published as they start and finish; absent: nowhere. */
  readonly events?: TransferEvents;
  /** The listening socket is lost (SocketLostError): this server cannot go on. */
  readonly onFatal?: (err: Error) => void;
}

/** How this server's transfers appear on the event bus (src/events/). */
export interface TransferEvents {
  readonly sink: EventSink;
  /** tftp (the main port), upload (bee.report=), machine (a build machine's port). */
  readonly protocol: TransferProtocol;
  /** Where a complete write transfer's file now lies. */
  readonly storedAt?: (file: string) => string;
}

export interface TftpStats {
  requests: number;
  malformed: number;
  unexpected: number;
  duplicateRequests: number;
  refusedBusy: number;
  /** Refused: the client's address has its maximum of transfers in flight. */
  refusedClientBusy: number;
  /** Dropped unanswered: over the client address's request rate. */
  rateLimited: number;
  refusedWrite: number;
  uploads: number;
  bytesReceived: number;
  notFound: number;
  denied: number;
  started: number;
  completed: number;
  probes: number;
  failed: number;
  bytesSent: number;
  active: number;
}

/** RFC 1350 error codes for the file tree's neutral failures (src/files/root.ts). */
const TFTP_ERROR_OF: Readonly<Record<FileFailure, number>> = {
  'not-found': ErrorCode.FILE_NOT_FOUND,
  denied: ErrorCode.ACCESS_VIOLATION,
  busy: ErrorCode.NOT_DEFINED,
};

/** A read transfer receives only ACKs (4 bytes) and ERRORs (RFC 1350: 4 bytes, a message and a NUL). */
const READ_TRANSFER_MAX_MESSAGE = 1024;

export class TftpServer {
  /** Running (or starting: null) transfers by client address:port, with the request that started each. */
  private readonly transfers = new Map<string, { transfer: ReadTransfer | WriteTransfer | null; request: string }>();
  private readonly idle: (() => void)[] = [];
  private closing = false;
  private readonly netascii = new NetasciiShare();
  readonly counters: TftpStats = {
    requests: 0,
    malformed: 0,
    unexpected: 0,
    duplicateRequests: 0,
    refusedBusy: 0,
    refusedClientBusy: 0,
    rateLimited: 0,
    refusedWrite: 0,
    uploads: 0,
    bytesReceived: 0,
    notFound: 0,
    denied: 0,
    started: 0,
    completed: 0,
    probes: 0,
    failed: 0,
    bytesSent: 0,
    active: 0,
  };

  private readonly clients: ClientLimiter;
  private readonly warnings: RepeatLimiter;

  constructor(private readonly d: TftpServerDeps) {
    this.clients = new ClientLimiter(d.config.perClient ?? TFTP_DEFAULTS.perClient);
    this.warnings = new RepeatLimiter(d.log, d.clock);
    d.listener.onMessage((msg, from) => this.onRequest(msg, from));
    d.listener.onError((err) => {
      if (err instanceof SocketLostError && !this.closing && d.onFatal) d.onFatal(err);
      else this.warnings.warn('listener', { err: err.message }, 'tftp listener error');
    });
  }

  get address(): Remote {
    return this.d.listener.local();
  }

  private onRequest(msg: Buffer, from: Remote): void {
    if (this.closing) return;
    let req: RequestPacket;
    try {
      const p = decodePacket(msg);
      if (p.opcode !== Opcode.RRQ && p.opcode !== Opcode.WRQ) {
        this.counters.unexpected++; // a stray ACK/DATA on the request port: no transfer owns it
        return;
      }
      req = p;
    } catch (err) {
      this.counters.malformed++;
      if (this.d.log.isLevelEnabled('debug')) {
        this.d.log.debug({ peer: from, err: (err as Error).message, hex: msg.subarray(0, 64).toString('hex') }, 'tftp malformed packet dropped');
      }
      // A broken request still deserves an answer so the client stops retrying.
      const op = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
      if (err instanceof TftpDecodeError && (op === Opcode.RRQ || op === Opcode.WRQ)) {
        this.d.listener.send(errorPacket(ErrorCode.ILLEGAL_OPERATION, 'Malformed request'), from);
      }
      return;
    }
    this.counters.requests++;
    if (!this.clients.admit(from.address, this.d.clock.now())) {
      this.counters.rateLimited++;
      return;
    }
    const key = `${from.address}:${from.port}`;
    const signature = requestSignature(req);
    const running = this.transfers.get(key);
    if (running) {
      if (running.request === signature || running.transfer === null) {
        // The client retransmitted its request before our first reply arrived:
        // the running transfer retransmits by itself, a second one would double every packet.
        this.counters.duplicateRequests++;
        return;
      }
      // A different request from the same port: the client gave up on the old one.
      running.transfer.supersede();
    }
    if (req.opcode === Opcode.WRQ && !this.d.writes) {
      this.counters.refusedWrite++;
      this.refuse(from, req.filename, ErrorCode.ACCESS_VIOLATION, 'Writes are not allowed on this port', 'write refused');
      return;
    }
    if (req.mode !== 'octet' && req.mode !== 'netascii') {
      this.refuse(from, req.filename, ErrorCode.ILLEGAL_OPERATION, `Unsupported mode "${req.mode}"`, 'bad mode');
      return;
    }
    if (this.transfers.size >= this.d.config.maxTransfers) {
      this.counters.refusedBusy++;
      this.refuse(from, req.filename, ErrorCode.NOT_DEFINED, `Server busy: ${this.d.config.maxTransfers} transfers in progress, retry later`, 'busy');
      return;
    }
    if (!running && !this.clients.acquire(from.address, this.d.clock.now())) {
      this.counters.refusedClientBusy++;
      this.refuse(from, req.filename, ErrorCode.NOT_DEFINED, `Too many transfers from ${from.address}, retry later`, 'client busy');
      return;
    }
    this.transfers.set(key, { transfer: null, request: signature }); // reserve the slot while the file is resolved
    this.counters.active = this.transfers.size;
    (req.opcode === Opcode.WRQ ? this.startWrite(key, from, req, signature, this.d.writes as WritePolicy) : this.startRead(key, from, req, signature)).catch((err: unknown) => {
      this.d.log.error({ peer: from, file: req.filename, err: String(err) }, 'tftp request failed');
      this.d.listener.send(errorPacket(ErrorCode.NOT_DEFINED, 'Internal error'), from);
      this.release(key);
    });
  }

  private async startRead(key: string, peer: Remote, req: RequestPacket, signature: string): Promise<void> {
    const res = await this.d.root.resolve(req.filename, { peer });
    if (!res.ok) {
      if (res.failure === 'not-found') this.counters.notFound++;
      else this.counters.denied++;
      this.refuse(peer, req.filename, TFTP_ERROR_OF[res.failure], res.message, res.reason);
      this.release(key);
      return;
    }
    let source: BlockSource;
    if (res.kind === 'virtual') source = new BufferSource(req.mode === 'netascii' ? toNetascii(res.content) : res.content);
    else if (req.mode === 'netascii') {
      if (res.stat.size > TFTP_DEFAULTS.netasciiMaxBytes) {
        this.refuse(peer, req.filename, ErrorCode.NOT_DEFINED, 'File too large for netascii mode, use octet', 'netascii too large');
        this.release(key);
        return;
      }
      // one converted copy per file version, shared by its concurrent readers and converted in
      // steps that let the event loop run (not a copy per transfer, not one long blocking loop)
      const version = `${res.realPath}\0${res.stat.size}\0${res.stat.mtimeMs}`;
      const shared = await this.netascii.get(version, async () => {
        const raw = await this.d.cache.open(res.realPath, res.stat);
        try {
          const text = raw.read(0, raw.size);
          return text instanceof Promise ? await text : text;
        } finally {
          raw.release();
        }
      });
      source = new BufferSource(shared.buf, shared.release);
    } else {
      source = await this.d.cache.open(res.realPath, res.stat);
    }
    if (this.closing) {
      source.release();
      this.refuse(peer, req.filename, ErrorCode.NOT_DEFINED, 'Server shutting down', 'shutdown');
      this.release(key);
      return;
    }
    let socket: UdpSocket;
    try {
      // the read transfer parses each packet before returning (transfer.ts), so a reused receive buffer is safe
      socket = await this.d.udp.bind({ address: this.d.config.transferAddress, port: 0, connect: peer, reusedMessages: true, maxMessageBytes: READ_TRANSFER_MAX_MESSAGE });
    } catch (err) {
      source.release();
      throw err;
    }
    const quirks = this.d.limitsFor?.(peer) ?? {};
    const limits: NegotiationLimits = {
      maxBlksize: Math.min(this.d.config.maxBlksize, blksizeForMtu(this.d.mtu(socket.local().address)), quirks.maxBlksize ?? MAX_BLKSIZE),
      maxWindowsize: Math.min(this.d.config.maxWindowsize, quirks.maxWindowsize ?? MAX_WINDOWSIZE),
    };
    const neg = negotiate({ options: req.options, size: source.size, write: false, limits });
    const timing = this.timingFor(neg.timeoutMs);
    const session = new ReadSession({ size: source.size, blksize: neg.blksize, windowsize: neg.windowsize, sendOack: neg.oack !== null, timing });
    const transfer = new ReadTransfer({
      socket,
      clock: this.d.clock,
      source,
      session,
      oack: neg.oack ? encodePacket({ opcode: Opcode.OACK, options: neg.oack }) : null,
      peer,
      file: res.path,
      blksize: neg.blksize,
      windowsize: neg.windowsize,
      onDone: (r) => this.finished(key, transfer, r),
    });
    this.launch(key, signature, transfer, peer, res.path, 'read');
  }

  /** RFC 2349: the client's timeout bounds how long we wait; adaptive timing may retransmit sooner. */
  private timingFor(timeoutMs: number | null): TimingConfig {
    const t = this.d.config.timing;
    return timeoutMs === null ? t : { ...t, maxMs: timeoutMs, initialMs: Math.min(t.initialMs, timeoutMs) };
  }

  private launch(key: string, signature: string, transfer: ReadTransfer | WriteTransfer, peer: Remote, file: string, direction: 'read' | 'write'): void {
    this.transfers.set(key, { transfer, request: signature });
    this.counters.started++;
    const ev = this.d.events;
    if (ev) ev.sink.publish({ type: 'transfer.started', protocol: ev.protocol, direction, peer: peer.address, file });
    transfer.start();
    if (this.closing) transfer.abort('shutdown', 'Server shutting down'); // close() ran while we were binding
  }

  private async startWrite(key: string, peer: Remote, req: RequestPacket, signature: string, policy: WritePolicy): Promise<void> {
    const grant = await policy.authorize(peer, req.filename);
    if (!grant.ok) {
      this.counters.refusedWrite++;
      this.refuse(peer, req.filename, grant.code, grant.message, grant.reason);
      this.release(key);
      return;
    }
    // DATA up to the negotiated blksize; the write transfer may keep a block past the handler (a sink write in flight)
    let socket: UdpSocket;
    try {
      socket = await this.d.udp.bind({ address: this.d.config.transferAddress, port: 0, connect: peer });
    } catch (err) {
      await grant.sink.discard().catch(() => {}); // gives back its reservation
      throw err;
    }
    const limits: NegotiationLimits = {
      maxBlksize: Math.min(this.d.config.maxBlksize, blksizeForMtu(this.d.mtu(socket.local().address))),
      maxWindowsize: this.d.config.maxWindowsize,
    };
    const neg = negotiate({ options: req.options, size: null, write: true, limits });
    if (neg.announcedSize !== null && neg.announcedSize > grant.maxBytes) {
      // RFC 2349: the server may refuse a WRQ whose tsize it cannot hold
      socket.close();
      await grant.sink.discard();
      this.counters.refusedWrite++;
      this.refuse(peer, req.filename, ErrorCode.DISK_FULL, `Allocation exceeded: ${neg.announcedSize} bytes announced, ${grant.maxBytes} available`, 'quota');
      this.release(key);
      return;
    }
    const timing = this.timingFor(neg.timeoutMs);
    const session = new WriteSession({ blksize: neg.blksize, windowsize: neg.windowsize, sendOack: neg.oack !== null, maxBytes: grant.maxBytes, timing });
    const transfer: WriteTransfer = new WriteTransfer({
      socket,
      clock: this.d.clock,
      session,
      sink: grant.sink,
      oack: neg.oack ? encodePacket({ opcode: Opcode.OACK, options: neg.oack }) : null,
      peer,
      file: grant.path,
      blksize: neg.blksize,
      windowsize: neg.windowsize,
      onDone: (r) => this.finished(key, transfer, r),
    });
    this.launch(key, signature, transfer, peer, grant.path, 'write');
  }

  private finished(key: string, transfer: ReadTransfer | WriteTransfer, r: TransferResult): void {
    this.release(key, transfer);
    if (r.direction === 'write') {
      this.counters.bytesReceived += r.bytes;
      if (r.outcome === 'complete') this.counters.uploads++;
    } else this.counters.bytesSent += r.bytes;
    if (r.outcome === 'complete') this.counters.completed++;
    else if (r.outcome === 'probe-aborted') this.counters.probes++;
    else this.counters.failed++;
    const line = { ...r, peer: `${r.peer.address}:${r.peer.port}` };
    if (r.outcome === 'complete' || r.outcome === 'probe-aborted' || r.outcome === 'shutdown') this.d.log.info(line, 'tftp transfer');
    else this.warnings.warn(`transfer-${r.outcome}`, line, 'tftp transfer'); // a flood of failing transfers: a few lines and a count
    const ev = this.d.events;
    if (ev) {
      const stored = r.direction === 'write' && r.outcome === 'complete' && ev.storedAt ? ev.storedAt(r.file) : undefined;
      ev.sink.publish({
        type: 'transfer.finished',
        protocol: ev.protocol,
        direction: r.direction,
        peer: r.peer.address,
        file: r.file,
        bytes: r.bytes,
        size: r.size,
        durationMs: r.durationMs,
        outcome: r.outcome,
        ...(stored !== undefined ? { stored } : {}),
        tftp: { blksize: r.blksize, windowsize: r.windowsize, retransmits: r.retransmits, timeouts: r.timeouts, ...(r.pumpedAcks !== undefined ? { pumpedAcks: r.pumpedAcks } : {}) },
        ...(r.detail !== undefined ? { detail: r.detail } : {}),
      });
    }
  }

  /** Answers a request with an ERROR from the listening port and logs one line. */
  private refuse(peer: Remote, file: string, code: number, message: string, reason: string): void {
    this.d.listener.send(errorPacket(code, message), peer);
    this.d.log.info({ peer: `${peer.address}:${peer.port}`, file, outcome: 'refused', code, reason }, 'tftp request refused');
  }

  private release(key: string, transfer?: ReadTransfer | WriteTransfer): void {
    // a superseded transfer finishes after its successor took the key
    if (transfer && this.transfers.get(key)?.transfer !== transfer) return;
    if (this.transfers.delete(key)) this.clients.release(key.slice(0, key.lastIndexOf(':')));
    this.counters.active = this.transfers.size;
    if (this.transfers.size === 0) for (const fn of this.idle.splice(0)) fn();
  }

  /**
   * Stops accepting requests, ends every transfer in flight with an ERROR to
   * its client, and resolves when all transfer sockets are closed.
   */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.d.listener.close();
    }
    this.warnings.close();
    for (const t of this.transfers.values()) t.transfer?.abort('shutdown', 'Server shutting down');
    if (this.transfers.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }
}

function requestSignature(req: RequestPacket): string {
  return [req.opcode, req.filename, req.mode, ...req.options.map((o) => `${o.name}=${o.value}`)].join('\0');
}
