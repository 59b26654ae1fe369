/**
 * BOOTP/DHCP wire codec (RFC 951, RFC 2131, RFC 2132), with option overload
 * (option 52) and long options split and joined (RFC 3396) handled here and
 * nowhere else. Pure: no I/O, no logging, no clock.
 *
 * Options are kept as raw bytes, in order of first appearance, with every
 * instance of a code joined (RFC 3396 section 5). Typed access goes through
 * options.ts. An option bootd does not know survives decode and encode with
 * its bytes unchanged.
 */
import { readIpv4, writeIpv4 } from '../net/ipv4.js';
import { Opt } from './options.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** RFC 2131 section 3: 99.130.83.99. */
export const MAGIC_COOKIE = 0x63825363;
/** Fixed header (236) plus the cookie. */
export const HEADER_BYTES = 240;
/** RFC 1542 section 3.4: BOOTP packets are at least 300 bytes; some relays and ROMs insist. */
export const MIN_PACKET_BYTES = 300;
/** RFC 2131 section 2: a client must accept 576-byte IP datagrams, so 548 bytes of DHCP. */
export const DEFAULT_MAX_BYTES = 576 - 20 - 8;
/** RFC 2131 section 2: the broadcast bit of `flags`. */
export const FLAG_BROADCAST = 0x8000;

const SNAME_OFFSET = 44;
const SNAME_BYTES = 64;
const FILE_OFFSET = 108;
const FILE_BYTES = 128;

export interface DhcpOption {
  readonly code: number;
  readonly data: Buffer;
}

export interface DhcpPacket {
  readonly op: typeof BOOTREQUEST | typeof BOOTREPLY;
  readonly htype: number;
  readonly hlen: number;
  readonly hops: number;
  readonly xid: number;
  readonly secs: number;
  readonly flags: number;
  readonly ciaddr: string;
  readonly yiaddr: string;
  readonly siaddr: string;
  readonly giaddr: string;
  /** The 16-byte chaddr field; the hardware address is its first `hlen` bytes. */
  readonly chaddr: Buffer;
  /** Server host name; empty when the field carries options (overload). */
  readonly sname: string;
  /** Boot file name; empty when the field carries options (overload). */
  readonly file: string;
  readonly options: readonly DhcpOption[];
}

export type DhcpDecodeErrorCode = 'ERR_DHCP_TRUNCATED' | 'ERR_DHCP_OP' | 'ERR_DHCP_HLEN' | 'ERR_DHCP_COOKIE' | 'ERR_DHCP_OPTION_LENGTH' | 'ERR_DHCP_OVERLOAD';

export class DhcpDecodeError extends Error {
  constructor(
    readonly code: DhcpDecodeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DhcpDecodeError';
  }
}

/** Reads one options area into `into` (code -> list of parts); returns the overload value if seen. */
function readOptionArea(buf: Buffer, start: number, end: number, into: Map<number, Buffer[]>, where: string): void {
  let i = start;
  while (i < end) {
    const code = buf[i] as number;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return;
    if (i + 1 >= end) throw new DhcpDecodeError('ERR_DHCP_OPTION_LENGTH', `option ${code} in ${where} has no length byte`);
    const len = buf[i + 1] as number;
    if (i + 2 + len > end) throw new DhcpDecodeError('ERR_DHCP_OPTION_LENGTH', `option ${code} in ${where} claims ${len} bytes, ${end - i - 2} left`);
    const parts = into.get(code);
    const data = buf.subarray(i + 2, i + 2 + len);
    if (parts) parts.push(data);
    else into.set(code, [data]);
    i += 2 + len;
  }
  // RFC 2131 says options end with END; clients that stop at the end of the packet are accepted.
}

function cstring(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('latin1', start, end < 0 || end > start + len ? start + len : end);
}

/**
 * Decodes a BOOTP/DHCP message. Throws DhcpDecodeError; never returns a
 * partial packet. The packet's buffers (option values, chaddr) are views of
 * one copy of the datagram, made here: the caller's buffer may be reused
 * (a receive ring), and one copy costs less than one per option.
 */
export function decodeDhcp(datagram: Buffer): DhcpPacket {
  if (datagram.length < HEADER_BYTES) throw new DhcpDecodeError('ERR_DHCP_TRUNCATED', `packet of ${datagram.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  const op = datagram[0] as number;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpDecodeError('ERR_DHCP_OP', `op ${op} is neither BOOTREQUEST nor BOOTREPLY`);
  const hlen = datagram[2] as number;
  if (hlen > 16) throw new DhcpDecodeError('ERR_DHCP_HLEN', `hlen ${hlen} exceeds the 16-byte chaddr field`);
  if (datagram.readUInt32BE(236) !== MAGIC_COOKIE) throw new DhcpDecodeError('ERR_DHCP_COOKIE', 'no DHCP magic cookie (plain BOOTP is not served)');

  const buf = Buffer.from(datagram);
  const parts = new Map<number, Buffer[]>();
  readOptionArea(buf, HEADER_BYTES, buf.length, parts, 'options');
  // RFC 2131 section 4.1: with option 52, `file` then `sname` carry more options.
  const overloadParts = parts.get(Opt.OVERLOAD);
  let overload = 0;
  if (overloadParts) {
    const ov = Buffer.concat(overloadParts);
    if (ov.length !== 1 || (ov[0] as number) < 1 || (ov[0] as number) > 3) throw new DhcpDecodeError('ERR_DHCP_OVERLOAD', `option 52 must be one byte of 1, 2 or 3`);
    overload = ov[0] as number;
    if (overload & 1) readOptionArea(buf, FILE_OFFSET, FILE_OFFSET + FILE_BYTES, parts, 'file');
    if (overload & 2) readOptionArea(buf, SNAME_OFFSET, SNAME_OFFSET + SNAME_BYTES, parts, 'sname');
  }
  const options: DhcpOption[] = [];
  for (const [code, ps] of parts) options.push({ code, data: ps.length === 1 ? (ps[0] as Buffer) : Buffer.concat(ps) });

  return {
    op,
    htype: buf[1] as number,
    hlen,
    hops: buf[3] as number,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: readIpv4(buf, 12),
    yiaddr: readIpv4(buf, 16),
    siaddr: readIpv4(buf, 20),
    giaddr: readIpv4(buf, 24),
    chaddr: buf.subarray(28, 44),
    sname: overload & 2 ? '' : cstring(buf, SNAME_OFFSET, SNAME_BYTES),
    file: overload & 1 ? '' : cstring(buf, FILE_OFFSET, FILE_BYTES),
    options,
  };
}

export interface EncodeOptions {
  /** Largest DHCP message the client accepts (RFC 2132 option 57 less IP/UDP headers, at least 548). */
  readonly maxBytes?: number;
}

/**
 * Encodes a packet. Options go in the options field; when they do not fit in
 * `maxBytes` and `file`/`sname` are empty, the rest overflows into them with
 * option 52 (RFC 2131 section 4.1). Throws when they cannot fit at all (the
 * policy must send fewer options) or a field value is invalid.
 */
export function encodeDhcp(p: DhcpPacket, opts: EncodeOptions = {}): Buffer {
  const maxBytes = Math.max(opts.maxBytes ?? Infinity, DEFAULT_MAX_BYTES);
  const head = Buffer.alloc(HEADER_BYTES);
  head[0] = p.op;
  head[1] = p.htype;
  head[2] = p.hlen;
  head[3] = p.hops;
  head.writeUInt32BE(p.xid >>> 0, 4);
  head.writeUInt16BE(p.secs, 8);
  head.writeUInt16BE(p.flags, 10);
  writeIpv4(head, 12, p.ciaddr);
  writeIpv4(head, 16, p.yiaddr);
  writeIpv4(head, 20, p.siaddr);
  writeIpv4(head, 24, p.giaddr);
  if (p.chaddr.length > 16) throw new Error('chaddr longer than 16 bytes');
  p.chaddr.copy(head, 28);
  const sname = Buffer.from(p.sname, 'latin1');
  const file = Buffer.from(p.file, 'latin1');
  if (sname.length > SNAME_BYTES - 1 || file.length > FILE_BYTES - 1) throw new Error('sname or file too long for its field');
  sname.copy(head, SNAME_OFFSET);
  file.copy(head, FILE_OFFSET);
  head.writeUInt32BE(MAGIC_COOKIE, 236);

  // options + END fit in the options field: the common case, written straight into one buffer
  let optionsBytes = 0;
  for (const o of p.options) if (o.code !== Opt.OVERLOAD) optionsBytes += tlvBytes(o);
  if (HEADER_BYTES + optionsBytes + 1 <= maxBytes) {
    const body = Buffer.alloc(Math.max(HEADER_BYTES + optionsBytes + 1, MIN_PACKET_BYTES)); // zeroed: the padding
    head.copy(body, 0);
    let at = HEADER_BYTES;
    for (const o of p.options) if (o.code !== Opt.OVERLOAD) at = writeTlv(o, body, at);
    body[at] = Opt.END;
    return body;
  }
  const tlvs = p.options.filter((o) => o.code !== Opt.OVERLOAD).map((o) => {
    const t = Buffer.alloc(tlvBytes(o));
    writeTlv(o, t, 0);
    return t;
  });
  return encodeOverloaded(head, tlvs, maxBytes, file.length === 0, sname.length === 0);
}

/** Bytes an option takes on the wire, split into 255-byte instances (RFC 3396 section 5): 2 per instance, 2 for an empty one. */
function tlvBytes(o: DhcpOption): number {
  if (o.code === Opt.PAD || o.code === Opt.END) throw new Error(`option ${o.code} is not a value option`);
  return o.data.length === 0 ? 2 : o.data.length + 2 * Math.ceil(o.data.length / 255);
}

/** Writes an option's instances (code, length, at most 255 bytes each) at `at`; returns the offset after them. */
function writeTlv(o: DhcpOption, into: Buffer, at: number): number {
  if (o.data.length === 0) {
    into[at] = o.code;
    into[at + 1] = 0;
    return at + 2;
  }
  for (let off = 0; off < o.data.length; off += 255) {
    const n = Math.min(255, o.data.length - off);
    into[at] = o.code;
    into[at + 1] = n;
    o.data.copy(into, at + 2, off, off + n);
    at += 2 + n;
  }
  return at;
}

/** Places whole TLVs into options (after option 52), then `file`, then `sname`. */
function encodeOverloaded(head: Buffer, tlvs: Buffer[], maxBytes: number, fileFree: boolean, snameFree: boolean): Buffer {
  interface Area {
    room: number;
    readonly items: Buffer[];
    readonly bit: number;
    readonly offset: number;
  }
  const areas: Area[] = [{ room: maxBytes - HEADER_BYTES - 3 - 1, items: [], bit: 0, offset: -1 }]; // room for option 52 and END
  if (fileFree) areas.push({ room: FILE_BYTES - 1, items: [], bit: 1, offset: FILE_OFFSET });
  if (snameFree) areas.push({ room: SNAME_BYTES - 1, items: [], bit: 2, offset: SNAME_OFFSET });
  let a = 0;
  for (const t of tlvs) {
    while (a < areas.length && (areas[a] as Area).room < t.length) a++;
    const area = areas[a];
    if (!area) throw new Error(`DHCP options do not fit in ${maxBytes} bytes, even with overload`);
    area.items.push(t);
    area.room -= t.length;
  }
  const out = Buffer.from(head);
  let overload = 0;
  for (const area of areas.slice(1)) {
    if (area.items.length === 0) continue;
    overload |= area.bit;
    out.fill(0, area.offset, area.offset + (area.bit === 1 ? FILE_BYTES : SNAME_BYTES));
    Buffer.concat([...area.items, Buffer.from([Opt.END])]).copy(out, area.offset);
  }
  const body = Buffer.concat([out, Buffer.from([Opt.OVERLOAD, 1, overload]), ...(areas[0] as Area).items, Buffer.from([Opt.END])]);
  return body.length >= MIN_PACKET_BYTES ? body : Buffer.concat([body, Buffer.alloc(MIN_PACKET_BYTES - body.length)]);
}

export interface ClientRequest {
  /** Hardware address as six bytes or `52:54:00:12:34:56`. */
  readonly mac: Buffer | string;
  readonly xid: number;
  readonly options: readonly DhcpOption[];
  readonly flags?: number;
  readonly ciaddr?: string;
  readonly giaddr?: string;
  readonly hops?: number;
}

/** A BOOTREQUEST from an Ethernet client (the probe, test clients), with every other field zero. */
export function clientRequest(r: ClientRequest): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  (typeof r.mac === 'string' ? Buffer.from(r.mac.replace(/:/g, ''), 'hex') : r.mac).copy(chaddr, 0, 0, 6);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: r.hops ?? 0,
    xid: r.xid >>> 0,
    secs: 0,
    flags: r.flags ?? 0,
    ciaddr: r.ciaddr ?? '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: r.giaddr ?? '0.0.0.0',
    chaddr,
    sname: '',
    file: '',
    options: r.options,
  };
}

/** The first value of an option, or undefined. */
export function getOption(p: Pick<DhcpPacket, 'options'>, code: number): Buffer | undefined {
  return p.options.find((o) => o.code === code)?.data;
}

/** The client's hardware address as lower-case colon-separated hex (`52:54:00:e2:e0:01`). */
export function hardwareAddress(p: Pick<DhcpPacket, 'chaddr' | 'hlen'>): string {
  return [...p.chaddr.subarray(0, p.hlen)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
