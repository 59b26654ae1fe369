/**
 * Which boot file a client gets. Pure policy, apart from the wire format:
 * decided from option 93 (RFC 4578 client architecture, IANA "Processor
 * Architecture Types"), option 77 (user class: iPXE says "iPXE") and option 60.
 */
import { Opt, decodeValue } from './options.js';
import { getOption, type DhcpPacket } from './packet.js';

export type Firmware = 'bios' | 'efi-ia32' | 'efi-x64' | 'efi-arm32' | 'efi-arm64' | 'efi-riscv64' | 'other';

/** IANA processor architecture types: firmware family, and whether the client boots over HTTP. */
export const ARCH_TABLE: ReadonlyMap<number, { readonly firmware: Firmware; readonly http: boolean; readonly name: string }> = new Map([
  [0, { firmware: 'bios', http: false, name: 'x86 BIOS' }],
  [6, { firmware: 'efi-ia32', http: false, name: 'x86 UEFI' }],
  [7, { firmware: 'efi-x64', http: false, name: 'x64 UEFI' }],
  // RFC 4578 errata 4596: 9 is x64 UEFI too (some firmware sends it)
  [9, { firmware: 'efi-x64', http: false, name: 'x64 UEFI (EBC code)' }],
  [10, { firmware: 'efi-arm32', http: false, name: 'ARM 32-bit UEFI' }],
  [11, { firmware: 'efi-arm64', http: false, name: 'ARM 64-bit UEFI' }],
  [15, { firmware: 'efi-ia32', http: true, name: 'x86 UEFI HTTP' }],
  [16, { firmware: 'efi-x64', http: true, name: 'x64 UEFI HTTP' }],
  [18, { firmware: 'efi-arm32', http: true, name: 'ARM 32-bit UEFI HTTP' }],
  [19, { firmware: 'efi-arm64', http: true, name: 'ARM 64-bit UEFI HTTP' }],
  [20, { firmware: 'bios', http: true, name: 'x86 BIOS HTTP' }],
  [27, { firmware: 'efi-riscv64', http: false, name: 'RISC-V 64-bit UEFI' }],
  [28, { firmware: 'efi-riscv64', http: true, name: 'RISC-V 64-bit UEFI HTTP' }],
]);

/**
 * How a host boots, from hosts/*.yaml `loader`:
 * - pxelinux: PXELINUX (BIOS) or syslinux.efi (UEFI), even for a client that
 *   already runs iPXE (QEMU's NIC ROM is iPXE: WIRE.md). No chain loop: they
 *   do not send user class iPXE.
 * - ipxe: iPXE clients get bootd's script; plain PXE clients get an iPXE
 *   binary (undionly.kpxe, snponly.efi) that comes back as an iPXE client.
 * Absent: the configured boot files (`bios`, `efi`), and iPXE clients the script.
 */
export type Loader = 'pxelinux' | 'ipxe';

/** Boot files per loader and firmware; `bootd setup` places these names. */
export interface LoaderFiles {
  readonly bios?: string;
  readonly efi: Partial<Record<Exclude<Firmware, 'bios' | 'other'>, string>>;
}

export const DEFAULT_LOADER_FILES: Readonly<Record<Loader, LoaderFiles>> = {
  pxelinux: { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi' } },
  ipxe: { bios: 'undionly.kpxe', efi: { 'efi-x64': 'snponly.efi' } },
};

export interface BootFileNames {
  readonly bios: string;
  readonly efi: Partial<Record<Exclude<Firmware, 'bios' | 'other'>, string>>;
  /** What a client that already runs iPXE gets: bootd's script, never another iPXE binary. */
  readonly ipxe: string;
  /** Boot files for hosts that name a loader; default DEFAULT_LOADER_FILES. */
  readonly loaders?: Readonly<Record<Loader, LoaderFiles>>;
  /**
   * Instead of `loaders`, for hosts in hosts/ only: http/lpxelinux.0 reads
   * per-MAC configs bootd renders with http:// URLs, which unknown machines
   * (an operator's own pxelinux.cfg/ files) do not have.
   */
  readonly knownHostLoaders?: Readonly<Record<Loader, LoaderFiles>>;
  /** Base URL for UEFI HTTP boot clients (arch 15, 16, 18, 19, 20, 28); none: they get no boot file. */
  readonly httpBase?: string;
  /**
   * `http://<server>:<port>` of bootd's HTTP server when PXELINUX may load
   * over HTTP (see pxelinuxPathPrefix): iPXE clients handed PXELINUX then get
   * option 210 pointing there, instead of `knownHostLoaders`.
   */
  readonly pxelinuxHttpBase?: string;
}

export interface ClientFacts {
  readonly arch: number | null;
  readonly ipxe: boolean;
  readonly pxe: boolean;
  readonly vendorClass: string | null;
}

/** Reads the facts the policy needs; malformed options count as absent. */
export function clientFacts(p: Pick<DhcpPacket, 'options'>): ClientFacts {
  const raw93 = getOption(p, Opt.CLIENT_ARCH);
  let arch: number | null = null;
  if (raw93 && raw93.length >= 2) arch = raw93.readUInt16BE(0);
  const uc = getOption(p, Opt.USER_CLASS);
  // iPXE sends the bare string "iPXE"; RFC 3004 clients send length-prefixed strings
  const ipxe = uc !== undefined && (uc.toString('latin1') === 'iPXE' || rfc3004(uc).includes('iPXE'));
  const vc = getOption(p, Opt.VENDOR_CLASS);
  let vendorClass: string | null = null;
  if (vc) vendorClass = decodeValue(Opt.VENDOR_CLASS, vc) as string;
  return { arch, ipxe, pxe: vendorClass?.startsWith('PXEClient') === true || vendorClass?.startsWith('HTTPClient') === true, vendorClass };
}

function rfc3004(b: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i < b.length; ) {
    const len = b[i] as number;
    if (i + 1 + len > b.length) return out;
    out.push(b.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  return out;
}

export type BootDecision =
  | { readonly kind: 'none'; readonly reason: string }
  | { readonly kind: 'file'; readonly file: string; readonly ipxe: boolean; readonly http: boolean; readonly firmware: Firmware };

/**
 * A client with user class iPXE gets the iPXE script (no chain loops); a PXE
 * client gets the NBP for its architecture; a client with none of 60, 93, 77
 * (syslinux.efi's second exchange, Linux's udhcpc) gets a plain lease.
 */
export function chooseBoot(f: ClientFacts, names: BootFileNames, loader?: Loader): BootDecision {
  if (loader !== undefined) return chooseByLoader(f, names, loader);
  if (f.ipxe) return { kind: 'file', file: names.ipxe, ipxe: true, http: false, firmware: f.arch === null ? 'other' : (ARCH_TABLE.get(f.arch)?.firmware ?? 'other') };
  if (f.arch === null && !f.pxe) return { kind: 'none', reason: 'not a PXE client' };
  // A PXEClient without option 93 is a legacy BIOS PXE ROM (RFC 4578 predates it).
  const entry = f.arch === null ? ARCH_TABLE.get(0) : ARCH_TABLE.get(f.arch);
  if (!entry) return { kind: 'none', reason: `unknown architecture ${f.arch}` };
  if (entry.http) {
    if (!names.httpBase) return { kind: 'none', reason: `${entry.name} needs an HTTP boot URL` };
    const efi = entry.firmware === 'bios' || entry.firmware === 'other' ? undefined : names.efi[entry.firmware];
    if (!efi) return { kind: 'none', reason: `no boot file for ${entry.name}` };
    return { kind: 'file', file: `${names.httpBase.replace(/\/$/, '')}/${efi}`, ipxe: false, http: true, firmware: entry.firmware };
  }
  const file = entry.firmware === 'bios' ? names.bios : entry.firmware === 'other' ? undefined : names.efi[entry.firmware];
  if (!file) return { kind: 'none', reason: `no boot file for ${entry.name}` };
  return { kind: 'file', file, ipxe: false, http: false, firmware: entry.firmware };
}

/** PXELINUX's BIOS NBPs (syslinux 6: pxelinux.0, lpxelinux.0), in any folder. */
const PXELINUX_BIOS = /(?:^|\/)l?pxelinux\.0$/;

/**
 * Option 210 (RFC 5071 PXELINUX path prefix) for a client that runs iPXE and
 * is handed PXELINUX: `http://<server>:<port>/<folder of the NBP>/`. PXELINUX
 * resolves every later name (ldlinux.c32, pxelinux.cfg/..., kernel, initrds,
 * modules) against the prefix; a scheme it has no driver for goes through the
 * PXE ROM's file API when the ROM is iPXE (syslinux core/fs/pxe: gpxe_open over
 * PXENV_FILE_OPEN; iPXE implements it, QEMU's ROM included), so the files come
 * over iPXE's HTTP from the same tree bootd serves over TFTP. Measured in the
 * lab (mode 1, bee, TCG): kernel 13.5 MiB in 0.74 s, against 2.2 s over
 * lpxelinux.0's own TCP stack and 2.7 s over TFTP (docs/performance.md). The NBP itself still
 * comes over TFTP. Not for plain PXE ROMs (no file API: pxelinux.0 would find
 * nothing) nor UEFI (syslinux.efi has its own HTTP over the firmware's TCP,
 * which measured no faster than TFTP).
 */
export function pxelinuxPathPrefix(f: ClientFacts, d: BootDecision, httpBase: string | undefined): string | undefined {
  if (httpBase === undefined || !f.ipxe || d.kind !== 'file' || d.ipxe || d.http || d.firmware !== 'bios') return undefined;
  if (!PXELINUX_BIOS.test(d.file) || /^[a-z]+:\/\//i.test(d.file) || d.file.includes('::')) return undefined;
  const slash = d.file.lastIndexOf('/');
  const folder = slash < 0 ? '' : d.file.slice(0, slash + 1).replace(/^\/+/, '');
  return `${httpBase.replace(/\/+$/, '')}/${folder}`;
}

function chooseByLoader(f: ClientFacts, names: BootFileNames, loader: Loader): BootDecision {
  const firmware: Firmware = f.arch === null ? (f.ipxe || f.pxe ? 'bios' : 'other') : (ARCH_TABLE.get(f.arch)?.firmware ?? 'other');
  if (loader === 'ipxe' && f.ipxe) return { kind: 'file', file: names.ipxe, ipxe: true, http: false, firmware };
  if (!f.ipxe && f.arch === null && !f.pxe) return { kind: 'none', reason: 'not a PXE client' };
  const entry = f.arch === null ? undefined : ARCH_TABLE.get(f.arch);
  if (f.arch !== null && !entry) return { kind: 'none', reason: `unknown architecture ${f.arch}` };
  if (entry?.http) return { kind: 'none', reason: `${entry.name}: HTTP boot clients are not served by loader ${loader}` };
  const files = (names.loaders ?? DEFAULT_LOADER_FILES)[loader];
  const file = firmware === 'bios' ? files.bios : firmware === 'other' ? undefined : files.efi[firmware];
  if (!file) return { kind: 'none', reason: `loader ${loader} has no boot file for ${entry?.name ?? 'x86 BIOS'}` };
  return { kind: 'file', file, ipxe: false, http: false, firmware };
}
