/**
 * A host's boots as bootd saw them, and the pure step that folds one
 * observation into them. A boot runs through these phases:
 *
 *   dhcp      a PXE client (vendor class PXEClient, or iPXE) took an offer or lease
 *   loading   it fetched its first file (NBP, config, script)
 *   kernel    a kernel or initrd went out in full: the OS is on its way
 *   os-dhcp   the OS's own DHCP took the lease (a client that is neither
 *             PXEClient nor iPXE, after the kernel: udhcpc, dhclient, ...)
 *   up        ... and its SSH port answers
 *   smoke-passed / smoke-failed   the image's smoke test ran over SSH
 *
 * A plain DHCP client *before* the kernel is a network boot program's own
 * exchange (syslinux.efi asks again without option 60, WIRE.md): it stays in
 * `loading`. A new PXE exchange after the kernel went out is a new boot.
 */

/** An OFFER or ACK as it went out (src/events/types.ts DhcpMessageEvent, as the tracker takes it). */
export interface DhcpSeen {
  readonly type: 'offer' | 'ack';
  readonly mac: string;
  readonly ip: string;
  readonly vendorClass: string | null;
  readonly arch: number | null;
  /** Vendor class PXEClient: a firmware PXE stack (or iPXE). */
  readonly pxe: boolean;
  readonly userClassIpxe: boolean;
  readonly bootFile: string | null;
}

export type Phase = 'dhcp' | 'loading' | 'kernel' | 'os-dhcp' | 'up' | 'smoke-passed' | 'smoke-failed';

const ORDER: readonly Phase[] = ['dhcp', 'loading', 'kernel', 'os-dhcp', 'up', 'smoke-passed', 'smoke-failed'];

export function phaseAtLeast(p: Phase, than: Phase): boolean {
  return ORDER.indexOf(p) >= ORDER.indexOf(than);
}

export type EventKind = 'dhcp' | 'os-dhcp' | 'file' | 'upload' | 'ssh' | 'smoke' | 'audit' | 'wait';

export interface TimelineEvent {
  /** ISO time. */
  readonly at: string;
  readonly kind: EventKind;
  /** One readable line, as `bootd logs` prints it. */
  readonly text: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

export interface SmokeResult {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly attempts: number;
  readonly passed: number;
  /** The FAIL lines, verbatim. */
  readonly failed: readonly string[];
  /** Why it did not run to the end (no SSH, timeout, no script); absent when the script ran. */
  readonly error?: string;
  /** Where the full output is kept, relative to the state directory. */
  readonly outputFile?: string;
}

export interface BootRecord {
  readonly id: string;
  readonly startedAt: string;
  readonly mac: string;
  ip?: string;
  image?: string;
  /** The firmware's client architecture (option 93) in its first boot request: what the machine is, learned (RFC 4578). */
  clientArch?: number;
  phase: Phase;
  updatedAt: string;
  events: TimelineEvent[];
  smoke?: SmokeResult;
}

export interface HostRecord {
  readonly name: string;
  boots: BootRecord[];
}

/** Boots kept per host; events kept per boot. */
export const KEEP_BOOTS = 10;
export const KEEP_EVENTS = 300;

/** What the servers report, already tied to a host. */
export type Observation =
  | (DhcpSeen & { readonly kind: 'dhcp'; readonly image?: string })
  | { readonly kind: 'file'; readonly via: 'tftp' | 'http'; readonly file: string; readonly bytes: number; readonly durationMs: number; readonly outcome: string }
  | { readonly kind: 'upload'; readonly file: string; readonly bytes: number; readonly outcome: string }
  | { readonly kind: 'ssh'; readonly port: number; readonly afterMs: number }
  | { readonly kind: 'smoke'; readonly result: SmokeResult }
  | { readonly kind: 'audit'; readonly ok: boolean; readonly text: string }
  /** The boot waits (its image is being fetched from the origin). */
  | { readonly kind: 'wait'; readonly text: string };

/** A kernel or an initrd, by the names images and boot loaders use. */
export function isOsFile(file: string): boolean {
  const base = file.slice(file.lastIndexOf('/') + 1).toLowerCase();
  return /^(vmlinuz|bzimage|linux|kernel)/.test(base) || /^initrd|initramfs|\.cpio(\.|$)/.test(base);
}

function size(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function describe(o: Observation): { kind: EventKind; text: string; data: Record<string, unknown> } {
  switch (o.kind) {
    case 'dhcp': {
      const who = o.vendorClass ?? 'no vendor class';
      const arch = o.arch === null ? '' : `, arch ${o.arch}`;
      const boot = o.bootFile ? ` -> ${o.bootFile}` : '';
      return { kind: 'dhcp', text: `DHCP ${o.type} ${o.ip} (${who}${arch}${o.userClassIpxe ? ', iPXE' : ''})${boot}`, data: { type: o.type, mac: o.mac, ip: o.ip, vendorClass: o.vendorClass, arch: o.arch, bootFile: o.bootFile } };
    }
    case 'file': {
      const what = o.outcome === 'complete' ? `${size(o.bytes)} in ${(o.durationMs / 1000).toFixed(2)} s` : o.outcome === 'probe-aborted' ? 'size probe' : `${o.outcome} after ${size(o.bytes)}`;
      return { kind: 'file', text: `${o.via.toUpperCase()} ${o.file} ${what}`, data: { via: o.via, file: o.file, bytes: o.bytes, durationMs: o.durationMs, outcome: o.outcome } };
    }
    case 'upload':
      return { kind: 'upload', text: `upload ${o.file} ${size(o.bytes)} ${o.outcome}`, data: { file: o.file, bytes: o.bytes, outcome: o.outcome } };
    case 'ssh':
      return { kind: 'ssh', text: `SSH port ${o.port} answers`, data: { port: o.port, afterMs: o.afterMs } };
    case 'smoke': {
      const r = o.result;
      const text = r.ok ? `smoke test passed (${r.passed} checks, ${(r.durationMs / 1000).toFixed(1)} s)` : `smoke test FAILED: ${r.error ?? (r.failed.length > 0 ? r.failed.join('; ') : `exit ${String(r.exitCode)}`)}`;
      return { kind: 'smoke', text, data: { ok: r.ok, exitCode: r.exitCode, passed: r.passed, failed: r.failed, ...(r.error ? { error: r.error } : {}) } };
    }
    case 'audit':
      return { kind: 'audit', text: o.text, data: { ok: o.ok } };
    case 'wait':
      return { kind: 'wait', text: o.text, data: {} };
  }
}

/**
 * Folds one observation into a host's record (in place; returns the boot it
 * landed in, or null when it was not worth keeping, such as a lease renewal
 * long after boot).
 */
export function observe(rec: HostRecord, o: Observation, now: Date, newId: () => string): BootRecord | null {
  let boot = rec.boots[rec.boots.length - 1];
  const at = now.toISOString();
  if (o.kind === 'dhcp') {
    const pxe = o.pxe || o.userClassIpxe;
    if (pxe && (boot === undefined || phaseAtLeast(boot.phase, 'kernel'))) {
      boot = { id: newId(), startedAt: at, mac: o.mac, phase: 'dhcp', updatedAt: at, events: [] };
      rec.boots.push(boot);
      if (rec.boots.length > KEEP_BOOTS) rec.boots.splice(0, rec.boots.length - KEEP_BOOTS);
    }
    if (boot === undefined) {
      // an OS asking with no netboot seen (bootd restarted, or a disk boot): a boot of its own
      boot = { id: newId(), startedAt: at, mac: o.mac, phase: o.type === 'ack' ? 'os-dhcp' : 'dhcp', updatedAt: at, events: [] };
      rec.boots.push(boot);
    } else if (!pxe && boot.phase !== 'kernel' && phaseAtLeast(boot.phase, 'kernel')) {
      return null; // renewals and re-requests of a running OS
    }
    if (o.type === 'ack') boot.ip = o.ip;
    if (o.image !== undefined) boot.image = o.image;
    if (pxe && o.arch !== null && boot.clientArch === undefined) boot.clientArch = o.arch;
    if (!pxe && o.type === 'ack' && boot.phase === 'kernel') boot.phase = 'os-dhcp';
  }
  if (boot === undefined) return null;
  const d = describe(o);
  if (o.kind === 'dhcp' && !o.pxe && !o.userClassIpxe && boot.phase === 'os-dhcp') d.kind = 'os-dhcp';
  if (o.kind === 'file') {
    if (boot.phase === 'dhcp') boot.phase = 'loading';
    if (o.outcome === 'complete' && isOsFile(o.file) && !phaseAtLeast(boot.phase, 'kernel')) boot.phase = 'kernel';
  }
  if (o.kind === 'ssh' && (boot.phase === 'os-dhcp' || boot.phase === 'kernel')) boot.phase = 'up';
  if (o.kind === 'smoke') {
    boot.smoke = o.result;
    boot.phase = o.result.ok ? 'smoke-passed' : 'smoke-failed';
  }
  boot.events.push({ at, kind: d.kind, text: d.text, data: d.data });
  if (boot.events.length > KEEP_EVENTS) boot.events.splice(0, boot.events.length - KEEP_EVENTS);
  boot.updatedAt = at;
  return boot;
}
