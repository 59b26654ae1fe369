/**
 * Transfer sockets on the fastudp addon (src/native/fastudp.c): the same
 * UdpSocket interface, without node:dgram's per-datagram allocations, rinfo
 * objects and send requests (docs/performance.md, "Lock-step on a clean link").
 *
 * Only connected IPv4 sockets (a transfer's own TID) go native; everything
 * else, and everything when the addon was not built, goes to the fallback
 * factory. Received datagrams land in one Buffer per socket that is reused:
 * a socket bound with `reusedMessages` hands its handler a view that is valid
 * only until the handler returns (the read transfer parses an ACK at once);
 * without it each message is copied, as node:dgram does.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AckPump, BindOptions, Remote, UdpSocket, UdpSocketFactory } from './udp.js';

export interface FastUdp {
  open(bindAddr: string, peerAddr: string, peerPort: number, recvBuf: Buffer, onDatagram: (n: number) => void): [unknown, string, number];
  send(handle: unknown, a: Buffer, b?: Buffer): number;
  close(handle: unknown): void;
  /** Microseconds a socket keeps polling for its peer's answer after a datagram (0: off). Process-wide. */
  configure(busyPollUs: number): void;
  /** Starts (or with file null, stops) answering in-order ACKs (see AckPump in udp.ts). */
  pump(handle: unknown, file: Buffer | null, blksize?: number, windowsize?: number, state?: Int32Array): void;
  /** Installs the ARP entry ip -> mac on ifname (SIOCSARP); 0, or the errno. */
  arpSet(ifname: string, ip: string, mac: string): number;
  /** Datagrams from unknown transfer IDs so far (answered with ERROR 5, or dropped if they were ERRORs). */
  unknownTids(): number;
}

/** Largest UDP payload over IPv4 (65535 - 20 - 8). */
const MAX_DATAGRAM = 65_507;

const CANDIDATES = ['../native/fastudp.node', '../../dist/native/fastudp.node'];

let loaded: { addon: FastUdp | null; reason?: string } | undefined;

/** The addon, or null with the reason when it is not built or does not load (looked up once). */
export function loadFastUdp(): { addon: FastUdp | null; reason?: string } {
  loaded ??= find();
  return loaded;
}

function find(): { addon: FastUdp | null; reason?: string } {
  const require = createRequire(import.meta.url);
  for (const rel of CANDIDATES) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(file)) continue;
    try {
      return { addon: require(file) as FastUdp };
    } catch (err) {
      return { addon: null, reason: `${file}: ${(err as Error).message}` };
    }
  }
  return { addon: null, reason: `not built (npm run build compiles ${CANDIDATES[1]})` };
}

class NativeUdpSocket implements UdpSocket {
  private messageHandler: (msg: Buffer, from: Remote) => void = () => {};
  private errorHandler: (err: Error) => void = () => {};
  private closed = false;
  private readonly handle: unknown;
  private readonly localAddr: Remote;
  /** Views of the receive buffer by length, so an ACK costs no allocation. */
  private readonly views = new Map<number, Buffer>();

  constructor(
    private readonly addon: FastUdp,
    bindAddr: string,
    private readonly peer: Remote,
    private readonly recv: Buffer,
    private readonly reuse: boolean,
  ) {
    const [handle, address, port] = addon.open(bindAddr, peer.address, peer.port, recv, (n) => this.onDatagram(n));
    this.handle = handle;
    this.localAddr = { address, port };
  }

  private onDatagram(n: number): void {
    if (this.closed) return;
    if (n < 0) {
      this.errorHandler(Object.assign(new Error(`recv: errno ${-n}`), { errno: -n }));
      return;
    }
    let msg: Buffer;
    if (!this.reuse) msg = Buffer.from(this.recv.subarray(0, n));
    else {
      msg = this.views.get(n) ?? this.recv.subarray(0, n);
      if (n <= 16 && !this.views.has(n)) this.views.set(n, msg);
    }
    this.messageHandler(msg, this.peer);
  }

  send(data: Buffer | readonly Buffer[], _to?: Remote): void {
    if (this.closed) return;
    let err: number;
    if (Buffer.isBuffer(data)) err = this.addon.send(this.handle, data);
    else if (data.length <= 2) err = this.addon.send(this.handle, data[0] ?? Buffer.alloc(0), data[1]);
    else err = this.addon.send(this.handle, Buffer.concat(data as Buffer[]));
    if (err !== 0) this.errorHandler(Object.assign(new Error(`send: errno ${err}`), { errno: err }));
  }

  onMessage(handler: (msg: Buffer, from: Remote) => void): void {
    this.messageHandler = handler;
  }

  pump(p: AckPump | null): void {
    if (this.closed) return;
    if (p === null) this.addon.pump(this.handle, null);
    else this.addon.pump(this.handle, p.file, p.blksize, p.windowsize, p.state);
  }

  onError(handler: (err: Error) => void): void {
    this.errorHandler = handler;
  }

  local(): Remote {
    return this.localAddr;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.close(this.handle);
  }
}

const isV4 = (a: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(a);

/**
 * A factory that binds connected IPv4 sockets through the addon and all
 * others through `fallback`. Without the addon it is `fallback` itself.
 */
export function fastUdp(fallback: UdpSocketFactory, addon: FastUdp | null = loadFastUdp().addon): UdpSocketFactory {
  if (!addon) return fallback;
  return {
    bind(opts: BindOptions): Promise<UdpSocket> {
      const c = opts.connect;
      if (!c || opts.device || opts.broadcast || opts.reuseAddr || opts.port !== 0 || opts.recvBufferBytes || opts.sendBufferBytes || !isV4(opts.address) || !isV4(c.address)) return fallback.bind(opts);
      try {
        return Promise.resolve(new NativeUdpSocket(addon, opts.address, c, Buffer.allocUnsafe(Math.min(opts.maxMessageBytes ?? MAX_DATAGRAM, MAX_DATAGRAM)), opts.reusedMessages === true));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    },
  };
}
