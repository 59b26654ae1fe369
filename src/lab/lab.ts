/**
 * `bootd lab`: bootd netbooting QEMU VMs, end to end, in a namespace of its
 * own. Builds the image if it was never built, writes a hosts/ folder for the
 * VMs, starts `bootd serve` inside the namespace, starts the VMs with
 * `-boot n`, follows bootd's log and the serial consoles into a per-host
 * timeline, and tears everything down (processes by PID, then the namespace).
 *
 * Firmware paths (issue 5; docs/lab.md):
 *   1 bios + QEMU iPXE ROM + loader pxelinux   4 uefi + OVMF PXE + loader pxelinux
 *   2 bios + QEMU iPXE ROM + loader ipxe       5 uefi + OVMF PXE + loader ipxe
 *   3 uefi + QEMU iPXE ROM + loader pxelinux     (snponly.efi, then the script)
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { placeBootLoaders } from '../bootconfig/bootloaders.js';
import { ImageCatalog } from '../images/catalog.js';
import { buildImage, recipeDigest } from '../images/builder.js';
import { LineProgress } from '../images/progress.js';
import { ensureKeyPair } from '../images/ssh-key.js';
import { FileLeaseStore } from '../state/lease-store.js';
import { FileHostRecords } from '../state/host-records.js';
import type { BootRecord, SmokeResult } from '../afterboot/record.js';
import type { InventoryEntry } from '../afterboot/inventory.js';
import { LabNetwork } from './network.js';
import { prepareFirmwareFile, probeAccel, qemuArgs, qemuFor, type Accel, type Firmware, type NicRom } from './qemu.js';
import { ARCH, type ImageArch } from '../images/arch.js';
import { Timeline, type LabEvent, type PastAttempt, type ServedFile, type VmTrack } from './timeline.js';

export type Loader = 'pxelinux' | 'ipxe' | 'grub';
/** How a UEFI VM's NIC boots: PXE (TFTP) or UEFI HTTP Boot (OVMF's PXE turned off). */
export type NetBoot = 'pxe' | 'http';
/** How PXELINUX on BIOS loads after the NBP (bootd serve --pxelinux-http). */
export type PxelinuxHttp = 'auto' | 'lpxelinux' | 'off';

export interface LabMode {
  /** amd64 unless said (arm64: QEMU virt and AAVMF, the arm64 image). */
  readonly arch?: ImageArch;
  readonly firmware: Firmware;
  readonly rom: NicRom;
  readonly loader: Loader;
  readonly secureBoot: boolean;
  readonly netBoot: NetBoot;
  readonly what: string;
}

/** The firmware paths by number: issue 5's five, then Secure Boot and UEFI HTTP Boot (issue 24). */
export const MODES: Readonly<Record<number, LabMode>> = {
  1: { firmware: 'bios', rom: 'ipxe', loader: 'pxelinux', secureBoot: false, netBoot: 'pxe', what: 'SeaBIOS, QEMU iPXE ROM, PXELINUX' },
  2: { firmware: 'bios', rom: 'ipxe', loader: 'ipxe', secureBoot: false, netBoot: 'pxe', what: 'SeaBIOS, QEMU iPXE ROM, bootd iPXE script over HTTP' },
  3: { firmware: 'uefi', rom: 'ipxe', loader: 'pxelinux', secureBoot: false, netBoot: 'pxe', what: 'OVMF, QEMU iPXE EFI ROM, syslinux.efi' },
  4: { firmware: 'uefi', rom: 'none', loader: 'pxelinux', secureBoot: false, netBoot: 'pxe', what: 'OVMF PXE (PxeBcDxe), syslinux.efi' },
  5: { firmware: 'uefi', rom: 'none', loader: 'ipxe', secureBoot: false, netBoot: 'pxe', what: 'OVMF PXE, snponly.efi, bootd iPXE script over HTTP' },
  6: { firmware: 'uefi', rom: 'none', loader: 'grub', secureBoot: true, netBoot: 'pxe', what: 'OVMF Secure Boot, PXE, shim, signed GRUB, signed kernel' },
  7: { firmware: 'uefi', rom: 'none', loader: 'ipxe', secureBoot: false, netBoot: 'http', what: 'OVMF UEFI HTTP Boot (PXE off), snponly.efi over HTTP, bootd iPXE script' },
  // Debian 12's signed GRUB has no HTTP: shim and GRUB come in a RAM disk HTTP Boot mounts (src/bootconfig/efi-disk.ts)
  8: { firmware: 'uefi', rom: 'none', loader: 'grub', secureBoot: true, netBoot: 'http', what: 'OVMF Secure Boot, UEFI HTTP Boot of a RAM disk with shim and signed GRUB, then TFTP' },
  // arm64 (issue 25): Debian ships neither syslinux nor iPXE for it, so GRUB
  9: { arch: 'arm64', firmware: 'uefi', rom: 'none', loader: 'grub', secureBoot: false, netBoot: 'pxe', what: 'arm64: QEMU virt, AAVMF PXE, shimaa64, signed GRUB, arm64 bee (TCG)' },
  10: { arch: 'arm64', firmware: 'uefi', rom: 'none', loader: 'grub', secureBoot: false, netBoot: 'http', what: 'arm64: QEMU virt, AAVMF UEFI HTTP Boot of the arm64 RAM disk (shimaa64, GRUB), then TFTP (TCG)' },
};

export function modeOf(firmware: Firmware, rom: NicRom, loader: Loader, secureBoot = false, netBoot: NetBoot = 'pxe', arch: ImageArch = 'amd64'): number | undefined {
  for (const [n, m] of Object.entries(MODES)) if (m.firmware === firmware && m.rom === rom && m.loader === loader && m.secureBoot === secureBoot && m.netBoot === netBoot && (m.arch ?? 'amd64') === arch) return Number(n);
  return undefined;
}

export interface LabOptions {
  readonly firmware: Firmware;
  readonly rom: NicRom;
  readonly loader: Loader;
  /** uefi: OVMF with Secure Boot enforced; the hosts get secure_boot: true. */
  readonly secureBoot?: boolean;
  /** uefi: PXE (default) or UEFI HTTP Boot alone. */
  readonly netBoot?: NetBoot;
  /** The VMs' architecture (arm64: QEMU virt, AAVMF, the image's arm64 version); default amd64. */
  readonly arch?: ImageArch;
  readonly image: string;
  readonly vms: number;
  readonly imagesDir: string;
  /** bootd's state for image builds and its SSH key (baked into images); the lab's own state is per run. */
  readonly stateDir: string;
  /** Download cache for image builds; default <stateDir>/cache. */
  readonly cacheDir?: string;
  /** Stop when every VM is done (up, and for bee its audit arrived); otherwise run until aborted. */
  readonly once: boolean;
  readonly timeoutSeconds: number;
  readonly accel: 'auto' | Accel;
  readonly memoryMiB?: number;
  /** Send IPv6 router advertisements in the lab network (saves iPXE ~13 s). */
  readonly ra: boolean;
  /** bootd serve's --pxelinux-http (default auto). */
  readonly pxelinuxHttp?: PxelinuxHttp;
  /** Keep the run directory (serial logs, bootd log, uploads) even on success. */
  readonly keep: boolean;
  /** Build the image when it has no current version. */
  readonly build: boolean;
  /** A smoke script to run instead of the image's (to see a failing check recorded). */
  readonly smokeScript?: string;
  /** Extra kernel arguments in the VMs' host files (kernel_args). */
  readonly kernelArgs?: readonly string[];
  /** A certificate (DER) enrolled as a machine owner key in every UEFI VM's variable store, as mokutil --import leaves it. */
  readonly mokCert?: string;
  /** Power-cycle a VM whose boot loader gave up (GAVE_UP_MARKER) at most this often. */
  readonly powerCycles: number;
}

export interface VmResult {
  readonly name: string;
  readonly mac: string;
  readonly ok: boolean;
  readonly reason?: string;
  readonly ip?: string;
  readonly kernelSeconds?: number;
  readonly upSeconds?: number;
  readonly lease?: { readonly ip: string; readonly expiresAt: string };
  readonly dhcp: readonly { readonly vendorClass: string | null; readonly bootFile: string | null; readonly ip: string }[];
  readonly files: readonly ServedFile[];
  readonly audit?: { readonly file: string; readonly bytes: number; readonly schema: string; readonly collectors: Readonly<Record<string, string>> };
  /** bootd's record of this host (bootd status --json): its boot timeline, smoke result, inventory. */
  readonly record?: { readonly boot: BootRecord | null; readonly inventory: InventoryEntry | null };
  readonly smoke?: SmokeResult;
  readonly serialLog: string;
  /** Attempts before the last, each ended by a power cycle after the boot loader gave up. */
  readonly attempts?: readonly PastAttempt[];
}

export interface LabResult {
  readonly ok: boolean;
  readonly mode?: number;
  readonly firmware: Firmware;
  readonly rom: NicRom;
  readonly loader: Loader;
  readonly secureBoot: boolean;
  readonly netBoot: NetBoot;
  readonly arch: ImageArch;
  readonly image: string;
  readonly imageVersion?: string;
  readonly accel: Accel;
  readonly accelReason: string;
  readonly vms: readonly VmResult[];
  readonly events: readonly LabEvent[];
  readonly runDir: string;
  readonly bootdLog: string;
  readonly error?: string;
}

export interface LabIo {
  /** Progress and timeline lines. */
  line(s: string): void;
  readonly signal: AbortSignal;
}

const HTTP_PORT = 80;
const UPLOAD_PORT = 1069;
const AUDIT_FILE = 'bee-audit.json';

/** dist/cli/main.js (or src/ under vitest) of this checkout. */
const BOOTD_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
const BOOTD_DIST_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

function macFor(i: number): string {
  return `52:54:00:b0:07:${(i + 1).toString(16).padStart(2, '0')}`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What the lab keeps of a process it started (execa's subprocess). */
interface Child extends PromiseLike<unknown> {
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  kill(signal?: NodeJS.Signals): boolean;
}

/** Ends a process we started, by its PID: TERM, then KILL after `graceMs`. */
async function stop(p: Child | undefined, graceMs = 5000): Promise<void> {
  if (!p || p.pid === undefined || p.exitCode !== null) return;
  p.kill('SIGTERM');
  const exited = Promise.resolve(p).then(() => true, () => true);
  if (!(await Promise.race([exited, sleep(graceMs).then(() => false)]))) {
    p.kill('SIGKILL');
    await exited;
  }
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines - 1).join('\n');
}

/** Follows a file that QEMU appends to, calling `fn` per complete line. */
class FileFollower {
  private offset = 0;
  private partial = '';

  constructor(
    private readonly file: string,
    private readonly fn: (line: string) => void,
  ) {}

  async poll(): Promise<void> {
    const fh = await fs.open(this.file, 'r').catch(() => null);
    if (!fh) return;
    try {
      const { size } = await fh.stat();
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      await fh.read(buf, 0, buf.length, this.offset);
      this.offset = size;
      // firmware paints with escape sequences and CRs: split on both
      const text = this.partial + buf.toString('latin1').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
      const parts = text.split(/\r?\n|\r/);
      this.partial = parts.pop() ?? '';
      for (const l of parts) if (l.trim() !== '') this.fn(l);
    } finally {
      await fh.close();
    }
  }
}

export async function runLab(o: LabOptions, io: LabIo): Promise<LabResult> {
  const mode = modeOf(o.firmware, o.rom, o.loader, o.secureBoot, o.netBoot, o.arch);
  if (o.arch === 'arm64' && (o.firmware !== 'uefi' || o.rom !== 'none')) throw new Error('arm64 VMs boot UEFI (AAVMF) with its own PXE: --firmware uefi --rom none');
  if (o.firmware === 'bios' && o.rom === 'none') throw new Error('--rom none needs --firmware uefi: SeaBIOS has no network boot of its own');
  if (o.firmware === 'bios' && (o.secureBoot === true || o.netBoot === 'http')) throw new Error('Secure Boot and UEFI HTTP Boot need --firmware uefi');
  if (o.firmware === 'bios' && o.mokCert !== undefined) throw new Error('--mok needs --firmware uefi (a machine owner key lives in UEFI variables)');
  if (o.netBoot === 'http' && o.rom !== 'none') throw new Error('UEFI HTTP Boot is OVMF\'s own: use --rom none');
  if (o.vms < 1 || o.vms > 16) throw new Error('--vms must be 1 to 16');
  const staleNs = await LabNetwork.removeStale();
  if (staleNs.length > 0) io.line(`removed namespaces of dead lab runs: ${staleNs.join(', ')}`);

  // 1. the image
  const { key, imageVersion } = await ensureImage(o, io);

  // 2. the run directory: TFTP root with the loaders, hosts/, bootd's state, logs
  const { runDir, tftpRoot, hostsDir, labState, bootdLog, memoryMiB, tracks } = await prepareRun(o, key);

  // arm64 guests on this x86 host run under TCG whatever KVM can do
  const accel = o.arch === 'arm64' ? { accel: 'tcg' as const, reason: 'arm64 guest on an x86-64 host' } : await probeAccel(runDir, o.accel);
  io.line(`bootd lab: mode ${mode ?? '-'} (${mode ? MODES[mode]?.what : `${o.firmware}, rom ${o.rom}, loader ${o.loader}${o.secureBoot === true ? ', Secure Boot' : ''}${o.netBoot === 'http' ? ', HTTP Boot' : ''}`}), image ${o.image}@${imageVersion}, ${o.vms} VM(s), ${accel.accel.toUpperCase()} (${accel.reason})`);

  let net: LabNetwork | undefined;
  let bootd: Child | undefined;
  let ra: Child | undefined;
  const qemus: Child[] = [];
  const t0 = performance.now();
  const timeline = new Timeline(tracks, () => performance.now(), (e) => io.line(`${e.t.toFixed(2).padStart(7)}s  ${e.vm}  ${e.text}`));
  let error: string | undefined;
  let ok = false;
  let logOut: FileHandle | undefined;
  try {
    net = await LabNetwork.create(o.vms, undefined, o.ra);
    if (o.ra) {
      // router advertisements are the network's business, not bootd's (WIRE.md: iPXE's IPv6 wait)
      const raArgv = net.exec(['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file=', `--interface=${net.bridge}`, '--bind-interfaces', '--enable-ra', `--dhcp-range=${net.addressing.ula}::,ra-only,64,1h`, '--log-facility=-']);
      ra = execa(raArgv[0] as string, raArgv.slice(1), { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
    }

    // 3. bootd inside the namespace
    await startBootd(net, o, { hostsDir, labState, tftpRoot, bootdLog }, timeline, io.signal, (child, out) => {
      bootd = child;
      logOut = out;
    });
    const bootdProc = bootd as unknown as Child; // set by startBootd before it resolves

    // 4. the VMs, 5. followed until done, timeout or Ctrl-C
    ok = await runVms({ o, io, net, runDir, tracks, memoryMiB, accel: accel.accel, timeline, qemus, bootd: bootdProc, bootdLog });
  } catch (err) {
    error = (err as Error).message;
  } finally {
    await Promise.all(qemus.map((q) => stop(q, 2000)));
    await stop(bootd, 10_000);
    await stop(ra, 2000);
    await net?.destroy();
    await logOut?.close().catch(() => {});
  }

  // 6. what bootd recorded: leases (its durable store), host records (bootd status), the uploaded audit
  const results = await collectResults(o, tracks, labState, runDir, error);
  const allOk = ok && error === undefined && results.every((r) => r.ok);
  if (!allOk) {
    for (const r of results) {
      if (r.ok) continue;
      io.line(`--- ${r.name}: ${r.reason ?? error}; serial log tail (${r.serialLog}):`);
      io.line(await tail(r.serialLog, 25));
    }
    io.line(`--- bootd log tail (${bootdLog}):`);
    io.line(await tail(bootdLog, 15));
  }
  if (allOk && !o.keep) await fs.rm(runDir, { recursive: true, force: true });
  else io.line(`run files kept in ${runDir}`);
  io.line(`lab ${allOk ? 'passed' : 'FAILED'} in ${((performance.now() - t0) / 1000).toFixed(1)} s${error ? `: ${error}` : ''}`);
  return {
    ok: allOk,
    ...(mode !== undefined ? { mode } : {}),
    firmware: o.firmware,
    rom: o.rom,
    loader: o.loader,
    secureBoot: o.secureBoot === true,
    netBoot: o.netBoot ?? 'pxe',
    arch: o.arch ?? 'amd64',
    image: o.image,
    imageVersion,
    accel: accel.accel,
    accelReason: accel.reason,
    vms: results,
    events: timeline.events,
    runDir,
    bootdLog,
    ...(error !== undefined ? { error } : {}),
  };
}

/** The image's current version, built first when it has none, its recipe changed or it lacks the lab's SSH key (with --build). */
export async function ensureImage(o: Pick<LabOptions, 'imagesDir' | 'image' | 'stateDir' | 'cacheDir' | 'build' | 'arch'>, io: LabIo): Promise<{ key: { publicKey: string; privateKey: string }; imageVersion: string }> {
  const catalog = new ImageCatalog(o.imagesDir);
  const arch = o.arch ?? 'amd64';
  let resolved = await catalog.resolve({ name: o.image }, arch);
  const key = await ensureKeyPair(o.stateDir);
  // a current version built from an older recipe would boot yesterday's image
  const recipeDir = path.join(o.imagesDir, o.image);
  const staleRecipe = resolved.ok && existsSync(path.join(recipeDir, 'recipe.yaml')) && resolved.image.manifest.inputs?.recipe_sha256 !== (await recipeDigest(recipeDir));
  // the smoke test logs in with this key: an image holding another one cannot pass it
  const keySha = createHash('sha256').update(await fs.readFile(key.publicKey)).digest('hex');
  const staleKey = resolved.ok && resolved.image.manifest.inputs?.authorized_keys_sha256 !== keySha;
  const stale = staleRecipe || staleKey;
  if (!resolved.ok || (stale && o.build)) {
    if (!o.build) throw new Error(`image ${o.image}: ${resolved.ok ? 'stale' : resolved.reason}`);
    io.line(`building image ${o.image} for ${arch} (${!resolved.ok ? `it has no current ${arch} version` : staleRecipe ? 'its recipe changed since the current version was built' : `the current version does not hold the SSH key ${key.publicKey}`})`);
    await buildImage({ imagesDir: o.imagesDir, name: o.image, arch, stateDir: o.stateDir, ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}), authorizedKeys: key.publicKey, progress: new LineProgress((l) => io.line(`  ${l}`)) });
    resolved = await catalog.resolve({ name: o.image }, arch);
    if (!resolved.ok) throw new Error(`image ${o.image}: ${resolved.reason}`);
  }
  return { key, imageVersion: resolved.image.version };

}

/** The run directory: TFTP root with the loaders, one host file per VM, bootd's state, logs. */
async function prepareRun(o: LabOptions, key: { privateKey: string }): Promise<{ runDir: string; tftpRoot: string; hostsDir: string; labState: string; bootdLog: string; memoryMiB: number; tracks: VmTrack[] }> {
  const runDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bootd-lab-'));
  const tftpRoot = path.join(runDir, 'tftp');
  const hostsDir = path.join(runDir, 'hosts');
  const labState = path.join(runDir, 'state');
  const bootdLog = path.join(runDir, 'bootd.log');
  await fs.mkdir(hostsDir, { recursive: true });
  const loaders = await placeBootLoaders(tftpRoot);
  // an amd64 run does without the arm64 loaders, and the other way round
  const missing = loaders.missing.filter((m) => (o.arch === 'arm64') === /aa64/.test(m.name));
  if (missing.length > 0) throw new Error(`boot loaders missing: ${missing.map((m) => `${m.source} (package ${m.pkg}; scripts/setup.sh)`).join(', ')}`);
  // buildos unpacks a 40 MiB zstd initrd into RAM and runs systemd: 1 GiB is tight
  const memoryMiB = o.memoryMiB ?? (o.image === 'buildos' ? 1536 : 1024);
  const tracks: VmTrack[] = [];
  for (let i = 0; i < o.vms; i++) {
    const name = `vm${i + 1}`;
    const mac = macFor(i);
    // one host file per VM, the way an operator writes them (docs/hosts.md)
    // the smoke test logs in with the key the image was built with (<stateDir>/ssh), not the run's own state
    const smoke = [`identity_file: ${key.privateKey}`, ...(o.smokeScript !== undefined ? [`script: ${path.resolve(o.smokeScript)}`] : [])];
    await fs.writeFile(path.join(hostsDir, `${name}.yaml`), `# bootd lab VM ${i + 1}\nmac: ${mac}\nimage: ${o.image}\nloader: ${o.loader}\n${o.secureBoot === true && o.loader === 'grub' ? 'secure_boot: true\n' : ''}${o.kernelArgs && o.kernelArgs.length > 0 ? `kernel_args: ${JSON.stringify(o.kernelArgs)}\n` : ''}smoke:\n${smoke.map((l) => `  ${l}\n`).join('')}`);
    tracks.push({ name, mac, startedAt: 0, uploads: [], files: [], acks: [] });
  }

  return { runDir, tftpRoot, hostsDir, labState, bootdLog, memoryMiB, tracks };
}

/** Each VM's result from what bootd recorded: leases (its durable store), host records (bootd status), the uploaded audit. */
async function collectResults(o: LabOptions, tracks: readonly VmTrack[], labState: string, runDir: string, error: string | undefined): Promise<VmResult[]> {
  const leases = await FileLeaseStore.reader(labState).list().catch(() => []);
  const records = await FileHostRecords.reader(labState).catch(() => null);
  const results: VmResult[] = [];
  for (const t of tracks) {
    const lease = leases.find((l) => l.mac === t.mac);
    let audit: VmResult['audit'];
    let reason: string | undefined;
    if (o.image === 'bee') {
      const file = path.join(labState, 'uploads', t.name, AUDIT_FILE);
      try {
        const text = await fs.readFile(file, 'utf8');
        const r = JSON.parse(text) as { schema?: string; collectors?: Record<string, { status?: string }> };
        audit = { file, bytes: Buffer.byteLength(text), schema: String(r.schema), collectors: Object.fromEntries(Object.entries(r.collectors ?? {}).map(([k, v]) => [k, String(v.status)])) };
        if (r.schema !== 'bee-audit/1') reason = `audit report has schema ${String(r.schema)}`;
      } catch (err) {
        reason = `no audit report: ${(err as Error).message}`;
      }
    }
    const boot = (await records?.boots(t.name, { limit: 1 }))?.items[0] ?? null;
    const inventory = (await records?.inventory(t.name)) ?? null;
    const smoke = boot?.smoke;
    if (o.image === 'bee' && reason === undefined && !inventory) reason = 'bootd stored no inventory from the audit report';
    if (!smoke) reason = reason ?? 'bootd recorded no smoke test';
    else if (!smoke.ok) reason = reason ?? `smoke test failed: ${smoke.error ?? smoke.failed.join('; ')}`;
    if (t.upAt === undefined) reason = 'no BOOTD-UP marker on the serial console';
    if (!lease) reason = reason ?? 'bootd recorded no lease';
    results.push({
      name: t.name,
      mac: t.mac,
      ok: reason === undefined && error === undefined,
      ...(reason !== undefined ? { reason } : {}),
      ...(t.ip !== undefined ? { ip: t.ip } : {}),
      ...(t.kernelAt !== undefined ? { kernelSeconds: Math.round(t.kernelAt - t.startedAt) / 1000 } : {}),
      ...(t.upAt !== undefined ? { upSeconds: Math.round(t.upAt - t.startedAt) / 1000 } : {}),
      ...(lease ? { lease: { ip: lease.ip, expiresAt: new Date(lease.expiresAt).toISOString() } } : {}),
      dhcp: t.acks,
      files: t.files,
      ...(audit ? { audit } : {}),
      record: { boot, inventory },
      ...(smoke ? { smoke } : {}),
      serialLog: path.join(runDir, `${t.name}.serial.log`),
      ...(t.attempts ? { attempts: t.attempts } : {}),
    });
  }
  return results;
}

/** bootd inside the lab namespace, its log lines into the file and the timeline; resolves once DHCP listens. */
async function startBootd(net: LabNetwork, o: LabOptions, p: { readonly hostsDir: string; readonly labState: string; readonly tftpRoot: string; readonly bootdLog: string }, timeline: Timeline, signal: AbortSignal, started: (child: Child, log: FileHandle) => void): Promise<void> {
  const main = existsSync(BOOTD_MAIN) ? BOOTD_MAIN : BOOTD_DIST_MAIN;
  const [range0, range1] = net.range;
  const serveArgs = [
    process.execPath, main, 'serve',
    '--interface', net.bridge, '--listen', net.serverIp, '--dhcp-range', `${range0}-${range1}`,
    '--hosts', p.hostsDir, '--images', path.resolve(o.imagesDir), '--state', p.labState, '--tftp-root', p.tftpRoot,
    '--http-port', String(HTTP_PORT), '--pxelinux-http', o.pxelinuxHttp ?? 'auto', '--report-tftp-port', String(UPLOAD_PORT),
    '--kernel-args', `console=${ARCH[o.arch ?? 'amd64'].console},115200`, '--dhcp-probe-ms', '500', '--log-format', 'json',
  ];
  const argv = net.exec(serveArgs);
  const out = await fs.open(p.bootdLog, 'w');
  const bootdProc = execa(argv[0] as string, argv.slice(1), { reject: false, stdin: 'ignore', buffer: false, all: true });
  started(bootdProc, out);
  let ready = false;
  const lines = readline.createInterface({ input: bootdProc.all });
  lines.on('line', (l) => {
    out.write(`${l}\n`).catch(() => {}); // lines after teardown have nowhere to go
    if (l.includes('"msg":"dhcp listening"')) ready = true;
    timeline.onBootdLine(l);
  });
  const readyBy = performance.now() + 20_000;
  while (!ready && performance.now() < readyBy && bootdProc.exitCode === null && !signal.aborted) await sleep(50);
  if (!ready) throw new Error(`bootd did not start: ${await tail(p.bootdLog, 10)}`);
}

interface VmRun {
  readonly o: LabOptions;
  readonly io: LabIo;
  readonly net: LabNetwork;
  readonly runDir: string;
  readonly tracks: VmTrack[];
  readonly memoryMiB: number;
  readonly accel: Accel;
  readonly timeline: Timeline;
  /** Filled with each VM's QEMU as it starts (the caller stops them, whatever happens). */
  readonly qemus: Child[];
  readonly bootd: Child;
  readonly bootdLog: string;
}

/** Starts the VMs and follows them until every one is done (true), the timeout, Ctrl-C, or a failure (thrown). */
async function runVms({ o, io, net, runDir, tracks, memoryMiB, accel, timeline, qemus, bootd, bootdLog }: VmRun): Promise<boolean> {
  // 4. the VMs
  const followers: FileFollower[] = [];
  const lnet = net;
  const startVm = async (i: number): Promise<void> => {
    const t = tracks[i] as VmTrack;
    const serialLog = path.join(runDir, `${t.name}.serial.log`);
    const firmwareFile = path.join(runDir, `${t.name}.${o.firmware === 'uefi' ? 'OVMF_VARS.fd' : 'sercon-port'}`);
    await prepareFirmwareFile({ firmware: o.firmware, firmwareFile, secureBoot: o.secureBoot === true, arch: o.arch ?? 'amd64' }, o.mokCert !== undefined ? await fs.readFile(o.mokCert) : undefined);
    await fs.writeFile(serialLog, '');
    const spec = { name: t.name, mac: t.mac, uuid: `b0070000-0000-4000-8000-${t.mac.replace(/:/g, '')}`, tap: lnet.taps[i] as string, firmware: o.firmware, rom: o.rom, memoryMiB, accel, serialLog, firmwareFile, secureBoot: o.secureBoot === true, netBoot: o.netBoot ?? 'pxe', arch: o.arch ?? 'amd64' };
    const qargv = lnet.exec([qemuFor(o.arch), ...qemuArgs(spec)]);
    await fs.writeFile(path.join(runDir, `${t.name}.qemu.cmd`), `${qargv.join(' ')}\n`);
    qemus[i] = execa(qargv[0] as string, qargv.slice(1), { reject: false, stdin: 'ignore', stdout: { file: path.join(runDir, `${t.name}.qemu.log`) }, stderr: { file: path.join(runDir, `${t.name}.qemu.err`) } });
    followers[i] = new FileFollower(serialLog, (l) => timeline.onSerialLine(t.name, l));
  };
  for (let i = 0; i < tracks.length; i++) {
    const t = tracks[i] as VmTrack;
    t.startedAt = performance.now();
    await startVm(i);
    timeline.note(t.name, 'qemu', `QEMU started (${t.mac}, ${o.firmware}, rom ${o.rom})`);
  }
  // A boot loader that gave up (PXELINUX's kaboom) waits for a key or its own
  // 5-minute reset; the lab does what a BMC watchdog would: power-cycles the VM,
  // at most o.powerCycles times, and records the lost attempt (docs/lab.md).
  const powerCycle = async (i: number): Promise<void> => {
    const t = tracks[i] as VmTrack;
    await stop(qemus[i], 2000);
    await followers[i]?.poll();
    const n = (t.attempts?.length ?? 0) + 1;
    const moved = path.join(runDir, `${t.name}.serial.attempt${n}.log`);
    await fs.rename(path.join(runDir, `${t.name}.serial.log`), moved);
    timeline.powerCycle(t.name, moved);
    await startVm(i);
  };

  // 5. follow until done, timeout or Ctrl-C
  const deadline = performance.now() + o.timeoutSeconds * 1000;
  // done: userland up, the audit report in (bee), and bootd's smoke test finished, pass or fail
  const done = (t: VmTrack): boolean => t.upAt !== undefined && (o.image !== 'bee' || t.uploads.includes(`${t.name}/${AUDIT_FILE}`)) && t.smoke !== undefined;
  let announced = false;
  while (!io.signal.aborted) {
    await Promise.all(followers.map((f) => f.poll()));
    if (bootd.exitCode !== null) throw new Error(`bootd exited (${bootd.exitCode}): ${await tail(bootdLog, 10)}`);
    const all = tracks.every(done);
    if (all && o.once) break;
    if (all && !announced) {
      announced = true;
      io.line('every VM is up; Ctrl-C ends the lab');
    }
    if (o.once && performance.now() > deadline) throw new Error(`timed out after ${o.timeoutSeconds} s waiting for ${tracks.filter((t) => !done(t)).map((t) => t.name).join(', ')}`);
    for (const t of tracks) {
      // a signature check fails the same way every time: no power cycle
      if (t.refused !== undefined && !done(t)) throw new Error(`the firmware of ${t.name} refused ${t.files.filter((f) => f.outcome === 'complete').at(-1)?.file ?? 'the boot file'} ("${t.refused}")`);
    }
    for (const [i, t] of tracks.entries()) {
      if (t.gaveUp === undefined || done(t)) continue;
      const cycles = t.attempts?.length ?? 0;
      // out of power cycles: fail now rather than wait out the loader's own reset
      if (cycles >= o.powerCycles) throw new Error(`the boot loader of ${t.name} gave up ("${t.gaveUp}")${cycles > 0 ? ` in each of ${cycles + 1} attempts` : ''}`);
      await powerCycle(i);
    }
    for (const [i, q] of qemus.entries()) {
      const t = tracks[i] as VmTrack;
      if (q.exitCode !== null && !done(t)) throw new Error(`QEMU for ${t.name} exited (${q.exitCode}): ${await tail(path.join(runDir, `${t.name}.qemu.err`), 5)}`);
    }
    await sleep(100, io.signal);
  }
  if (io.signal.aborted && o.once) throw new Error('interrupted');
  return tracks.every(done);
}
