/**
 * A host as the rest of bootd sees it: typed values only. The raw YAML never
 * leaves src/hosts/ (the loader turns it into these, or into ConfigIssues).
 */

import type { HostSmokeSettings } from '../afterboot/smoke-plan.js';

/** Lower-case, colon-separated: `52:54:00:12:34:56`. */
export type Mac = string & { readonly __mac: unique symbol };

/** `bee` (whatever `current` points at when a config is rendered) or `bee@2026.11.22-1` (pinned). */
export interface ImageRef {
  readonly name: string;
  readonly version?: string;
}

/**
 * `52-54-00-12-34-56`, the form PXELINUX and iPXE's ${mac:hexhyp} use in
 * file names, and the name of an unknown machine's records and upload folder.
 */
export function macHyphen(mac: string): string {
  return mac.toLowerCase().replace(/:/g, '-');
}

export function formatImageRef(r: ImageRef): string {
  return r.version === undefined ? r.name : `${r.name}@${r.version}`;
}

/** Per-host firmware workarounds. */
export interface HostQuirks {
  /** Largest TFTP blksize offered to this host (firmware that mishandles large blocks). */
  readonly tftpMaxBlksize?: number;
  /** Never acknowledge RFC 7440 windowsize (firmware with broken windowed reads). */
  readonly tftpNoWindowsize?: boolean;
  /** Wait before answering DHCP (PXE ROMs that are not listening yet when the offer comes). */
  readonly dhcpReplyDelayMs?: number;
}

/** What the host file says (`smoke:`); absent keys fall back to the appliance's smoke settings, then HOST_DEFAULTS. Declared by the after-boot code that uses it. */
export type SmokeSettings = HostSmokeSettings;

export interface BuildMachine {
  /** Upload quota of the host's write-enabled TFTP directory, in bytes. */
  readonly quotaBytes: number;
  /** false: an upload never replaces an existing file (TFTP ERROR 6). */
  readonly overwrite: boolean;
}

export interface Host {
  /** The file name without `.yaml`: the host's identity in commands and logs. */
  readonly name: string;
  /** The file it came from (as given to the loader). */
  readonly file: string;
  readonly macs: readonly Mac[];
  /** Reserved IPv4 address, dotted. */
  readonly ip?: string;
  /** Sent as DHCP option 12. */
  readonly hostname: string;
  readonly image: ImageRef;
  /** false: the host boots from its disk (PXELINUX `localboot`, iPXE `exit 1`, no boot file in DHCP). */
  readonly netboot: boolean;
  /**
   * pxelinux: PXELINUX / syslinux.efi even under iPXE; ipxe: bootd's iPXE
   * script (plain PXE gets undionly.kpxe / snponly.efi first); grub: shim and
   * Debian's signed GRUB (UEFI; BIOS gets PXELINUX). Absent: the appliance's
   * boot files (src/dhcp/boot-policy.ts).
   */
  readonly loader?: 'pxelinux' | 'ipxe' | 'grub';
  /**
   * The host's firmware enforces Secure Boot (secure_boot: true): it boots
   * the signed chain (loader grub) and an image whose kernel is signed;
   * `bootd hosts check` says so when the image's kernel is not.
   */
  readonly secureBoot?: boolean;
  /**
   * What the machine is (arch: arm64), for `bootd hosts show`; absent: bootd
   * learns it from the firmware's option 93 (the boot record's clientArch).
   * What it boots follows the firmware's own request either way.
   */
  readonly arch?: 'amd64' | 'arm64';
  /** Appended to the kernel command line after everything bootd puts there. */
  readonly kernelArgs: readonly string[];
  /** Image parameters, rendered as `<image>.<key>=<value>` (`buildos.toolchain_url=...`). */
  readonly params: Readonly<Record<string, string>>;
  readonly build: BuildMachine | null;
  readonly smoke: SmokeSettings;
  readonly quirks: HostQuirks;
}
