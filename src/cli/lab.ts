/**
 * `bootd lab`: the netboot lab (src/lab/lab.ts; docs/lab.md). Needs root
 * (network namespaces, taps). Live timeline on stderr when --json puts the
 * result on stdout, else on stdout.
 */
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { MODES, runLab, type LabResult, type Loader, type NetBoot, type PxelinuxHttp } from '../lab/lab.js';
import type { Accel, Firmware, NicRom } from '../lab/qemu.js';

function wholeNumber(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}
const posInt = (max: number): ((v: string) => number) => wholeNumber(1, max);

interface LabCliOptions {
  smokeScript?: string;
  kernelArg?: string[];
  mok?: string;
  mode?: number;
  firmware: Firmware;
  rom?: NicRom;
  loader: Loader;
  secureBoot?: boolean;
  netBoot: NetBoot;
  arch: 'amd64' | 'arm64';
  image: string;
  vms: number;
  once?: boolean;
  json?: boolean;
  timeout: number;
  accel: 'auto' | Accel;
  memory?: number;
  ra: boolean;
  pxelinuxHttp: PxelinuxHttp;
  keep?: boolean;
  build: boolean;
  images: string;
  state: string;
  cache?: string;
  powerCycles: number;
}

function summary(r: LabResult): string[] {
  return r.vms.map((v) => {
    const files = v.files.filter((f) => f.outcome === 'complete').map((f) => `${f.file}(${f.via})`).join(' ');
    const audit = v.audit ? ` audit ${v.audit.bytes} B ${Object.entries(v.audit.collectors).map(([k, s]) => `${k}:${s.split(':')[0]}`).join(',')}` : '';
    const cycles = v.attempts?.length ? ` after ${v.attempts.length} power cycle(s)` : '';
    return `${v.ok ? 'PASS' : 'FAIL'} ${v.name} ${v.mac} ip=${v.lease?.ip ?? '-'} up=${v.upSeconds ?? '-'}s${cycles} kernel=${v.kernelSeconds ?? '-'}s files: ${files}${audit}${v.reason ? ` (${v.reason})` : ''}`;
  });
}

export function addLabCommand(program: Command): void {
  program
    .command('lab')
    .description('boot QEMU VMs from bootd in an isolated network namespace and show each host\'s timeline (root)')
    .addOption(new Option('--mode <n>', `firmware path 1-${Object.keys(MODES).length}: ${Object.entries(MODES).map(([n, m]) => `${n} = ${m.what}`).join('; ')}`).argParser(posInt(Object.keys(MODES).length)))
    .addOption(new Option('--firmware <fw>', 'VM firmware').choices(['bios', 'uefi']).default('bios'))
    .addOption(new Option('--rom <rom>', 'NIC option ROM: QEMU\'s iPXE, or none (OVMF\'s own PXE; uefi only)').choices(['ipxe', 'none']))
    .addOption(new Option('--loader <loader>', 'what the hosts boot through').choices(['pxelinux', 'ipxe', 'grub']).default('pxelinux'))
    .option('--secure-boot', 'uefi: OVMF with Secure Boot enforced (Microsoft\'s keys); hosts with loader grub get secure_boot: true')
    .addOption(new Option('--net-boot <how>', 'uefi: PXE, or UEFI HTTP Boot alone (OVMF\'s PXE off; --rom none)').choices(['pxe', 'http']).default('pxe'))
    .addOption(new Option('--arch <arch>', 'the VMs\' architecture: arm64 is QEMU\'s virt machine with AAVMF (--firmware uefi --rom none), booting the image\'s arm64 version (built first when there is none)').choices(['amd64', 'arm64']).default('amd64'))
    .option('--image <name>', 'image the VMs boot (built first if it has no current version)', 'bee')
    .option('--vms <n>', 'number of VMs', posInt(16), 1)
    .option('--once', 'exit when every VM is up (and for bee, its audit arrived); exit status 0 only then')
    .option('--json', 'print the result as JSON on stdout (the timeline goes to stderr)')
    .option('--timeout <seconds>', 'with --once: give up after this long', posInt(3600), 300)
    .addOption(new Option('--accel <accel>', 'QEMU accelerator; auto probes KVM and falls back to TCG').choices(['auto', 'kvm', 'tcg']).default('auto'))
    .option('--memory <MiB>', 'VM memory (default 1024, 1536 for buildos)', posInt(65536))
    .option('--no-ra', 'do not send IPv6 router advertisements in the lab network (iPXE then waits ~13 s)')
    .addOption(new Option('--pxelinux-http <how>', "bootd serve's --pxelinux-http: auto (QEMU's iPXE ROM: pxelinux.0, then everything over iPXE's HTTP), lpxelinux (http/lpxelinux.0 with its own TCP stack, as plain PXE ROMs get it), off (TFTP)").choices(['auto', 'lpxelinux', 'off']).default('auto'))
    .option('--power-cycles <n>', "power-cycle a VM whose boot loader gave up (PXELINUX's 'Boot failed: press a key to retry') at most n times; each is on the timeline and in the result", wholeNumber(0, 10), 1)
    .option('--keep', 'keep the run directory (serial logs, bootd log, uploads) after a passing run')
    .option('--no-build', 'fail instead of building a missing image')
    .option('--smoke-script <file>', "run this script as the VMs' smoke test instead of the image's (PASS/FAIL lines, exit 0 = passed)")
    .option('--mok <cert.der>', 'enrol this certificate (DER) as a machine owner key in the UEFI VMs, as mokutil --import and MokManager would (to boot modules signed with recipe nvidia: sign: under Secure Boot)')
    .option('--kernel-arg <arg>', "an extra kernel argument in the VMs' host files (kernel_args; repeat for more), e.g. bee.nvidia=load", (v: string, prev: string[] = []) => [...prev, v])
    .option('--images <dir>', 'image catalog', 'images')
    .option('--state <dir>', 'state for image builds and bootd\'s SSH key', '/var/lib/bootd')
    .option('--cache <dir>', 'download cache for image builds (default <state>/cache)')
    .action(async (o: LabCliOptions) => {
      if (process.getuid?.() !== 0) {
        process.stderr.write('bootd lab: needs root (network namespaces and taps)\n');
        process.exitCode = 1;
        return;
      }
      const m = o.mode !== undefined ? MODES[o.mode] : undefined;
      const firmware = m?.firmware ?? o.firmware;
      const ac = new AbortController();
      const onSig = (): void => ac.abort();
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      const out = o.json ? process.stderr : process.stdout;
      try {
        const r = await runLab(
          {
            firmware,
            rom: m?.rom ?? o.rom ?? 'ipxe',
            loader: m?.loader ?? o.loader,
            secureBoot: o.secureBoot === true || (m?.secureBoot ?? false),
            netBoot: m?.netBoot ?? o.netBoot,
            arch: m?.arch ?? o.arch,
            image: o.image,
            vms: o.vms,
            imagesDir: path.resolve(o.images),
            stateDir: path.resolve(o.state),
            ...(o.cache !== undefined ? { cacheDir: path.resolve(o.cache) } : {}),
            once: o.once === true,
            timeoutSeconds: o.timeout,
            accel: o.accel,
            ...(o.memory !== undefined ? { memoryMiB: o.memory } : {}),
            ra: o.ra,
            pxelinuxHttp: o.pxelinuxHttp,
            keep: o.keep === true,
            build: o.build,
            powerCycles: o.powerCycles,
            ...(o.smokeScript !== undefined ? { smokeScript: String(o.smokeScript) } : {}),
            ...(o.kernelArg !== undefined ? { kernelArgs: o.kernelArg } : {}),
            ...(o.mok !== undefined ? { mokCert: path.resolve(o.mok) } : {}),
          },
          { line: (s) => out.write(`${s}\n`), signal: ac.signal },
        );
        if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        else for (const l of summary(r)) out.write(`${l}\n`);
        process.exitCode = r.ok || (!o.once && ac.signal.aborted && r.error === undefined) ? 0 : 1;
      } catch (err) {
        process.stderr.write(`bootd lab: ${(err as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });
}
