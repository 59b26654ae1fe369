/**
 * DHCP options as a typed registry (RFC 2132 and the PXE, relay and iPXE
 * extensions). Options are kept as raw bytes in the packet; this table turns
 * them into typed values and back. An option without an entry stays raw and
 * round-trips byte for byte. Pure.
 */
import { readIpv4, writeIpv4 } from '../net/ipv4.js';

/** Option codes bootd reads or writes (RFC 2132 unless noted). */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST: 28,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77, // RFC 3004
  RELAY_AGENT: 82, // RFC 3046
  CLIENT_ARCH: 93, // RFC 4578
  CLIENT_NDI: 94, // RFC 4578
  CLIENT_UUID: 97, // RFC 4578
  VENDOR_SPECIFIC: 43, // PXE sub-options for PXEClient
  DOMAIN_SEARCH: 119, // RFC 3397
  CLASSLESS_ROUTES: 121, // RFC 3442
  IPXE: 175, // iPXE's encapsulated options
  PXELINUX_CONFIGFILE: 209, // RFC 5071
  PXELINUX_PATHPREFIX: 210, // RFC 5071
  PXELINUX_REBOOTTIME: 211, // RFC 5071
  END: 255,
} as const;

/** RFC 2132 section 9.6 message types. */
export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** PXE (Intel PXE spec 2.1) sub-options of option 43. */
export const PxeSub = { DISCOVERY_CONTROL: 6, BOOT_SERVERS: 8, BOOT_MENU: 9, MENU_PROMPT: 10, BOOT_ITEM: 71 } as const;
/** RFC 3046 sub-options of option 82. */
export const RelaySub = { CIRCUIT_ID: 1, REMOTE_ID: 2, LINK_SELECTION: 5, SUBSCRIBER_ID: 6 } as const;
/** iPXE sub-options of option 175 (iPXE's include/ipxe/dhcp.h). */
export const IpxeSub = { PRIORITY: 1, KEEP_SAN: 8, SKIP_SAN_BOOT: 9, SYSLOGS: 85, CERT: 91, PRIVKEY: 92, CROSSCERT: 93, NO_PXEDHCP: 176, BUS_ID: 177, BIOS_DRIVE: 189, USERNAME: 190, PASSWORD: 191, VERSION: 235 } as const;

export type OptionKind = 'ip' | 'ips' | 'u8' | 'u16' | 'u32' | 'string' | 'bytes' | 'u8list' | 'u16list' | 'encapsulated' | 'flag';

export interface OptionSpec {
  readonly name: string;
  readonly kind: OptionKind;
}

/** The registry: what each known option holds. */
export const OPTION_SPECS: ReadonlyMap<number, OptionSpec> = new Map<number, OptionSpec>([
  [Opt.SUBNET_MASK, { name: 'subnet-mask', kind: 'ip' }],
  [Opt.ROUTER, { name: 'router', kind: 'ips' }],
  [Opt.DNS, { name: 'dns', kind: 'ips' }],
  [Opt.HOSTNAME, { name: 'hostname', kind: 'string' }],
  [Opt.DOMAIN_NAME, { name: 'domain-name', kind: 'string' }],
  [Opt.BROADCAST, { name: 'broadcast', kind: 'ip' }],
  [Opt.VENDOR_SPECIFIC, { name: 'vendor-specific', kind: 'encapsulated' }],
  [Opt.REQUESTED_IP, { name: 'requested-ip', kind: 'ip' }],
  [Opt.LEASE_TIME, { name: 'lease-time', kind: 'u32' }],
  [Opt.OVERLOAD, { name: 'overload', kind: 'u8' }],
  [Opt.MESSAGE_TYPE, { name: 'message-type', kind: 'u8' }],
  [Opt.SERVER_ID, { name: 'server-id', kind: 'ip' }],
  [Opt.PARAMETER_LIST, { name: 'parameter-list', kind: 'u8list' }],
  [Opt.MESSAGE, { name: 'message', kind: 'string' }],
  [Opt.MAX_MESSAGE_SIZE, { name: 'max-message-size', kind: 'u16' }],
  [Opt.RENEWAL_TIME, { name: 'renewal-time', kind: 'u32' }],
  [Opt.REBINDING_TIME, { name: 'rebinding-time', kind: 'u32' }],
  [Opt.VENDOR_CLASS, { name: 'vendor-class', kind: 'string' }],
  [Opt.CLIENT_ID, { name: 'client-id', kind: 'bytes' }],
  [Opt.TFTP_SERVER, { name: 'tftp-server', kind: 'string' }],
  [Opt.BOOTFILE, { name: 'bootfile', kind: 'string' }],
  [Opt.USER_CLASS, { name: 'user-class', kind: 'bytes' }],
  [Opt.RELAY_AGENT, { name: 'relay-agent', kind: 'encapsulated' }],
  [Opt.CLIENT_ARCH, { name: 'client-arch', kind: 'u16list' }],
  [Opt.CLIENT_NDI, { name: 'client-ndi', kind: 'bytes' }],
  [Opt.CLIENT_UUID, { name: 'client-uuid', kind: 'bytes' }],
  [Opt.DOMAIN_SEARCH, { name: 'domain-search', kind: 'bytes' }],
  [Opt.CLASSLESS_ROUTES, { name: 'classless-routes', kind: 'bytes' }],
  [Opt.IPXE, { name: 'ipxe', kind: 'encapsulated' }],
  [Opt.PXELINUX_CONFIGFILE, { name: 'pxelinux-configfile', kind: 'string' }],
  [Opt.PXELINUX_PATHPREFIX, { name: 'pxelinux-pathprefix', kind: 'string' }],
  [Opt.PXELINUX_REBOOTTIME, { name: 'pxelinux-reboottime', kind: 'u32' }],
]);

/** One TLV as found inside an encapsulating option (43, 82, 175). */
export interface SubOption {
  readonly code: number;
  readonly data: Buffer;
}

export class OptionValueError extends Error {
  readonly code = 'ERR_DHCP_OPTION_VALUE';
  constructor(
    readonly option: number,
    message: string,
  ) {
    super(`option ${option}: ${message}`);
    this.name = 'OptionValueError';
  }
}

/** Splits encapsulated sub-options (RFC 2132 section 8.4 format). Throws OptionValueError when truncated. */
export function decodeSubOptions(option: number, data: Buffer): SubOption[] {
  const out: SubOption[] = [];
  let i = 0;
  while (i < data.length) {
    const code = data[i] as number;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) break;
    if (i + 1 >= data.length) throw new OptionValueError(option, `sub-option ${code} has no length`);
    const len = data[i + 1] as number;
    if (i + 2 + len > data.length) throw new OptionValueError(option, `sub-option ${code} runs past the option`);
    out.push({ code, data: data.subarray(i + 2, i + 2 + len) });
    i += 2 + len;
  }
  return out;
}

export function encodeSubOptions(subs: readonly SubOption[], terminate = false): Buffer {
  const parts: Buffer[] = [];
  for (const s of subs) {
    if (s.data.length > 255) throw new Error(`sub-option ${s.code} longer than 255 bytes`);
    parts.push(Buffer.from([s.code, s.data.length]), s.data);
  }
  if (terminate) parts.push(Buffer.from([Opt.END]));
  return Buffer.concat(parts);
}

export type OptionValue = string | number | string[] | number[] | Buffer | SubOption[];

/** Typed view of an option's bytes. Throws OptionValueError when the bytes do not fit the kind. */
export function decodeValue(code: number, data: Buffer): OptionValue {
  const kind = OPTION_SPECS.get(code)?.kind ?? 'bytes';
  const need = (ok: boolean, what: string): void => {
    if (!ok) throw new OptionValueError(code, `${what}, got ${data.length} bytes`);
  };
  switch (kind) {
    case 'ip':
      need(data.length === 4, 'expected 4 bytes');
      return readIpv4(data, 0);
    case 'ips':
      need(data.length > 0 && data.length % 4 === 0, 'expected a multiple of 4 bytes');
      return Array.from({ length: data.length / 4 }, (_, i) => readIpv4(data, i * 4));
    case 'u8':
      need(data.length === 1, 'expected 1 byte');
      return data[0] as number;
    case 'u16':
      need(data.length === 2, 'expected 2 bytes');
      return data.readUInt16BE(0);
    case 'u32':
      need(data.length === 4, 'expected 4 bytes');
      return data.readUInt32BE(0);
    case 'u8list':
      return [...data];
    case 'u16list':
      need(data.length % 2 === 0, 'expected a multiple of 2 bytes');
      return Array.from({ length: data.length / 2 }, (_, i) => data.readUInt16BE(i * 2));
    case 'string':
      // RFC 2132: strings are not NUL-terminated, but some clients add one
      return data.toString('latin1').replace(/\0+$/, '');
    case 'encapsulated':
      return decodeSubOptions(code, data);
    case 'flag':
    case 'bytes':
      return Buffer.from(data);
  }
}

/** Bytes for a typed value. Throws on a value that cannot be encoded (a programmer error). */
export function encodeValue(code: number, value: OptionValue): Buffer {
  const kind = OPTION_SPECS.get(code)?.kind ?? 'bytes';
  const bad = (): never => {
    throw new Error(`option ${code} (${kind}): cannot encode ${JSON.stringify(value)}`);
  };
  switch (kind) {
    case 'ip': {
      if (typeof value !== 'string') return bad();
      const b = Buffer.alloc(4);
      writeIpv4(b, 0, value);
      return b;
    }
    case 'ips': {
      if (!Array.isArray(value) || value.length === 0) return bad();
      const b = Buffer.alloc(4 * value.length);
      (value as unknown[]).forEach((v, i) => (typeof v === 'string' ? writeIpv4(b, i * 4, v) : bad()));
      return b;
    }
    case 'u8':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xff) return bad();
      return Buffer.from([value]);
    case 'u16': {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff) return bad();
      const b = Buffer.alloc(2);
      b.writeUInt16BE(value);
      return b;
    }
    case 'u32': {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) return bad();
      const b = Buffer.alloc(4);
      b.writeUInt32BE(value);
      return b;
    }
    case 'u8list':
      if (!Array.isArray(value) || (value as unknown[]).some((v) => typeof v !== 'number' || v < 0 || v > 255)) return bad();
      return Buffer.from(value as number[]);
    case 'u16list': {
      if (!Array.isArray(value)) return bad();
      const b = Buffer.alloc(2 * value.length);
      (value as unknown[]).forEach((v, i) => (typeof v === 'number' && v >= 0 && v <= 0xffff ? b.writeUInt16BE(v, i * 2) : bad()));
      return b;
    }
    case 'string':
      if (typeof value !== 'string') return bad();
      return Buffer.from(value, 'latin1');
    case 'encapsulated':
      if (!Array.isArray(value)) return bad();
      return encodeSubOptions(value as SubOption[]);
    case 'flag':
    case 'bytes':
      if (!Buffer.isBuffer(value)) return bad();
      return value;
  }
}
