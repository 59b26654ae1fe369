/**
 * The lab's per-host timeline, built from what bootd logs (JSON lines:
 * `dhcp offer`, `dhcp ack`, `tftp transfer`, `http transfer`) and what the
 * VM prints on its serial console. Pure: lines in, events out.
 */

export type EventKind = 'qemu' | 'dhcp-offer' | 'dhcp-ack' | 'file' | 'refused' | 'firmware-refused' | 'kernel' | 'up' | 'os-lease' | 'ssh' | 'upload' | 'audit' | 'smoke' | 'gave-up' | 'power-cycle' | 'error';

export interface LabEvent {
  /** Seconds since this VM's QEMU started. */
  readonly t: number;
  readonly vm: string;
  readonly kind: EventKind;
  readonly text: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

export interface ServedFile {
  readonly file: string;
  readonly via: 'tftp' | 'http';
  readonly bytes: number;
  readonly ms: number;
  readonly outcome: string;
}

export interface VmTrack {
  readonly name: string;
  readonly mac: string;
  /** Monotonic ms when QEMU started. */
  startedAt: number;
  ip?: string;
  kernelAt?: number;
  upAt?: number;
  /** bootd's smoke test, once it finished. */
  smoke?: { ok: boolean; failed: string[]; error?: string };
  uploads: string[];
  files: ServedFile[];
  acks: { vendorClass: string | null; bootFile: string | null; ip: string }[];
  /** The boot loader's give-up line (GAVE_UP_MARKER) in this attempt, once seen. */
  gaveUp?: string;
  /** The firmware would not run what it loaded (FIRMWARE_REFUSED: Secure Boot), once seen. */
  refused?: string;
  /** Attempts that ended in a power cycle, oldest first (the fields above are the current attempt's). */
  attempts?: PastAttempt[];
}

export interface PastAttempt {
  /** Seconds since the VM's first QEMU start when it was power-cycled. */
  readonly atSeconds: number;
  readonly gaveUp: string;
  readonly files: readonly ServedFile[];
  readonly acks: VmTrack['acks'];
  /** The attempt's serial console, moved aside. */
  readonly serialLog: string;
}

/**
 * PXELINUX's kaboom(): the boot loader stopped and waits for a key or its
 * 5-minute reset. Printed for a missing config file, and (rarely, with no
 * message before it) when lpxelinux's own TCP/IP stack dies mid-download:
 * docs/lab.md, "Power cycles".
 */
export const GAVE_UP_MARKER = /Boot failed: press a key to retry|Failed to boot both default and fallback entries/;

/**
 * OVMF's boot manager could not start what it loaded: under Secure Boot an
 * image whose signature no key in db accepts fails LoadImage with "Access
 * Denied" (edk2 BdsDxe: `failed to load Boot0001 "UEFI PXEv4 (...)" from
 * ...: Access Denied`); shim prints "Verification failed" for a second
 * stage or kernel that is not signed by a key it trusts.
 */
export const FIRMWARE_REFUSED = /failed to load Boot\S* .*: Access Denied|Verification failed: \(0x1A\) Security Violation|bad shim signature/;

/** The marker images print once userland runs and holds a lease (docs/lab.md). */
export const UP_MARKER = /BOOTD-UP image=(\S+) ip=(\S+)/;
/** The kernel's first line on the console. */
const KERNEL_MARKER = /Linux version \d/;

function kib(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

export class Timeline {
  readonly events: LabEvent[] = [];
  private readonly byMac = new Map<string, VmTrack>();
  private readonly byIp = new Map<string, VmTrack>();

  constructor(
    readonly vms: readonly VmTrack[],
    private readonly now: () => number,
    private readonly emit: (e: LabEvent) => void = () => {},
  ) {
    for (const v of vms) this.byMac.set(v.mac, v);
  }

  private add(vm: VmTrack, kind: EventKind, text: string, data?: Record<string, unknown>): void {
    const e: LabEvent = { t: Math.round((this.now() - vm.startedAt) / 10) / 100, vm: vm.name, kind, text, ...(data ? { data } : {}) };
    this.events.push(e);
    this.emit(e);
  }

  note(vmName: string, kind: EventKind, text: string, data?: Record<string, unknown>): void {
    const vm = this.vms.find((v) => v.name === vmName);
    if (vm) this.add(vm, kind, text, data);
  }

  /**
   * The VM is about to be power-cycled: its current attempt (DHCP, files, the
   * give-up line) moves to `attempts`, and the next one starts empty. The
   * clock keeps running from the first start, so times include the lost attempt.
   */
  powerCycle(vmName: string, serialLogMoved: string): PastAttempt | null {
    const vm = this.vms.find((v) => v.name === vmName);
    if (!vm || vm.gaveUp === undefined) return null;
    const past: PastAttempt = { atSeconds: Math.round(this.now() - vm.startedAt) / 1000, gaveUp: vm.gaveUp, files: vm.files, acks: vm.acks, serialLog: serialLogMoved };
    vm.attempts = [...(vm.attempts ?? []), past];
    vm.files = [];
    vm.acks = [];
    delete vm.gaveUp;
    delete vm.kernelAt;
    this.add(vm, 'power-cycle', `power cycle ${vm.attempts.length} (the serial log so far: ${serialLogMoved})`);
    return past;
  }

  /** One line of bootd's JSON log; anything else is ignored. */
  onBootdLine(line: string): void {
    if (!line.startsWith('{')) return;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const msg = r.msg;
    if (msg === 'dhcp offer' || msg === 'dhcp ack') {
      const vm = this.byMac.get(String(r.mac));
      if (!vm) return;
      const ip = String(r.ip);
      const who = r.vendorClass ? String(r.vendorClass) : 'no vendor class';
      const boot = r.bootFile ? ` -> ${String(r.bootFile)}` : '';
      const ipxe = r.userClassIpxe ? ', iPXE' : '';
      if (msg === 'dhcp ack') {
        vm.ip = ip;
        this.byIp.set(ip, vm);
        vm.acks.push({ vendorClass: (r.vendorClass as string | null) ?? null, bootFile: (r.bootFile as string | null) ?? null, ip });
      }
      this.add(vm, msg === 'dhcp ack' ? 'dhcp-ack' : 'dhcp-offer', `DHCP ${msg === 'dhcp ack' ? 'ack' : 'offer'} ${ip} (${who}${ipxe})${boot}`, { ip, vendorClass: r.vendorClass ?? null, arch: r.arch ?? null, bootFile: r.bootFile ?? null });
      return;
    }
    if (msg === 'host phase' || msg === 'smoke test finished' || msg === 'audit report stored' || msg === 'audit report refused') {
      const vm = this.vms.find((v) => v.name === r.host);
      if (!vm) return;
      if (msg === 'host phase') {
        if (r.phase === 'os-dhcp') this.add(vm, 'os-lease', `OS took its lease ${String(r.ip)} (bootd: phase os-dhcp)`);
        if (r.phase === 'up') this.add(vm, 'ssh', `SSH answers at ${String(r.ip)} (bootd: host up)`);
        return;
      }
      if (msg === 'smoke test finished') {
        const failed = Array.isArray(r.failed) ? r.failed.map(String) : [];
        vm.smoke = { ok: r.ok === true, failed, ...(typeof r.error === 'string' ? { error: r.error } : {}) };
        this.add(vm, 'smoke', r.ok === true ? `smoke test passed (${String(r.passed)} checks)` : `smoke test FAILED: ${typeof r.error === 'string' ? r.error : failed.join('; ')}`, { ok: r.ok, failed });
        return;
      }
      this.add(vm, 'audit', msg === 'audit report stored' ? `audit report stored as inventory (${String(r.summary ?? '')})` : `audit report refused: ${String(r.error)}`);
      return;
    }
    if (msg === 'tftp transfer' || msg === 'http transfer' || msg === 'tftp request refused') {
      const peer = String(r.peer ?? '');
      const vm = this.byIp.get(peer.slice(0, peer.lastIndexOf(':')));
      if (!vm) return;
      const file = String(r.file ?? '');
      if (msg === 'tftp request refused') {
        this.add(vm, 'refused', `TFTP ${file}: ${String(r.reason ?? 'refused')}`, { file, reason: r.reason });
        return;
      }
      if (msg === 'http transfer' && r.outcome === 'refused') {
        this.add(vm, 'refused', `HTTP ${file}: ${String(r.status)} ${String(r.detail ?? '')}`, { file, status: r.status });
        return;
      }
      const via = msg === 'http transfer' ? 'http' : 'tftp';
      const bytes = Number(r.bytes ?? 0);
      const ms = Number(r.durationMs ?? 0);
      const outcome = String(r.outcome ?? '');
      if (r.direction === 'write') {
        if (outcome === 'complete') vm.uploads.push(file);
        this.add(vm, 'upload', `upload ${file} ${kib(bytes)} ${outcome}`, { file, bytes, outcome });
        return;
      }
      vm.files.push({ file, via, bytes, ms, outcome });
      const what = outcome === 'complete' ? `${kib(bytes)} in ${(ms / 1000).toFixed(2)} s` : outcome === 'probe-aborted' ? 'size probe (client aborted after OACK)' : `${outcome} after ${kib(bytes)}`;
      this.add(vm, 'file', `${via.toUpperCase()} ${file} ${what}`, { file, via, bytes, ms, outcome, blksize: r.blksize, windowsize: r.windowsize });
    }
  }

  /** One line from a VM's serial console. */
  onSerialLine(vmName: string, line: string): void {
    const vm = this.vms.find((v) => v.name === vmName);
    if (!vm) return;
    if (vm.kernelAt === undefined && KERNEL_MARKER.test(line)) {
      vm.kernelAt = this.now();
      this.add(vm, 'kernel', 'kernel started');
      return;
    }
    if (vm.refused === undefined && vm.upAt === undefined && FIRMWARE_REFUSED.test(line)) {
      vm.refused = line.trim();
      this.add(vm, 'firmware-refused', `the firmware refused to run what it loaded (Secure Boot): "${vm.refused}"`, { line: vm.refused, lastFile: vm.files.at(-1)?.file ?? null });
      return;
    }
    if (vm.gaveUp === undefined && vm.upAt === undefined && GAVE_UP_MARKER.test(line)) {
      vm.gaveUp = line.trim();
      this.add(vm, 'gave-up', `boot loader gave up: "${vm.gaveUp}"`);
      return;
    }
    const m = UP_MARKER.exec(line);
    if (m && vm.upAt === undefined) {
      vm.upAt = this.now();
      this.add(vm, 'up', `userland up: image ${m[1]}, ip ${m[2]}`, { image: m[1], ip: m[2] });
    }
  }
}
