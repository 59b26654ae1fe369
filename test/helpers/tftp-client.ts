import type { Remote, UdpSocket } from '../../src/net/udp.js';
import { Opcode, decodePacket, encodePacket, type TftpOption } from '../../src/tftp/packet.js';

/**
 * A minimal RFC 1350/2347/7440 download client for tests over any UdpSocket
 * (memory or real). Acknowledges each window's last block, and on a gap the
 * last block received in order, as RFC 7440 section 4 describes.
 */
export class TestClient {
  readonly chunks: Buffer[] = [];
  oack: Record<string, string> | null = null;
  error: { code: number; message: string } | null = null;
  done = false;
  serverTid: Remote | null = null;
  acksSent = 0;
  /** false: behave like EDK2's size probe, which reads the OACK and does not acknowledge it. */
  ackOack = true;
  dataSeen = 0;
  private blksize = 512;
  private windowsize = 1;
  private received = 0;
  private sinceAck = 0;

  constructor(
    private readonly sock: UdpSocket,
    private readonly server: Remote,
    /** Drop incoming DATA when this says so (scripted loss on the client side). */
    private readonly dropData: (block: number) => boolean = () => false,
  ) {
    sock.onMessage((msg, from) => this.onMessage(msg, from));
  }

  request(file: string, options: TftpOption[] = [], mode = 'octet', opcode: 1 | 2 = Opcode.RRQ): void {
    for (const o of options) {
      if (o.name === 'blksize') this.blksize = Number(o.value);
      if (o.name === 'windowsize') this.windowsize = Number(o.value);
    }
    this.sock.send(encodePacket({ opcode, filename: file, mode, options }), this.server);
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Re-sends the last ACK, as a client does on its own timeout. */
  reack(): void {
    if (this.serverTid) this.ack(this.received & 0xffff);
  }

  sendRaw(buf: Buffer): void {
    this.sock.send(buf, this.serverTid ?? this.server);
  }

  private ack(block: number): void {
    if (!this.serverTid) return;
    this.acksSent++;
    this.sinceAck = 0;
    this.sock.send(encodePacket({ opcode: Opcode.ACK, block }), this.serverTid);
  }

  private onMessage(msg: Buffer, from: Remote): void {
    if (this.done) return;
    if (this.serverTid && (from.port !== this.serverTid.port || from.address !== this.serverTid.address)) return;
    const p = decodePacket(msg);
    this.serverTid ??= from;
    if (p.opcode === Opcode.ERROR) {
      this.error = { code: p.code, message: p.message };
      this.done = true;
    } else if (p.opcode === Opcode.OACK) {
      if (this.received > 0) return;
      this.oack = Object.fromEntries(p.options.map((o) => [o.name.toLowerCase(), o.value]));
      this.blksize = Number(this.oack.blksize ?? 512);
      this.windowsize = Number(this.oack.windowsize ?? 1);
      if (this.oack.blksize === undefined) this.blksize = 512;
      if (this.ackOack) this.ack(0);
    } else if (p.opcode === Opcode.DATA) {
      if (this.oack === null && this.received === 0 && this.dataSeen === 0) {
        // no OACK: the server ignored our options (RFC 2347), back to RFC 1350 defaults
        this.blksize = 512;
        this.windowsize = 1;
      }
      this.dataSeen++;
      if (this.dropData(p.block)) return;
      const expected = (this.received + 1) & 0xffff;
      if (p.block !== expected) {
        this.ack(this.received & 0xffff); // gap or duplicate: tell the sender where we are
        return;
      }
      this.chunks.push(Buffer.from(p.data));
      this.received++;
      this.sinceAck++;
      if (p.data.length < this.blksize) {
        this.ack(p.block);
        this.done = true;
      } else if (this.sinceAck >= this.windowsize) this.ack(p.block);
    }
  }
}
