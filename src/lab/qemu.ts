/**
 * QEMU command lines for lab VMs (pure), and the accelerator probe.
 *
 * Firmware facts (WIRE.md, seen with QEMU 7.2 on Debian 12):
 * - SeaBIOS prints to VGA only; fw_cfg `etc/sercon-port` = 0x3f8 mirrors it,
 *   iPXE and PXELINUX to ttyS0. (QEMU warns the name should start with opt/; harmless.)
 * - QEMU's NIC option ROM is iPXE under SeaBIOS and OVMF alike; `romfile=`
 *   empty leaves OVMF's own virtio-net driver and PxeBcDxe to boot.
 * - The Debian cloud kernel has no e1000: virtio-net-pci.
 * - /dev/kvm may be a nested PVM hypervisor that cannot run firmware code
 *   ("KVM internal error"): probe, fall back to TCG.
 */
import { withMokList } from './mok.js';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';

export type Firmware = 'bios' | 'uefi';
export type NicRom = 'ipxe' | 'none';
export type Accel = 'kvm' | 'tcg';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/**
 * Secure Boot: the code built with SMM (the variable store only writable
 * from SMM, so q35 with smm=on and a secure pflash), and variables with
 * Microsoft's keys enrolled and Secure Boot enforced (Debian's ovmf).
 */
export const OVMF_CODE_SECBOOT = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
export const OVMF_VARS_MS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
export const QEMU = 'qemu-system-x86_64';
/** arm64 VMs: QEMU's virt machine with AAVMF, Debian's edk2 for it (qemu-efi-aarch64), under TCG. */
export const QEMU_ARM64 = 'qemu-system-aarch64';
export const AAVMF_CODE = '/usr/share/AAVMF/AAVMF_CODE.fd';
export const AAVMF_VARS = '/usr/share/AAVMF/AAVMF_VARS.fd';
export const AAVMF_VARS_MS = '/usr/share/AAVMF/AAVMF_VARS.ms.fd';

/** The QEMU program for a VM's architecture. */
export function qemuFor(arch: 'amd64' | 'arm64' | undefined): string {
  return arch === 'arm64' ? QEMU_ARM64 : QEMU;
}

export interface VmSpec {
  readonly name: string;
  readonly mac: string;
  /** SMBIOS UUID: firmware sends it as DHCP option 97. */
  readonly uuid: string;
  readonly tap: string;
  readonly firmware: Firmware;
  readonly rom: NicRom;
  readonly memoryMiB: number;
  readonly accel: Accel;
  readonly serialLog: string;
  /** bios: the 2-byte sercon-port file; uefi: this VM's copy of the OVMF variable store. */
  readonly firmwareFile: string;
  /** uefi: OVMF with Secure Boot enforced (Microsoft's keys enrolled). */
  readonly secureBoot?: boolean;
  /** uefi: 'http' turns OVMF's PXE off, so the NIC boots by UEFI HTTP Boot alone. */
  readonly netBoot?: 'pxe' | 'http';
  /** arm64: QEMU's virt machine with AAVMF (uefi only); default amd64. */
  readonly arch?: 'amd64' | 'arm64';
}

export function qemuArgs(v: VmSpec): string[] {
  if (v.arch === 'arm64') return qemuArgsArm64(v);
  const nic = `virtio-net-pci,netdev=n0,mac=${v.mac},bootindex=1${v.rom === 'none' ? ',romfile=' : ''}`;
  const a = [
    '-name', v.name, '-m', String(v.memoryMiB), '-smp', '1', '-no-reboot', '-nodefaults', '-uuid', v.uuid,
    // not -nographic: it would take the serial port from -serial file: (WIRE.md)
    '-display', 'none', '-vga', 'none', '-monitor', 'none', '-serial', `file:${v.serialLog}`,
    '-netdev', `tap,id=n0,ifname=${v.tap},script=no,downscript=no`, '-device', nic,
    ...(v.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']),
  ];
  if (v.firmware === 'uefi') {
    if (v.secureBoot === true) {
      a.push('-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on', '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE_SECBOOT}`);
    } else {
      a.push('-machine', 'q35', '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    }
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${v.firmwareFile}`);
    // OVMF reads these fw_cfg knobs (OvmfPkg PlatformDxe): no PXE, so the boot manager's next NIC entry is HTTP Boot
    if (v.netBoot === 'http') a.push('-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no');
  } else {
    a.push('-machine', 'pc', '-boot', 'order=n', '-fw_cfg', `name=etc/sercon-port,file=${v.firmwareFile}`);
  }
  return a;
}

/**
 * arm64: `-M virt` (its serial console is the PL011, ttyAMA0), a Cortex-A57
 * (`-cpu max` makes TCG emulate pointer authentication, much slower), AAVMF
 * in two 64 MiB flash banks, the NIC's own ROM off (AAVMF's virtio-net and
 * PXE do the boot), always TCG on an x86 build host.
 */
function qemuArgsArm64(v: VmSpec): string[] {
  const nic = `virtio-net-pci,netdev=n0,mac=${v.mac},bootindex=1,romfile=`;
  const a = [
    '-name', v.name, '-M', 'virt', '-cpu', 'cortex-a57', '-m', String(v.memoryMiB), '-smp', '1', '-no-reboot', '-nodefaults', '-uuid', v.uuid,
    '-display', 'none', '-monitor', 'none', '-serial', `file:${v.serialLog}`,
    '-netdev', `tap,id=n0,ifname=${v.tap},script=no,downscript=no`, '-device', nic,
    '-accel', 'tcg',
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${AAVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${v.firmwareFile}`,
  ];
  if (v.netBoot === 'http') a.push('-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no');
  return a;
}

/**
 * Writes what qemuArgs() points at: the sercon-port file or the VM's own
 * OVMF_VARS (AAVMF_VARS) copy; with `mokCert` (DER), that certificate
 * enrolled as a machine owner key (./mok.ts).
 */
export async function prepareFirmwareFile(v: Pick<VmSpec, 'firmware' | 'firmwareFile' | 'secureBoot' | 'arch'>, mokCert?: Buffer): Promise<void> {
  if (v.arch === 'arm64') await fs.copyFile(v.secureBoot === true ? AAVMF_VARS_MS : AAVMF_VARS, v.firmwareFile);
  else if (v.firmware === 'uefi') await fs.copyFile(v.secureBoot === true ? OVMF_VARS_MS : OVMF_VARS, v.firmwareFile);
  else await fs.writeFile(v.firmwareFile, Buffer.from([0xf8, 0x03])); // 0x3f8, little-endian
  if (mokCert !== undefined && v.firmware === 'uefi') await fs.writeFile(v.firmwareFile, withMokList(await fs.readFile(v.firmwareFile), mokCert));
}

export interface AccelChoice {
  readonly accel: Accel;
  readonly reason: string;
}

/**
 * KVM only when it can run firmware: a short SeaBIOS boot under KVM must
 * print its banner on the serial port. Nested PVM hosts (module kvm_pvm) fail
 * on real-mode code, so they are not even tried.
 */
export async function probeAccel(workDir: string, want: 'auto' | Accel): Promise<AccelChoice> {
  if (want === 'tcg') return { accel: 'tcg', reason: 'asked for' };
  const usable = await fs.access('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK).then(() => true, () => false);
  if (!usable) return fallback(want, 'no usable /dev/kvm');
  if (existsSync('/sys/module/kvm_pvm')) return fallback(want, 'KVM here is kvm_pvm (nested PVM), which cannot run firmware code');
  const serial = path.join(workDir, 'kvm-probe.serial');
  const sercon = path.join(workDir, 'kvm-probe.sercon');
  await fs.writeFile(sercon, Buffer.from([0xf8, 0x03]));
  await fs.writeFile(serial, '');
  const r = await execa(QEMU, ['-accel', 'kvm', '-cpu', 'host', '-m', '64', '-nodefaults', '-display', 'none', '-monitor', 'none', '-no-reboot', '-serial', `file:${serial}`, '-fw_cfg', `name=etc/sercon-port,file=${sercon}`, '-boot', 'order=n', '-nic', 'none'], {
    reject: false,
    timeout: 8_000,
    stdin: 'ignore',
  });
  const banner = (await fs.readFile(serial, 'latin1')).includes('SeaBIOS');
  const internal = /KVM internal error/.test(`${r.stdout}\n${r.stderr}`);
  await fs.rm(serial, { force: true });
  await fs.rm(sercon, { force: true });
  if (banner && !internal) return { accel: 'kvm', reason: 'SeaBIOS ran under KVM' };
  return fallback(want, internal ? 'KVM internal error while running firmware' : 'firmware printed nothing under KVM');
}

function fallback(want: 'auto' | Accel, why: string): AccelChoice {
  if (want === 'kvm') throw new Error(`--accel kvm: ${why}`);
  return { accel: 'tcg', reason: `${why}; using TCG` };
}
