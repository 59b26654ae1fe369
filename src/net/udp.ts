/**
 * A small UDP socket interface so that servers accept pre-bound sockets and
 * tests can swap in an in-memory network. The Node implementation wraps
 * node:dgram; send errors (EHOSTUNREACH and friends) are reported to the
 * error handler, never thrown into the event loop.
 */
import dgram from 'node:dgram';
import { bindToInterface } from './bind-device.js';

export interface Remote {
  readonly address: string;
  readonly port: number;
}

export interface UdpSocket {
  /** Sends to `to`, or to the connected peer when `to` is omitted. Never throws. */
  send(data: Buffer | readonly Buffer[], to?: Remote): void;
  onMessage(handler: (msg: Buffer, from: Remote) => void): void;
  onError(handler: (err: Error) => void): void;
  local(): Remote;
  close(): void;
  /**
   * Only on transports that have one (the fastudp addon): from now on, answer
   * each ACK of a read transfer that acknowledges the whole outstanding
   * window by sending the next window, without handing it to the message
   * handler. null stops it. See AckPump.
   */
  pump?(p: AckPump | null): void;
}

/** Indices into AckPump.state. Block numbers are absolute (from 1), as in src/tftp/session.ts. */
export const PUMP_ACKED = 0;
export const PUMP_SENT = 1;
export const PUMP_TOTAL = 2;
export const PUMP_ANSWERED = 3;

/**
 * A read transfer's in-order case, done by the socket (src/native/fastudp.c,
 * "ACK pump"). The state is shared: the socket advances ACKED and SENT and
 * counts ANSWERED for each ACK it answers; the owner reads them before it
 * handles any datagram or timer and writes ACKED and SENT back after it has
 * sent anything itself. Create it as `new Int32Array(new ArrayBuffer(16))`:
 * an ArrayBuffer's bytes never move, a small typed array's own may.
 */
export interface AckPump {
  /** The whole file: block n is bytes [(n-1)*blksize, n*blksize). */
  readonly file: Buffer;
  readonly blksize: number;
  readonly windowsize: number;
  readonly state: Int32Array;
}

export interface BindOptions {
  readonly address: string;
  readonly port: number;
  /** Connect to this peer (a TFTP transfer ID): the kernel then drops other sources. */
  readonly connect?: Remote;
  /** Confine the socket to this interface (SO_BINDTOIFINDEX), so a DHCP socket on 0.0.0.0:67 hears one interface only. */
  readonly device?: string;
  readonly reuseAddr?: boolean;
  readonly broadcast?: boolean;
  readonly recvBufferBytes?: number;
  readonly sendBufferBytes?: number;
  /**
   * The message handler never keeps a message past its return, so the socket
   * may hand it a reused buffer (the fastudp transport does; node:dgram ignores it).
   */
  readonly reusedMessages?: boolean;
  /** Longest datagram the socket needs to receive whole (longer ones may be cut); a hint for buffer sizes. */
  readonly maxMessageBytes?: number;
}

/**
 * A socket that can no longer receive (closed underneath us, or a receive
 * error that is not about one datagram): the server that listens on it
 * cannot go on. Send errors and ICMP-caused errors are never this.
 */
export class SocketLostError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SocketLostError';
  }
}

/** Receive errors that concern one datagram or a passing shortage, not the socket. */
const TRANSIENT_RECV = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR', 'ENOBUFS', 'ENOMEM', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EMSGSIZE', 'ETIMEDOUT']);

export interface UdpSocketFactory {
  bind(opts: BindOptions): Promise<UdpSocket>;
}

class NodeUdpSocket implements UdpSocket {
  private errorHandler: (err: Error) => void = () => {};
  private closed = false;

  constructor(
    private readonly sock: dgram.Socket,
    private readonly connected: boolean,
  ) {
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.syscall === 'recvmsg' && !TRANSIENT_RECV.has(err.code ?? '')) this.errorHandler(new SocketLostError(`receive failed: ${err.message}`, err));
      else this.errorHandler(err);
    });
    // closed by anyone but us (the runtime after a fatal error): nothing will be received again
    sock.on('close', () => {
      if (!this.closed) this.errorHandler(new SocketLostError('the socket was closed underneath bootd'));
    });
  }

  send(data: Buffer | readonly Buffer[], to?: Remote): void {
    if (this.closed) return;
    try {
      const msg = data as Buffer | Buffer[];
      if (to === undefined || this.connected) this.sock.send(msg);
      else this.sock.send(msg, to.port, to.address);
    } catch (err) {
      this.errorHandler(err as Error);
    }
  }

  onMessage(handler: (msg: Buffer, from: Remote) => void): void {
    this.sock.on('message', handler);
  }

  onError(handler: (err: Error) => void): void {
    this.errorHandler = handler;
  }

  local(): Remote {
    const a = this.sock.address();
    return { address: a.address, port: a.port };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.sock.close();
    } catch {
      // already closed by the runtime
    }
  }
}

/**
 * A socket whose sends may all be pointed at one fixed peer. The DHCP
 * warm-up's scratch server sends its replies (broadcasts, relay unicasts) to
 * its scratch client on 127.0.0.1 this way; the real DHCP socket is the same
 * class with no route, so both servers hold one type in their socket field
 * (see src/dhcp/warmup.ts). The route is two plain fields for the same reason.
 */
export class RoutedSocket implements UdpSocket {
  private readonly routeAddress: string;
  private readonly routePort: number;

  constructor(
    private readonly inner: UdpSocket,
    route?: Remote,
  ) {
    this.routeAddress = route?.address ?? '';
    this.routePort = route?.port ?? 0;
  }

  send(data: Buffer | readonly Buffer[], to?: Remote): void {
    if (this.routePort !== 0) this.inner.send(data, { address: this.routeAddress, port: this.routePort });
    else this.inner.send(data, to);
  }

  onMessage(handler: (msg: Buffer, from: Remote) => void): void {
    this.inner.onMessage(handler);
  }

  onError(handler: (err: Error) => void): void {
    this.inner.onError(handler);
  }

  local(): Remote {
    return this.inner.local();
  }

  close(): void {
    this.inner.close();
  }
}

export const nodeUdp: UdpSocketFactory = {
  bind(opts) {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({
        type: 'udp4',
        reuseAddr: opts.reuseAddr ?? false,
        ...(opts.recvBufferBytes ? { recvBufferSize: opts.recvBufferBytes } : {}),
        ...(opts.sendBufferBytes ? { sendBufferSize: opts.sendBufferBytes } : {}),
      });
      const fail = (err: Error): void => {
        try {
          sock.close();
        } catch {
          /* not open */
        }
        reject(err);
      };
      sock.once('error', fail);
      sock.bind({ address: opts.address, port: opts.port, exclusive: true }, () => {
        try {
          if (opts.device) bindToInterface(sock, opts.device);
          if (opts.broadcast) sock.setBroadcast(true);
        } catch (err) {
          fail(err as Error);
          return;
        }
        const done = (): void => {
          sock.off('error', fail);
          resolve(new NodeUdpSocket(sock, opts.connect !== undefined));
        };
        if (opts.connect) sock.connect(opts.connect.port, opts.connect.address, done);
        else done();
      });
    });
  },
};
