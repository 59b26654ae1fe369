import { describe, expect, it } from 'vitest';
import { isOsFile, observe, KEEP_BOOTS, type HostRecord, type Observation } from '../../src/afterboot/record.js';

const MAC = '52:54:00:b0:07:01';
let n = 0;
const id = (): string => `b${++n}`;
const t = (s: number): Date => new Date(Date.UTC(2026, 10, 22, 8, 0, s));

const dhcp = (type: 'offer' | 'ack', vendorClass: string | null, extra: Partial<Extract<Observation, { kind: 'dhcp' }>> = {}): Observation => ({
  kind: 'dhcp',
  type,
  mac: MAC,
  ip: '198.18.77.100',
  vendorClass,
  arch: vendorClass?.startsWith('PXEClient') ? 0 : null,
  pxe: vendorClass?.startsWith('PXEClient') ?? false,
  userClassIpxe: false,
  bootFile: vendorClass?.startsWith('PXEClient') ? 'pxelinux.0' : null,
  ...extra,
});
const file = (f: string, outcome = 'complete'): Observation => ({ kind: 'file', via: 'tftp', file: f, bytes: 1 << 20, durationMs: 500, outcome });

describe('a boot as phases', () => {
  it('runs dhcp, loading, kernel, os-dhcp, up, smoke-passed for firmware PXE then the OS', () => {
    const rec: HostRecord = { name: 'vm1', boots: [] };
    const phases: string[] = [];
    const steps: Observation[] = [
      dhcp('offer', 'PXEClient:Arch:00000:UNDI:002001', { image: 'bee' }),
      dhcp('ack', 'PXEClient:Arch:00000:UNDI:002001'),
      file('pxelinux.0'),
      file('pxelinux.cfg/01-52-54-00-b0-07-01'),
      file('images/bee/1/vmlinuz'),
      file('images/bee/1/initrd.img'),
      dhcp('offer', 'udhcp 1.35.0'),
      dhcp('ack', 'udhcp 1.35.0'),
      { kind: 'ssh', port: 22, afterMs: 800 },
      { kind: 'smoke', result: { ok: true, exitCode: 0, startedAt: t(30).toISOString(), durationMs: 2000, attempts: 1, passed: 17, failed: [] } },
    ];
    steps.forEach((o, i) => {
      observe(rec, o, t(i), id);
      phases.push(rec.boots.at(-1)?.phase ?? '-');
    });
    expect(phases).toEqual(['dhcp', 'dhcp', 'loading', 'loading', 'kernel', 'kernel', 'kernel', 'os-dhcp', 'up', 'smoke-passed']);
    expect(rec.boots).toHaveLength(1);
    const b = rec.boots[0];
    expect(b?.image).toBe('bee');
    expect(b?.ip).toBe('198.18.77.100');
    expect(b?.events.map((e) => e.kind)).toEqual(['dhcp', 'dhcp', 'file', 'file', 'file', 'file', 'dhcp', 'os-dhcp', 'ssh', 'smoke']);
    expect(b?.events[7]?.text).toContain('udhcp 1.35.0');
    expect(b?.smoke?.passed).toBe(17);
    expect(b?.clientArch).toBe(0); // learned from the firmware's option 93 (x86 BIOS); the OS's DHCP has none
  });

  it('learns the machine\'s architecture from the firmware\'s first boot request (arm64: option 93 = 11), not from later stages', () => {
    const rec: HostRecord = { name: 'arm1', boots: [] };
    observe(rec, dhcp('ack', 'PXEClient:Arch:00011:UNDI:003000', { arch: 11 }), t(0), id);
    observe(rec, dhcp('ack', 'PXEClient:Arch:00007:UNDI:003000', { arch: 7 }), t(1), id);
    expect(rec.boots.at(-1)?.clientArch).toBe(11);
  });

  it("keeps syslinux.efi's plain DHCP before the kernel in loading, not os-dhcp (WIRE.md)", () => {
    const rec: HostRecord = { name: 'vm1', boots: [] };
    observe(rec, dhcp('ack', 'PXEClient:Arch:00007:UNDI:003016'), t(0), id);
    observe(rec, file('syslinux.efi'), t(1), id);
    observe(rec, dhcp('ack', null), t(2), id);
    expect(rec.boots.at(-1)?.phase).toBe('loading');
    observe(rec, file('images/bee/1/vmlinuz'), t(3), id);
    observe(rec, dhcp('ack', null), t(4), id);
    expect(rec.boots.at(-1)?.phase).toBe('os-dhcp');
  });

  it('an aborted kernel transfer or a size probe does not count as the kernel', () => {
    const rec: HostRecord = { name: 'vm1', boots: [] };
    observe(rec, dhcp('ack', 'PXEClient:Arch:00007:UNDI:003016'), t(0), id);
    observe(rec, file('images/bee/1/vmlinuz', 'probe-aborted'), t(1), id);
    observe(rec, file('images/bee/1/initrd.img', 'timeout'), t(2), id);
    expect(rec.boots.at(-1)?.phase).toBe('loading');
  });

  it('a new PXE exchange after the kernel starts a new boot; renewals of a running OS are not kept', () => {
    const rec: HostRecord = { name: 'vm1', boots: [] };
    observe(rec, dhcp('ack', 'PXEClient:Arch:00000:UNDI:002001'), t(0), id);
    observe(rec, file('images/bee/1/vmlinuz'), t(1), id);
    observe(rec, dhcp('ack', 'udhcp 1.35.0'), t(2), id);
    observe(rec, { kind: 'ssh', port: 22, afterMs: 1 }, t(3), id);
    expect(observe(rec, dhcp('ack', 'udhcp 1.35.0'), t(4), id)).toBeNull();
    expect(rec.boots[0]?.events).toHaveLength(4);
    observe(rec, dhcp('offer', 'PXEClient:Arch:00000:UNDI:002001'), t(5), id);
    expect(rec.boots).toHaveLength(2);
    expect(rec.boots[1]?.phase).toBe('dhcp');
    expect(rec.boots[0]?.phase).toBe('up');
  });

  it('a smoke failure is recorded with its FAIL line; at most KEEP_BOOTS boots are kept', () => {
    const rec: HostRecord = { name: 'vm1', boots: [] };
    for (let i = 0; i < KEEP_BOOTS + 3; i++) {
      observe(rec, dhcp('ack', 'PXEClient:Arch:00000:UNDI:002001'), t(i * 3), id);
      observe(rec, file('images/bee/1/vmlinuz'), t(i * 3 + 1), id);
    }
    expect(rec.boots).toHaveLength(KEEP_BOOTS);
    observe(rec, { kind: 'smoke', result: { ok: false, exitCode: 1, startedAt: t(50).toISOString(), durationMs: 10, attempts: 1, passed: 3, failed: ['FAIL deliberate check: no such file'] } }, t(51), id);
    const b = rec.boots.at(-1);
    expect(b?.phase).toBe('smoke-failed');
    expect(b?.events.at(-1)?.text).toBe('smoke test FAILED: FAIL deliberate check: no such file');
  });

  it('knows kernels and initrds by name', () => {
    expect(['images/bee/1/vmlinuz', 'boot/bzImage', 'x/initrd.img', 'initramfs-6.1.img', 'root.cpio.zst'].every(isOsFile)).toBe(true);
    expect(['pxelinux.0', 'syslinux.efi', 'ldlinux.c32', 'boot.ipxe', 'pxelinux.cfg/default'].some(isOsFile)).toBe(false);
  });
});
