import { PUMP_ACKED, PUMP_ANSWERED, PUMP_SENT, PUMP_TOTAL, type AckPump, type BindOptions, type Remote, type UdpSocket, type UdpSocketFactory } from '../../src/net/udp.js';

export interface Delivery {
  readonly from: Remote;
  readonly to: Remote;
  readonly data: Buffer;
}

/**
 * An in-memory UDP network for state-machine and server tests. Datagrams are
 * delivered when the test calls `flush()` (or at once with `autoFlush`), and
 * a `filter` can drop or inspect them, so loss and reordering are scripted.
 */
export class MemoryNetwork implements UdpSocketFactory {
  private readonly sockets = new Map<string, MemorySocket>();
  private nextPort = 40000;
  readonly queue: Delivery[] = [];
  readonly log: Delivery[] = [];
  filter: (d: Delivery) => boolean = () => true;
  /** Connected sockets get an ACK pump that follows the rule of src/native/fastudp.c ("ACK pump"). */
  pumps = false;
  /** ACKs the pumps answered. */
  pumped = 0;

  async bind(opts: BindOptions): Promise<UdpSocket> {
    return this.bindSync(opts);
  }

  bindSync(opts: Pick<BindOptions, 'address' | 'port' | 'connect'>): MemorySocket {
    const address = opts.address === '0.0.0.0' ? '10.0.0.1' : opts.address;
    const port = opts.port === 0 ? this.nextPort++ : opts.port;
    const key = `${address}:${port}`;
    if (this.sockets.has(key)) throw Object.assign(new Error(`EADDRINUSE ${key}`), { code: 'EADDRINUSE' });
    const s = new MemorySocket(this, { address, port }, opts.connect);
    this.sockets.set(key, s);
    return s;
  }

  send(d: Delivery): void {
    this.log.push(d);
    this.queue.push(d);
  }

  unbind(s: MemorySocket): void {
    this.sockets.delete(`${s.addr.address}:${s.addr.port}`);
  }

  /** Delivers queued datagrams (and those their handlers send) until quiet or `max` deliveries. */
  flush(max = 1_000_000): number {
    let n = 0;
    while (this.queue.length > 0 && n < max) {
      const d = this.queue.shift() as Delivery;
      n++;
      if (!this.filter(d)) continue;
      if (d.to.address === '255.255.255.255') {
        // a limited broadcast reaches every socket on that port but the sender
        for (const s of this.sockets.values()) if (s.addr.port === d.to.port && s !== this.sockets.get(`${d.from.address}:${d.from.port}`)) s.deliver(d.data, d.from);
        continue;
      }
      const s = this.sockets.get(`${d.to.address}:${d.to.port}`);
      s?.deliver(d.data, d.from);
    }
    return n;
  }

  isOpen(addr: Remote): boolean {
    return this.sockets.has(`${addr.address}:${addr.port}`);
  }

  get openSockets(): number {
    return this.sockets.size;
  }
}

export class MemorySocket implements UdpSocket {
  private handlers: ((msg: Buffer, from: Remote) => void)[] = [];
  closed = false;
  pump?: (p: AckPump | null) => void;
  private pumping: AckPump | null = null;

  constructor(
    private readonly net: MemoryNetwork,
    readonly addr: Remote,
    private readonly peer?: Remote,
  ) {
    if (net.pumps && peer) this.pump = (p) => void (this.pumping = p);
  }

  /** The fastudp rule: an ACK of exactly SENT (mod 65536) while blocks remain gets the next window here. */
  private pumpAnswer(msg: Buffer): boolean {
    const p = this.pumping;
    if (!p || msg.length !== 4 || msg.readUInt16BE(0) !== 4) return false;
    const st = p.state;
    const sent = st[PUMP_SENT] as number;
    const total = st[PUMP_TOTAL] as number;
    if (sent <= (st[PUMP_ACKED] as number) || sent >= total || msg.readUInt16BE(2) !== (sent & 0xffff)) return false;
    const last = Math.min(sent + p.windowsize, total);
    for (let b = sent + 1; b <= last; b++) {
      const start = Math.min((b - 1) * p.blksize, p.file.length);
      this.send([Buffer.from([0, 3, (b >> 8) & 0xff, b & 0xff]), p.file.subarray(start, Math.min(start + p.blksize, p.file.length))]);
    }
    st[PUMP_ACKED] = sent;
    st[PUMP_SENT] = last;
    st[PUMP_ANSWERED] = (st[PUMP_ANSWERED] as number) + 1;
    this.net.pumped++;
    return true;
  }

  send(data: Buffer | readonly Buffer[], to?: Remote): void {
    if (this.closed) return;
    const dest = to ?? this.peer;
    if (!dest) throw new Error('send without destination on an unconnected socket');
    const buf = Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.concat(data as Buffer[]);
    this.net.send({ from: this.addr, to: dest, data: buf });
  }
  onMessage(handler: (msg: Buffer, from: Remote) => void): void {
    this.handlers.push(handler);
  }
  onError(): void {}
  local(): Remote {
    return this.addr;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.net.unbind(this);
  }
  deliver(msg: Buffer, from: Remote): void {
    if (this.closed) return;
    // a connected socket only hears its peer, as the kernel does
    if (this.peer && (this.peer.address !== from.address || this.peer.port !== from.port)) return;
    if (this.pumpAnswer(msg)) return;
    for (const h of this.handlers) h(msg, from);
  }
}
