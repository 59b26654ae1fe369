import { describe, expect, it } from 'vitest';
import { Timeline, type LabEvent, type VmTrack } from '../../src/lab/timeline.js';
import { qemuArgs, qemuFor } from '../../src/lab/qemu.js';
import { MODES, modeOf } from '../../src/lab/lab.js';

function track(name: string, mac: string): VmTrack {
  return { name, mac, startedAt: 1000, uploads: [], files: [], acks: [] };
}

const log = (o: Record<string, unknown>): string => JSON.stringify({ level: 30, time: 't', ...o });

describe('lab timeline', () => {
  it('follows one host from bootd log lines and its serial console', () => {
    let now = 1000;
    const seen: LabEvent[] = [];
    const vm = track('vm1', '52:54:00:b0:07:01');
    const other = track('vm2', '52:54:00:b0:07:02');
    const t = new Timeline([vm, other], () => now, (e) => seen.push(e));
    now = 3310;
    t.onBootdLine(log({ msg: 'dhcp offer', mac: vm.mac, ip: '198.18.77.100', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClassIpxe: true, bootFile: 'pxelinux.0' }));
    t.onBootdLine(log({ msg: 'dhcp ack', mac: vm.mac, ip: '198.18.77.100', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', bootFile: 'pxelinux.0' }));
    // a transfer is tied to the host by the address its lease gave
    t.onBootdLine(log({ msg: 'tftp transfer', peer: '198.18.77.100:2070', file: 'pxelinux.0', direction: 'read', bytes: 42414, durationMs: 12, outcome: 'complete', blksize: 1432, windowsize: 1 }));
    t.onBootdLine(log({ msg: 'tftp transfer', peer: '198.18.77.100:2071', file: 'syslinux.efi', direction: 'read', bytes: 0, durationMs: 1, outcome: 'probe-aborted' }));
    t.onBootdLine(log({ msg: 'http transfer', peer: '198.18.77.100:40000', file: 'images/bee/1/vmlinuz', bytes: 10, durationMs: 220, outcome: 'complete', status: 200 }));
    t.onBootdLine(log({ msg: 'tftp request refused', peer: '198.18.77.100:2072', file: 'pxelinux.cfg/C6124D64', reason: 'not found' }));
    t.onBootdLine(log({ msg: 'tftp transfer', peer: '198.18.77.100:2073', file: 'vm1/bee-audit.json', direction: 'write', bytes: 6603, outcome: 'complete' }));
    // strangers and noise are ignored
    t.onBootdLine(log({ msg: 'tftp transfer', peer: '198.18.77.150:2070', file: 'x', bytes: 1, outcome: 'complete' }));
    t.onBootdLine(log({ msg: 'dhcp ack', mac: '52:54:00:00:00:99', ip: '198.18.77.150' }));
    t.onBootdLine('not json at all');
    t.onBootdLine('{"broken":');
    now = 12000;
    t.onSerialLine('vm1', '[    0.000000] Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)');
    now = 16960;
    t.onSerialLine('vm1', 'BOOTD-UP image=bee ip=198.18.77.100');
    t.onSerialLine('vm1', 'BOOTD-UP image=bee ip=198.18.77.100'); // once only

    expect(seen.map((e) => e.kind)).toEqual(['dhcp-offer', 'dhcp-ack', 'file', 'file', 'file', 'refused', 'upload', 'kernel', 'up']);
    expect(seen[0]).toMatchObject({ t: 2.31, vm: 'vm1', text: 'DHCP offer 198.18.77.100 (PXEClient:Arch:00000:UNDI:002001, iPXE) -> pxelinux.0' });
    expect(seen[3]?.text).toBe('TFTP syslinux.efi size probe (client aborted after OACK)');
    expect(seen[4]?.text).toBe('HTTP images/bee/1/vmlinuz 0.0 KiB in 0.22 s');
    expect(vm.ip).toBe('198.18.77.100');
    expect(vm.files.map((f) => [f.file, f.via, f.outcome])).toEqual([['pxelinux.0', 'tftp', 'complete'], ['syslinux.efi', 'tftp', 'probe-aborted'], ['images/bee/1/vmlinuz', 'http', 'complete']]);
    expect(vm.uploads).toEqual(['vm1/bee-audit.json']);
    expect(vm.kernelAt).toBe(12000);
    expect(vm.upAt).toBe(16960);
    expect(seen[8]?.data).toEqual({ image: 'bee', ip: '198.18.77.100' });
    expect(other.files).toEqual([]);
  });

  it("sees PXELINUX give up, and a power cycle moves that attempt aside and starts the next one empty", () => {
    let now = 1000;
    const seen: LabEvent[] = [];
    const vm = track('vm1', '52:54:00:b0:07:01');
    const t = new Timeline([vm], () => now, (e) => seen.push(e));
    // the first attempt: lpxelinux's TCP stack dies while it loads the initrd (CI, session 12)
    t.onBootdLine(log({ msg: 'dhcp ack', mac: vm.mac, ip: '198.18.77.100', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', bootFile: 'http/lpxelinux.0' }));
    t.onBootdLine(log({ msg: 'http transfer', peer: '198.18.77.100:49153', file: 'images/buildos/1/vmlinuz', bytes: 14186432, durationMs: 3751, outcome: 'complete', status: 200 }));
    expect(t.powerCycle('vm1', '/r/vm1.serial.attempt1.log')).toBeNull(); // nothing gave up: no cycle
    t.onSerialLine('vm1', 'Loading http://198.18.77.1:80/images/buildos/1/initrd.img...');
    now = 7000;
    t.onSerialLine('vm1', 'Boot failed: press a key to retry, or wait for reset...');
    t.onSerialLine('vm1', 'Boot failed: press a key to retry, or wait for reset...'); // once per attempt
    expect(vm.gaveUp).toBe('Boot failed: press a key to retry, or wait for reset...');
    now = 7500;
    const past = t.powerCycle('vm1', '/r/vm1.serial.attempt1.log');
    expect(past).toMatchObject({ atSeconds: 6.5, gaveUp: vm.attempts?.[0]?.gaveUp, serialLog: '/r/vm1.serial.attempt1.log' });
    expect(past?.files.map((f) => f.file)).toEqual(['images/buildos/1/vmlinuz']);
    expect(past?.acks.map((a) => a.bootFile)).toEqual(['http/lpxelinux.0']);
    expect(vm.files).toEqual([]);
    expect(vm.acks).toEqual([]);
    expect(vm.gaveUp).toBeUndefined();
    // the second attempt is followed as the first was; times still count from the first start
    now = 9000;
    t.onBootdLine(log({ msg: 'dhcp ack', mac: vm.mac, ip: '198.18.77.100', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', bootFile: 'http/lpxelinux.0' }));
    now = 20000;
    t.onSerialLine('vm1', '[    0.000000] Linux version 6.1.0-56-cloud-amd64');
    t.onSerialLine('vm1', 'BOOTD-UP image=buildos ip=198.18.77.100');
    t.onSerialLine('vm1', 'Boot failed: press a key to retry'); // after userland is up: not a boot loader
    expect(vm.acks).toHaveLength(1);
    expect(vm.gaveUp).toBeUndefined();
    expect(vm.attempts).toHaveLength(1);
    expect(seen.map((e) => [e.t, e.kind])).toEqual([[0, 'dhcp-ack'], [0, 'file'], [6, 'gave-up'], [6.5, 'power-cycle'], [8, 'dhcp-ack'], [19, 'kernel'], [19, 'up']]);
  });
});

describe('the lab timeline under Secure Boot', () => {
  it('sees the firmware refuse what it loaded (OVMF under Secure Boot, lab serial log), naming the last file served; GRUB giving up counts as giving up', () => {
    const seen: LabEvent[] = [];
    const vm = track('vm1', '52:54:00:b0:07:01');
    const t = new Timeline([vm], () => 3000, (e) => seen.push(e));
    t.onBootdLine(log({ msg: 'dhcp ack', mac: vm.mac, ip: '198.18.77.100', vendorClass: 'PXEClient:Arch:00007:UNDI:003000', bootFile: 'syslinux.efi' }));
    t.onBootdLine(log({ msg: 'tftp transfer', peer: '198.18.77.100:1547', file: 'syslinux.efi', bytes: 171456, durationMs: 34, outcome: 'complete', direction: 'read' }));
    t.onSerialLine('vm1', 'BdsDxe: failed to load Boot0001 "UEFI PXEv4 (MAC:525400B00701)" from PciRoot(0x0)/Pci(0x1,0x0)/MAC(525400B00701,0x1)/IPv4(0.0.0.0,0x0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0): Access Denied');
    expect(vm.refused).toMatch(/: Access Denied$/);
    expect(seen.at(-1)).toMatchObject({ kind: 'firmware-refused', data: { lastFile: 'syslinux.efi' } });
    expect(vm.gaveUp).toBeUndefined();
    const g = track('vm2', '52:54:00:b0:07:02');
    new Timeline([g], () => 0).onSerialLine('vm2', '  Failed to boot both default and fallback entries.');
    expect(g.gaveUp).toBe('Failed to boot both default and fallback entries.');
  });
});

describe('lab QEMU command lines', () => {
  const base = { name: 'vm1', mac: '52:54:00:b0:07:01', uuid: 'u', tap: 'tap0', memoryMiB: 1024, serialLog: '/r/s.log' };

  it('bios: SeaBIOS mirrored to the serial port, network boot first, iPXE ROM kept', () => {
    const a = qemuArgs({ ...base, firmware: 'bios', rom: 'ipxe', accel: 'tcg', firmwareFile: '/r/sercon' }).join(' ');
    expect(a).toContain('-fw_cfg name=etc/sercon-port,file=/r/sercon');
    expect(a).toContain('-boot order=n');
    expect(a).toContain('-device virtio-net-pci,netdev=n0,mac=52:54:00:b0:07:01,bootindex=1 ');
    expect(a).toContain('-netdev tap,id=n0,ifname=tap0,script=no,downscript=no');
    expect(a).toContain('-accel tcg');
    expect(a).not.toContain('-nographic');
  });

  it('uefi without ROM: OVMF flash, its own PXE (romfile= empty)', () => {
    const a = qemuArgs({ ...base, firmware: 'uefi', rom: 'none', accel: 'kvm', firmwareFile: '/r/vars.fd' }).join(' ');
    expect(a).toContain('romfile=');
    expect(a).toContain('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd');
    expect(a).toContain('if=pflash,format=raw,unit=1,file=/r/vars.fd');
    expect(a).toContain('-machine q35');
    expect(a).toContain('-accel kvm -cpu host');
  });

  it('uefi with Secure Boot: the SMM build of OVMF on q35 with smm=on and a secure pflash, Microsoft\'s keys in the variables', () => {
    const a = qemuArgs({ ...base, firmware: 'uefi', rom: 'none', accel: 'tcg', firmwareFile: '/r/vars.fd', secureBoot: true }).join(' ');
    expect(a).toContain('-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on');
    expect(a).toContain('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd');
    expect(a).not.toContain('IPv4PXESupport');
  });

  it('uefi HTTP Boot: OVMF\'s PXE turned off through fw_cfg, so the NIC\'s next boot option is HTTP', () => {
    const a = qemuArgs({ ...base, firmware: 'uefi', rom: 'none', accel: 'tcg', firmwareFile: '/r/vars.fd', netBoot: 'http' }).join(' ');
    expect(a).toContain('-fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=no -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=no');
    expect(a).toContain('file=/usr/share/OVMF/OVMF_CODE_4M.fd');
  });

  it('arm64: QEMU\'s virt machine, a Cortex-A57 under TCG, AAVMF in two flash banks, the NIC\'s own ROM off', () => {
    const a = qemuArgs({ ...base, firmware: 'uefi', rom: 'none', accel: 'kvm', firmwareFile: '/r/vars.fd', arch: 'arm64' }).join(' ');
    expect(a).toContain('-M virt -cpu cortex-a57');
    expect(a).toContain('-accel tcg');
    expect(a).not.toContain('kvm');
    expect(a).toContain('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd -drive if=pflash,format=raw,unit=1,file=/r/vars.fd');
    expect(a).toContain('bootindex=1,romfile=');
    expect(qemuFor('arm64')).toBe('qemu-system-aarch64');
    expect(qemuFor(undefined)).toBe('qemu-system-x86_64');
  });

  it('numbers the firmware paths: issue 5\'s five, Secure Boot (6), UEFI HTTP Boot (7), both (8), arm64 by PXE (9) and by HTTP Boot (10)', () => {
    expect(Object.keys(MODES)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    expect(modeOf('uefi', 'none', 'grub', false, 'http', 'arm64')).toBe(10);
    expect(modeOf('uefi', 'none', 'grub', false, 'pxe', 'arm64')).toBe(9);
    expect(modeOf('uefi', 'none', 'grub', true, 'http')).toBe(8);
    expect(modeOf('uefi', 'none', 'ipxe')).toBe(5);
    expect(modeOf('uefi', 'none', 'grub', true, 'pxe')).toBe(6);
    expect(modeOf('uefi', 'none', 'ipxe', false, 'http')).toBe(7);
    expect(modeOf('uefi', 'none', 'pxelinux', true)).toBeUndefined();
    expect(modeOf('bios', 'none', 'pxelinux')).toBeUndefined();
  });
});
