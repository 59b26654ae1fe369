/**
 * RFC 2347 option negotiation for RRQ/WRQ. Pure: given what the client asked
 * for and what this server (and this host's quirks) allows, decide what goes
 * into the OACK. Only options the client asked for and bootd accepts are
 * acknowledged; unknown or invalid ones are silently left out (RFC 2347: the
 * server omits options it does not support).
 */
import type { TftpOption } from './packet.js';

/** RFC 1350 default block size. */
export const DEFAULT_BLKSIZE = 512;
/** RFC 2348: valid blksize values are 8..65464. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/** RFC 7440 allows 1..65535; bootd grants at most 64 blocks in flight. */
export const MAX_WINDOWSIZE = 64;
/** RFC 2349: timeout is 1..255 seconds. */
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 255;
/** IPv4 (20) + UDP (8) + TFTP DATA header (4): what a block must leave room for in one frame. */
export const DATA_OVERHEAD_BYTES = 32;

export interface NegotiationLimits {
  /** Upper bound on blksize: the path MTU minus headers, or a per-host quirk. */
  readonly maxBlksize: number;
  /** Upper bound on windowsize; 1 means the option is never acknowledged. */
  readonly maxWindowsize: number;
}

export interface NegotiationInput {
  readonly options: readonly TftpOption[];
  /** RRQ: the size of what will be sent (null when unknown). WRQ: unused. */
  readonly size: number | null;
  readonly write: boolean;
  readonly limits: NegotiationLimits;
}

export interface Negotiated {
  readonly blksize: number;
  readonly windowsize: number;
  /** RFC 2349 timeout the client asked for, in ms; null when not negotiated. */
  readonly timeoutMs: number | null;
  /** WRQ: the size the client announced with tsize; null otherwise. */
  readonly announcedSize: number | null;
  /** Options for the OACK in the client's order and spelling; null means "send no OACK". */
  readonly oack: TftpOption[] | null;
}

/** Max blksize for a link MTU (RFC 2348 section "blksize": avoid IP fragmentation). */
export function blksizeForMtu(mtu: number): number {
  return Math.max(MIN_BLKSIZE, Math.min(MAX_BLKSIZE, mtu - DATA_OVERHEAD_BYTES));
}

/** Parses a decimal option value; rejects signs, blanks, exponents and absurd lengths. */
function parseUint(value: string): number | null {
  if (!/^[0-9]{1,10}$/.test(value.trim())) return null;
  return Number(value.trim());
}

export function negotiate(input: NegotiationInput): Negotiated {
  const { limits } = input;
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | null = null;
  let announcedSize: number | null = null;
  const oack: TftpOption[] = [];
  const seen = new Set<string>();

  for (const opt of input.options) {
    const name = opt.name.toLowerCase();
    if (seen.has(name)) continue; // first occurrence wins
    seen.add(name);
    const n = parseUint(opt.value);
    switch (name) {
      case 'blksize': // RFC 2348
        if (n === null || n < MIN_BLKSIZE) break;
        blksize = Math.min(n, MAX_BLKSIZE, Math.max(MIN_BLKSIZE, limits.maxBlksize));
        oack.push({ name: opt.name, value: String(blksize) });
        break;
      case 'tsize': // RFC 2349: RRQ sends 0 and gets the size; WRQ announces the size
        if (n === null) break;
        if (input.write) {
          announcedSize = n;
          oack.push({ name: opt.name, value: String(n) });
        } else if (input.size !== null && input.size > 0) {
          // An empty file gets no tsize: curl (7.x and 8.x) rejects "tsize 0" in an
          // OACK as invalid and aborts; without it every client just reads one empty block.
          oack.push({ name: opt.name, value: String(input.size) });
        }
        break;
      case 'timeout': // RFC 2349
        if (n === null || n < MIN_TIMEOUT_S || n > MAX_TIMEOUT_S) break;
        timeoutMs = n * 1000;
        oack.push({ name: opt.name, value: String(n) });
        break;
      case 'windowsize': // RFC 7440
        if (n === null || n < 1 || limits.maxWindowsize <= 1) break;
        windowsize = Math.min(n, MAX_WINDOWSIZE, limits.maxWindowsize);
        oack.push({ name: opt.name, value: String(windowsize) });
        break;
      default:
        break; // unknown options (multicast, rollover, utimeout...) are not acknowledged
    }
  }
  return { blksize, windowsize, timeoutMs, announcedSize, oack: oack.length > 0 ? oack : null };
}
