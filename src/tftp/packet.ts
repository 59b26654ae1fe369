/**
 * TFTP wire codec: RFC 1350 packets plus the RFC 2347 OACK. Pure: no I/O, no
 * logging, no clocks. `decodePacket` throws {@link TftpDecodeError} (with a
 * stable code) on malformed input; encoders throw plain errors only on
 * programmer bugs (values that can never be valid on the wire).
 */

/** RFC 1350 section 5 opcodes, RFC 2347 OACK. */
export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** RFC 1350 error codes, RFC 2347 code 8 (option negotiation refused). */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** One RFC 2347 option as sent: name keeps the client's case. */
export interface TftpOption {
  readonly name: string;
  readonly value: string;
}

export interface RequestPacket {
  readonly opcode: typeof Opcode.RRQ | typeof Opcode.WRQ;
  /** Raw file name, decoded byte-for-byte as latin1 so no byte is lost. */
  readonly filename: string;
  /** Transfer mode, lower-cased (RFC 1350: case-insensitive). */
  readonly mode: string;
  readonly options: readonly TftpOption[];
}
export interface DataPacket {
  readonly opcode: typeof Opcode.DATA;
  readonly block: number;
  readonly data: Buffer;
}
export interface AckPacket {
  readonly opcode: typeof Opcode.ACK;
  readonly block: number;
}
export interface ErrorPacket {
  readonly opcode: typeof Opcode.ERROR;
  readonly code: number;
  readonly message: string;
}
export interface OackPacket {
  readonly opcode: typeof Opcode.OACK;
  readonly options: readonly TftpOption[];
}
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type DecodeErrorCode =
  | 'ERR_TFTP_TRUNCATED'
  | 'ERR_TFTP_OPCODE'
  | 'ERR_TFTP_NO_NUL'
  | 'ERR_TFTP_OPTION_VALUE'
  | 'ERR_TFTP_TOO_LONG';

/** A packet that cannot be decoded. `code` is stable; the message is for logs. */
export class TftpDecodeError extends Error {
  constructor(
    readonly code: DecodeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TftpDecodeError';
  }
}

/**
 * RFC 2347 section "Packet Formats": a request with options must fit in 512
 * octets. Some clients send slightly more; we allow a little slack and refuse
 * beyond it so a hostile client cannot make us parse kilobytes of strings.
 */
export const MAX_REQUEST_BYTES = 1024;

/** Decodes one datagram. Throws TftpDecodeError; never returns a partial packet. */
export function decodePacket(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw new TftpDecodeError('ERR_TFTP_TRUNCATED', `packet of ${buf.length} bytes has no opcode`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return decodeRequest(opcode, buf);
    case Opcode.DATA:
      if (buf.length < 4) throw new TftpDecodeError('ERR_TFTP_TRUNCATED', 'DATA shorter than 4 bytes');
      return { opcode, block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.ACK:
      // RFC 1350: ACK is exactly 4 bytes; trailing bytes are tolerated (some
      // embedded clients pad), a short one is not.
      if (buf.length < 4) throw new TftpDecodeError('ERR_TFTP_TRUNCATED', 'ACK shorter than 4 bytes');
      return { opcode, block: buf.readUInt16BE(2) };
    case Opcode.ERROR: {
      if (buf.length < 4) throw new TftpDecodeError('ERR_TFTP_TRUNCATED', 'ERROR shorter than 4 bytes');
      // The message should end with NUL; clients that omit it still get understood.
      const end = buf.indexOf(0, 4);
      const message = buf.toString('latin1', 4, end < 0 ? buf.length : end);
      return { opcode, code: buf.readUInt16BE(2), message };
    }
    case Opcode.OACK:
      return { opcode, options: decodeOptions(splitStrings(buf, 2)) };
    default:
      throw new TftpDecodeError('ERR_TFTP_OPCODE', `unknown opcode ${opcode}`);
  }
}

function decodeRequest(opcode: typeof Opcode.RRQ | typeof Opcode.WRQ, buf: Buffer): RequestPacket {
  if (buf.length > MAX_REQUEST_BYTES) {
    throw new TftpDecodeError('ERR_TFTP_TOO_LONG', `request of ${buf.length} bytes exceeds ${MAX_REQUEST_BYTES}`);
  }
  const strings = splitStrings(buf, 2);
  const [filename, mode, ...rest] = strings;
  if (filename === undefined || mode === undefined) {
    throw new TftpDecodeError('ERR_TFTP_TRUNCATED', 'request lacks a file name or mode');
  }
  return { opcode, filename, mode: mode.toLowerCase(), options: decodeOptions(rest) };
}

/** Splits NUL-terminated strings from `offset`. Every string must be terminated. */
function splitStrings(buf: Buffer, offset: number): string[] {
  const out: string[] = [];
  let start = offset;
  while (start < buf.length) {
    const end = buf.indexOf(0, start);
    if (end < 0) throw new TftpDecodeError('ERR_TFTP_NO_NUL', `string at offset ${start} is not NUL-terminated`);
    out.push(buf.toString('latin1', start, end));
    start = end + 1;
  }
  return out;
}

function decodeOptions(strings: readonly string[]): TftpOption[] {
  if (strings.length % 2 !== 0) {
    throw new TftpDecodeError('ERR_TFTP_OPTION_VALUE', `option "${strings[strings.length - 1]}" has no value`);
  }
  const options: TftpOption[] = [];
  for (let i = 0; i < strings.length; i += 2) {
    const name = strings[i] as string;
    const value = strings[i + 1] as string;
    // RFC 2347 allows a trailing empty pair from some clients' padding; skip it.
    if (name === '' && value === '') continue;
    if (name === '') throw new TftpDecodeError('ERR_TFTP_OPTION_VALUE', 'option with an empty name');
    options.push({ name, value });
  }
  return options;
}

function cstrings(values: readonly string[]): Buffer[] {
  const out: Buffer[] = [];
  for (const v of values) {
    if (v.includes('\0')) throw new Error(`TFTP string may not contain NUL: ${JSON.stringify(v)}`);
    out.push(Buffer.from(v, 'latin1'), ZERO);
  }
  return out;
}

const ZERO = Buffer.alloc(1);

function header(opcode: number, second?: number): Buffer {
  const b = Buffer.allocUnsafe(second === undefined ? 2 : 4);
  b.writeUInt16BE(opcode, 0);
  if (second !== undefined) b.writeUInt16BE(second, 2);
  return b;
}

function checkBlock(block: number): void {
  if (!Number.isInteger(block) || block < 0 || block > 0xffff) throw new Error(`block number out of range: ${block}`);
}

/** Encodes any packet (tests, clients, error replies). Hot paths use {@link dataHeader}. */
export function encodePacket(p: TftpPacket): Buffer {
  switch (p.opcode) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return Buffer.concat([header(p.opcode), ...cstrings([p.filename, p.mode, ...p.options.flatMap((o) => [o.name, o.value])])]);
    case Opcode.DATA:
      checkBlock(p.block);
      return Buffer.concat([header(p.opcode, p.block), p.data]);
    case Opcode.ACK:
      checkBlock(p.block);
      return header(p.opcode, p.block);
    case Opcode.ERROR:
      checkBlock(p.code);
      return Buffer.concat([header(p.opcode, p.code), ...cstrings([p.message])]);
    case Opcode.OACK:
      return Buffer.concat([header(p.opcode), ...cstrings(p.options.flatMap((o) => [o.name, o.value]))]);
  }
}

/** The 4-byte DATA header for a block (RFC 1350 section 5); block is taken modulo 65536. */
export function dataHeader(block: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16BE(Opcode.DATA, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

export function errorPacket(code: number, message: string): Buffer {
  return encodePacket({ opcode: Opcode.ERROR, code, message });
}
