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
 * - grub: the chain every distribution uses under Secure Boot: Debian's
 *   shim (signed with Microsoft's UEFI CA), which loads grubx64.efi (Debian's
 *   signed netboot GRUB) from beside it, which reads grub/grub.cfg and
 *   verifies the kernel through shim. BIOS has no Secure Boot and Debian
 *   ships no BIOS netboot GRUB: BIOS clients of a grub host get PXELINUX.
 * Absent: the configured boot files (`bios`, `efi`), and iPXE clients the script.
 */
export type Loader = 'pxelinux' | 'ipxe' | 'grub';
export const LOADERS: readonly Loader[] = ['pxelinux', 'ipxe', 'grub'];

export type EfiFirmware = Exclude<Firmware, 'bios' | 'other'>;

/** Boot files per loader and firmware; `bootd setup` places these names. */
export interface LoaderFiles {
  readonly bios?: string;
  readonly efi: Partial<Record<EfiFirmware, string>>;
  /**
   * UEFI HTTP Boot clients (option 93 = 15, 16, 18, 19...): a file of the
   * TFTP root, handed as a URL on bootd's HTTP server. iPXE (snponly.efi,
   * on the firmware's NIC driver) is the loader that boots on from there:
   * it asks DHCP again as an iPXE client and follows the host's loader.
   */
  readonly http?: Partial<Record<EfiFirmware, string>>;
}

/**
 * UEFI HTTP Boot of the signed chain: Debian 12's signed GRUB images
 * (grub-efi-amd64-signed and -arm64-signed 2.06) are built with tftp but
 * without the http module, so shim and GRUB fetched by URL could read no
 * config (seen in the lab: GRUB stops at its prompt). They come instead in a
 * disk image HTTP Boot mounts as a RAM disk (src/bootconfig/efi-disk.ts);
 * GRUB reads its config from the disk and goes on over TFTP.
 */
const HTTP_BOOT_DISK = { 'efi-x64': 'efi/http-boot-x64.img', 'efi-arm64': 'efi/http-boot-aa64.img' } as const;

/** The arch and loader policy, in one table (docs/configuration.md "Loaders"). */
export const DEFAULT_LOADER_FILES: Readonly<Record<Loader, LoaderFiles>> = {
  // HTTP Boot: syslinux.efi reads its server from the PXE base code, which HTTP Boot never starts;
  // iPXE does, and then hands the host PXELINUX as it would under QEMU's iPXE ROM (lab mode 3).
  // arm64: Debian ships neither syslinux nor iPXE for it, so every loader is GRUB there.
  pxelinux: { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi', 'efi-arm64': 'shimaa64.efi' }, http: { 'efi-x64': 'snponly.efi', 'efi-arm64': HTTP_BOOT_DISK['efi-arm64'] } },
  ipxe: { bios: 'undionly.kpxe', efi: { 'efi-x64': 'snponly.efi', 'efi-arm64': 'shimaa64.efi' }, http: { 'efi-x64': 'snponly.efi', 'efi-arm64': HTTP_BOOT_DISK['efi-arm64'] } },
  grub: { bios: 'pxelinux.0', efi: { 'efi-x64': 'shimx64.efi', 'efi-arm64': 'shimaa64.efi' }, http: HTTP_BOOT_DISK },
};

export interface BootFileNames {
  readonly bios: string;
  readonly efi: Partial<Record<EfiFirmware, string>>;
  /** UEFI HTTP Boot clients without a loader of their own: files handed as URLs under httpBase (default: the GRUB chain). */
  readonly http?: Partial<Record<EfiFirmware, string>>;
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
  /** bootd's HTTP server for UEFI HTTP boot clients (arch 15, 16, 18, 19, 20, 28); none: they get no boot file. */
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
  if (entry.http) return httpBoot(entry, names, { efi: {}, http: names.http ?? DEFAULT_LOADER_FILES.ipxe.http ?? {} }, 'x');
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
  const files = (names.loaders ?? DEFAULT_LOADER_FILES)[loader];
  if (entry?.http) return httpBoot(entry, names, files, loader);
  const file = firmware === 'bios' ? files.bios : firmware === 'other' ? undefined : files.efi[firmware];
  if (!file) return { kind: 'none', reason: `loader ${loader} has no boot file for ${entry?.name ?? 'x86 BIOS'}` };
  return { kind: 'file', file, ipxe: false, http: false, firmware };
}

/**
 * A UEFI HTTP Boot client: option 67 is an http:// URL (UEFI 2.x section
 * 24.7: the client takes only an offer whose option 60 is "HTTPClient" and
 * whose boot file is a URI; the server echoes 60, see DhcpServer.reply).
 */
function httpBoot(entry: { readonly firmware: Firmware; readonly name: string }, names: BootFileNames, files: LoaderFiles, loader: Loader | 'x'): BootDecision {
  if (!names.httpBase) return { kind: 'none', reason: `${entry.name} needs bootd's HTTP server (--http-port)` };
  const file = entry.firmware === 'bios' || entry.firmware === 'other' ? undefined : files.http?.[entry.firmware];
  if (!file) return { kind: 'none', reason: `${loader === 'x' ? 'no boot file' : `loader ${loader} has no boot file`} for ${entry.name}` };
  return { kind: 'file', file: /^[a-z]+:\/\//i.test(file) ? file : `${names.httpBase.replace(/\/+$/, '')}/${file}`, ipxe: false, http: true, firmware: entry.firmware };
}
