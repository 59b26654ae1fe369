import { describe, expect, it } from 'vitest';
import { chooseBoot, clientFacts, pxelinuxPathPrefix, type BootDecision, type BootFileNames } from '../../src/dhcp/boot-policy.js';
import { Opt } from '../../src/dhcp/options.js';

const names: BootFileNames = { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi', 'efi-arm64': 'grubaa64.efi' }, ipxe: 'boot.ipxe', httpBase: 'http://198.18.0.1:8080/' };
const opts = (o: Record<number, Buffer>) => ({ options: Object.entries(o).map(([code, data]) => ({ code: Number(code), data })) });
const arch = (n: number): Buffer => Buffer.from([n >> 8, n & 255]);

describe('boot policy', () => {
  it.each<[string, Record<number, Buffer>, string | null]>([
    ['QEMU iPXE ROM, BIOS (user class iPXE)', { [Opt.CLIENT_ARCH]: arch(0), [Opt.USER_CLASS]: Buffer.from('iPXE'), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00000:UNDI:002001') }, 'boot.ipxe'],
    ['iPXE in OVMF (arch 7, user class iPXE)', { [Opt.CLIENT_ARCH]: arch(7), [Opt.USER_CLASS]: Buffer.from('iPXE') }, 'boot.ipxe'],
    ['RFC 3004-style user class carrying iPXE', { [Opt.CLIENT_ARCH]: arch(0), [Opt.USER_CLASS]: Buffer.from('\x04iPXE', 'latin1') }, 'boot.ipxe'],
    ['EDK2 PxeBcDxe (arch 7)', { [Opt.CLIENT_ARCH]: arch(7), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00007:UNDI:003000') }, 'syslinux.efi'],
    ['x64 UEFI with arch 9', { [Opt.CLIENT_ARCH]: arch(9), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient') }, 'syslinux.efi'],
    ['BIOS PXE ROM (arch 0)', { [Opt.CLIENT_ARCH]: arch(0), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00000:UNDI:002001') }, 'pxelinux.0'],
    ['legacy PXEClient without option 93', { [Opt.VENDOR_CLASS]: Buffer.from('PXEClient') }, 'pxelinux.0'],
    ['ARM64 UEFI', { [Opt.CLIENT_ARCH]: arch(11), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient') }, 'grubaa64.efi'],
    ['x64 UEFI HTTP boot (16)', { [Opt.CLIENT_ARCH]: arch(16), [Opt.VENDOR_CLASS]: Buffer.from('HTTPClient:Arch:00016') }, 'http://198.18.0.1:8080/snponly.efi'],
    ['syslinux.efi second exchange (no 60, 93, 77)', {}, null],
    ['udhcpc in Linux (vendor class, not PXE)', { [Opt.VENDOR_CLASS]: Buffer.from('e2e-initramfs') }, null],
    ['ARM32 UEFI with no file configured', { [Opt.CLIENT_ARCH]: arch(10), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient') }, null],
    ['an architecture not in the table', { [Opt.CLIENT_ARCH]: arch(999), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient') }, null],
  ])('%s gets %s', (_name, options, want) => {
    const d = chooseBoot(clientFacts(opts(options)), names);
    if (want === null) expect(d.kind).toBe('none');
    else expect(d).toMatchObject({ kind: 'file', file: want });
  });

  it('marks iPXE clients so the server adds option 175.176 (no proxy wait)', () => {
    expect(chooseBoot(clientFacts(opts({ [Opt.USER_CLASS]: Buffer.from('iPXE') })), names)).toMatchObject({ ipxe: true });
  });

  describe('per-host loader (hosts/*.yaml loader:)', () => {
    const ROM_BIOS = { [Opt.CLIENT_ARCH]: arch(0), [Opt.USER_CLASS]: Buffer.from('iPXE'), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00000:UNDI:002001') };
    const ROM_EFI = { [Opt.CLIENT_ARCH]: arch(7), [Opt.USER_CLASS]: Buffer.from('iPXE'), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00007:UNDI:003010') };
    const EDK2 = { [Opt.CLIENT_ARCH]: arch(7), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00007:UNDI:003000') };
    const BIOS_PXE = { [Opt.CLIENT_ARCH]: arch(0), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient') };
    it.each<[string, Record<number, Buffer>, 'pxelinux' | 'ipxe', string | null, boolean]>([
      // QEMU's NIC ROM is iPXE: a pxelinux host still gets PXELINUX (mode 1, 3)
      ['QEMU iPXE ROM, BIOS', ROM_BIOS, 'pxelinux', 'pxelinux.0', false],
      ['QEMU iPXE ROM in OVMF', ROM_EFI, 'pxelinux', 'syslinux.efi', false],
      ['EDK2 PxeBcDxe', EDK2, 'pxelinux', 'syslinux.efi', false],
      // ipxe hosts: the script for iPXE, an iPXE binary for plain PXE (mode 2, 5)
      ['QEMU iPXE ROM, BIOS', ROM_BIOS, 'ipxe', 'boot.ipxe', true],
      ['EDK2 PxeBcDxe', EDK2, 'ipxe', 'snponly.efi', false],
      ['snponly.efi coming back', ROM_EFI, 'ipxe', 'boot.ipxe', true],
      ['a BIOS PXE ROM', BIOS_PXE, 'ipxe', 'undionly.kpxe', false],
      // no boot file for stages that are not PXE clients (syslinux.efi's own DHCP, the OS)
      ['no 60, 93, 77', {}, 'pxelinux', null, false],
      ['Linux udhcpc', { [Opt.VENDOR_CLASS]: Buffer.from('udhcp 1.35.0') }, 'ipxe', null, false],
      // Debian ships no arm64 syslinux or iPXE: arm64 boots the signed GRUB chain whatever the loader
      ['ARM64 UEFI', { [Opt.CLIENT_ARCH]: arch(11), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient') }, 'pxelinux', 'shimaa64.efi', false],
      ['x86 UEFI 32-bit (no file for this loader)', { [Opt.CLIENT_ARCH]: arch(6), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient') }, 'pxelinux', null, false],
    ])('%s with loader %s gets %s', (_n, options, loader, want, ipxe) => {
      const d = chooseBoot(clientFacts(opts(options)), names, loader);
      if (want === null) expect(d.kind).toBe('none');
      else expect(d).toMatchObject({ kind: 'file', file: want, ipxe });
    });
  });

  describe('option 210 for PXELINUX under iPXE (pxelinuxPathPrefix)', () => {
    const BASE = 'http://198.18.0.1:80';
    const IPXE_BIOS = clientFacts(opts({ [Opt.CLIENT_ARCH]: arch(0), [Opt.USER_CLASS]: Buffer.from('iPXE'), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00000:UNDI:002001') }));
    const PLAIN_BIOS = clientFacts(opts({ [Opt.CLIENT_ARCH]: arch(0), [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00000:UNDI:002001') }));
    const IPXE_EFI = clientFacts(opts({ [Opt.CLIENT_ARCH]: arch(7), [Opt.USER_CLASS]: Buffer.from('iPXE') }));
    const file = (f: string, over: Partial<Extract<BootDecision, { kind: 'file' }>> = {}): BootDecision => ({ kind: 'file', file: f, ipxe: false, http: false, firmware: 'bios', ...over });
    it.each<[string, ReturnType<typeof clientFacts>, BootDecision, string | undefined, string | undefined]>([
      ['iPXE ROM handed pxelinux.0', IPXE_BIOS, file('pxelinux.0'), BASE, 'http://198.18.0.1:80/'],
      ['NBP in a folder: the folder, as PXELINUX derives it', IPXE_BIOS, file('boot/bios/pxelinux.0'), `${BASE}/`, 'http://198.18.0.1:80/boot/bios/'],
      ['a leading slash does not double', IPXE_BIOS, file('/pxelinux.0'), BASE, 'http://198.18.0.1:80/'],
      ['lpxelinux.0 too', IPXE_BIOS, file('lpxelinux.0'), BASE, 'http://198.18.0.1:80/'],
      ['a plain PXE ROM has no file API', PLAIN_BIOS, file('pxelinux.0'), BASE, undefined],
      ['UEFI (syslinux.efi)', IPXE_EFI, file('syslinux.efi', { firmware: 'efi-x64' }), BASE, undefined],
      ['the iPXE script', IPXE_BIOS, file('http://198.18.0.1:80/boot.ipxe', { ipxe: true }), BASE, undefined],
      ['another NBP (undionly.kpxe)', IPXE_BIOS, file('undionly.kpxe'), BASE, undefined],
      ['a name that only ends like it', IPXE_BIOS, file('mypxelinux.0'), BASE, undefined],
      ['PXELINUX over HTTP off (no base)', IPXE_BIOS, file('pxelinux.0'), undefined, undefined],
      ['no boot file', IPXE_BIOS, { kind: 'none', reason: 'x' }, BASE, undefined],
    ])('%s', (_n, facts, d, base, want) => {
      expect(pxelinuxPathPrefix(facts, d, base)).toBe(want);
    });
  });
});
