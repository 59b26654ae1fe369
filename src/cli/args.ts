/**
 * Parsers of command-line values: each turns one flag's text into a typed
 * value or a clear InvalidArgumentError. Shared by the commands and by the
 * appliance config file loader (the same rules for both).
 */
import { InvalidArgumentError } from 'commander';
import { kernelArgsField } from '../config/fields.js';
import { parseImageRef } from '../hosts/schema.js';
import type { ImageRef } from '../hosts/types.js';
import { parseIpv4 } from '../net/ipv4.js';

export function int(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

export function ipv4(value: string): string {
  if (parseIpv4(value) === null) {
    throw new InvalidArgumentError(`expected an IPv4 address such as 0.0.0.0 or 127.0.0.1, got "${value}"`);
  }
  return value;
}

export function ipRange(value: string): [string, string] {
  const [a, b, ...rest] = value.split('-');
  const sa = a === undefined ? null : parseIpv4(a);
  const sb = b === undefined ? null : parseIpv4(b);
  if (rest.length > 0 || sa === null || sb === null || sb < sa) {
    throw new InvalidArgumentError(`expected START-END such as 198.18.0.100-198.18.0.199, got "${value}"`);
  }
  return [a as string, b as string];
}

export interface RelaySubnetArg {
  readonly network: string;
  readonly mask: string;
  readonly start: string;
  readonly end: string;
  readonly router?: string;
}

/** NETWORK/PREFIX=START-END[@ROUTER], e.g. 198.18.5.0/24=198.18.5.100-198.18.5.150@198.18.5.1 */
export function relaySubnet(value: string, prev: RelaySubnetArg[]): RelaySubnetArg[] {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})=(\d+\.\d+\.\d+\.\d+)-(\d+\.\d+\.\d+\.\d+)(?:@(\d+\.\d+\.\d+\.\d+))?$/.exec(value);
  const bad = (): never => {
    throw new InvalidArgumentError(`expected NETWORK/PREFIX=START-END[@ROUTER] such as 198.18.5.0/24=198.18.5.100-198.18.5.150@198.18.5.1, got "${value}"`);
  };
  if (!m) return bad();
  const prefix = Number(m[2]);
  const [net, start, end] = [m[1], m[3], m[4]].map((a) => parseIpv4(a as string));
  if (prefix < 8 || prefix > 30 || net === null || start === null || end === null || net === undefined || start === undefined || end === undefined || end < start) return bad();
  if (m[5] !== undefined && parseIpv4(m[5]) === null) return bad();
  const maskNum = (0xffffffff << (32 - prefix)) >>> 0;
  if (((start & maskNum) >>> 0) !== ((net & maskNum) >>> 0) || ((end & maskNum) >>> 0) !== ((net & maskNum) >>> 0)) {
    throw new InvalidArgumentError(`range ${m[3]}-${m[4]} is not inside ${m[1]}/${prefix} in "${value}"`);
  }
  const mask = [24, 16, 8, 0].map((s) => (maskNum >>> s) & 255).join('.');
  return [...prev, { network: m[1] as string, mask, start: m[3] as string, end: m[4] as string, ...(m[5] ? { router: m[5] } : {}) }];
}

export function portRange(value: string): { first: number; last: number } {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(value);
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (!m || first < 1 || last > 65535 || last < first) throw new InvalidArgumentError(`expected FIRST-LAST UDP ports such as 1070-1099, got "${value}"`);
  return { first, last };
}

export function imageRef(value: string): ImageRef {
  const ref = parseImageRef(value);
  if (ref === null) throw new InvalidArgumentError(`expected an image like bee or bee@<version>, got "${value}"`);
  return ref;
}

export function kernelArgList(value: string): string[] {
  const r = kernelArgsField.safeParse(value);
  if (!r.success) throw new InvalidArgumentError(`${r.error.issues[0]?.message ?? 'invalid kernel arguments'}, got "${value}"`);
  return r.data;
}

export function reservation(value: string, prev: Map<string, string>): Map<string, string> {
  const m = /^([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})=(\S+)$/.exec(value);
  if (!m || parseIpv4(m[2] as string) === null) throw new InvalidArgumentError(`expected MAC=IP such as 52:54:00:12:34:56=198.18.0.20, got "${value}"`);
  return new Map(prev).set((m[1] as string).toLowerCase(), m[2] as string);
}


/** ADDR:PORT of a TCP listener (IPv4), or `off`. */
export function listenAddress(value: string): { address: string; port: number } | 'off' {
  if (value === 'off') return 'off';
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || parseIpv4(m[1] as string) === null || port < 1 || port > 65535) throw new InvalidArgumentError(`expected ADDRESS:PORT such as 127.0.0.1:9267, or off, got "${value}"`);
  return { address: m[1] as string, port };
}

/** A byte size: 20G, 512M, 64K or a number of bytes. */
export function byteSize(value: string): number {
  const m = /^(\d+)\s*([KMGT]?)i?B?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a size such as 20G, 512M or a number of bytes, got "${value}"`);
  const n = Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 } as const)[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  if (n < 1 << 20) throw new InvalidArgumentError(`expected at least 1M, got "${value}"`);
  return n;
}

/** An image origin: an http:// or https:// URL. */
export function originUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidArgumentError(`expected an http:// or https:// URL, got "${value}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError(`expected an http:// or https:// URL, got "${value}"`);
  return value.replace(/\/+$/, '');
}
