/**
 * End to end: real firmware netbooted by bootd, through `bootd lab --once
 * --json` (the unattended form of the README's demo). Each case boots one
 * QEMU VM in a namespace of its own to the BOOTD-UP marker and checks what
 * bootd itself recorded: the lease in its store, the files it served (and
 * over which protocol), and for bee the audit report that arrived on the
 * upload port.
 *
 * The five firmware paths of issue 5; bee in all five, buildos in 1 and 4.
 * Needs root (namespaces, taps) and QEMU; CI runs as root and setup.sh
 * installs QEMU, OVMF and the boot loaders. KVM when it can run firmware,
 * TCG otherwise (the lab probes). Images are built on first use into the
 * working tree's images/ (gitignored), downloads cached in .cache/.
 */
import { execa } from 'execa';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LabResult } from '../../src/lab/lab.js';
import { BOOTD_BIN, REPO } from '../helpers/bootd.js';

const skip = process.getuid?.() !== 0 ? 'the netboot lab needs root (network namespaces, taps); CI runs as root' : null;
if (skip) console.warn(`SKIPPED netboot lab: ${skip}`);

const STATE = path.join(REPO, '.cache', 'lab-state');
const CACHE = path.join(REPO, '.cache', 'images');

interface Case {
  readonly mode: number;
  readonly image: 'bee' | 'buildos';
  /** Files bootd must have served completely, with the protocol. */
  readonly served: readonly [RegExp, 'tftp' | 'http'][];
  /** Served as an aborted size probe first (EDK2's PxeBcDxe: WIRE.md). */
  readonly probe?: RegExp;
  /** DHCP boot files, in order of the firmware stages that asked. */
  readonly bootFiles: readonly RegExp[];
}

const KERNEL = /^images\/[a-z]+\/[0-9][^/]*\/vmlinuz$/;
const INITRD = /^images\/[a-z]+\/[0-9][^/]*\/initrd\.img$/;
const PXECFG = /^pxelinux\.cfg\/01-52-54-00-b0-07-01$/;
const HTTP_SCRIPT = /^http:\/\/198\.18\.77\.1:80\/boot\.ipxe$/;

const CASES: readonly Case[] = [
  { mode: 1, image: 'bee', bootFiles: [/^pxelinux\.0$/], served: [[/^pxelinux\.0$/, 'tftp'], [/^ldlinux\.c32$/, 'tftp'], [PXECFG, 'tftp'], [KERNEL, 'tftp'], [INITRD, 'tftp']] },
  { mode: 2, image: 'bee', bootFiles: [HTTP_SCRIPT], served: [[/^boot\.ipxe$/, 'http'], [/^ipxe\/52-54-00-b0-07-01\.ipxe$/, 'http'], [KERNEL, 'http'], [INITRD, 'http']] },
  { mode: 3, image: 'bee', bootFiles: [/^syslinux\.efi$/], served: [[/^syslinux\.efi$/, 'tftp'], [/^ldlinux\.e64$/, 'tftp'], [PXECFG, 'tftp'], [KERNEL, 'tftp'], [INITRD, 'tftp']] },
  { mode: 4, image: 'bee', bootFiles: [/^syslinux\.efi$/], probe: /^syslinux\.efi$/, served: [[/^syslinux\.efi$/, 'tftp'], [/^ldlinux\.e64$/, 'tftp'], [PXECFG, 'tftp'], [KERNEL, 'tftp'], [INITRD, 'tftp']] },
  { mode: 5, image: 'bee', bootFiles: [/^snponly\.efi$/, HTTP_SCRIPT], probe: /^snponly\.efi$/, served: [[/^snponly\.efi$/, 'tftp'], [/^boot\.ipxe$/, 'http'], [KERNEL, 'http'], [INITRD, 'http']] },
  { mode: 1, image: 'buildos', bootFiles: [/^pxelinux\.0$/], served: [[/^pxelinux\.0$/, 'tftp'], [PXECFG, 'tftp'], [KERNEL, 'tftp'], [INITRD, 'tftp']] },
  { mode: 4, image: 'buildos', bootFiles: [/^syslinux\.efi$/], probe: /^syslinux\.efi$/, served: [[/^syslinux\.efi$/, 'tftp'], [PXECFG, 'tftp'], [KERNEL, 'tftp'], [INITRD, 'tftp']] },
];

async function lab(c: Case): Promise<{ r: LabResult | null; stderr: string; exitCode: number | undefined }> {
  const p = await execa(process.execPath, [BOOTD_BIN, 'lab', '--mode', String(c.mode), '--image', c.image, '--once', '--json', '--timeout', '420', '--images', path.join(REPO, 'images'), '--state', STATE, '--cache', CACHE], {
    reject: false,
    timeout: 1_500_000,
    cwd: REPO,
  });
  let r: LabResult | null = null;
  try {
    r = JSON.parse(p.stdout) as LabResult;
  } catch {
    // a crash before the result: the stderr tail says why
  }
  return { r, stderr: p.stderr, exitCode: p.exitCode };
}

describe.skipIf(skip !== null)('netboot lab: real firmware booted by bootd', () => {
  for (const c of CASES) {
    it(`mode ${c.mode} boots ${c.image}`, { timeout: 1_600_000 }, async () => {
      const { r, stderr, exitCode } = await lab(c);
      // on failure the lab printed the serial log tail and bootd's log tail to stderr
      const why = `exit ${exitCode}; lab output tail:\n${stderr.split('\n').slice(-60).join('\n')}`;
      expect(r, why).not.toBeNull();
      const res = r as LabResult;
      expect(res.ok, why).toBe(true);
      expect(exitCode, why).toBe(0);
      expect(res.mode).toBe(c.mode);
      const vm = res.vms[0];
      expect(vm, why).toBeDefined();
      if (!vm) return;
      console.log(`mode ${c.mode} ${c.image} (${res.accel}): kernel at ${vm.kernelSeconds} s, BOOTD-UP at ${vm.upSeconds} s`);
      // the marker, and its address is the one bootd leased (and recorded durably)
      expect(vm.upSeconds).toBeGreaterThan(0);
      const up = res.events.find((e) => e.kind === 'up');
      expect(up?.data?.image).toBe(c.image);
      expect(vm.lease?.ip).toMatch(/^198\.18\.77\.(1\d\d)$/);
      expect(up?.data?.ip).toBe(vm.lease?.ip);
      // every DHCP stage got the same address; the firmware stages got the expected boot files
      expect(new Set(vm.dhcp.map((a) => a.ip))).toEqual(new Set([vm.lease?.ip]));
      const files = vm.dhcp.flatMap((a) => (a.bootFile ? [a.bootFile] : []));
      expect(files.length, JSON.stringify(vm.dhcp)).toBe(c.bootFiles.length);
      c.bootFiles.forEach((re, i) => expect(files[i]).toMatch(re));
      // the OS's own DHCP: no boot file, not a PXE client
      expect(vm.dhcp.some((a) => a.bootFile === null && !String(a.vendorClass).startsWith('PXEClient'))).toBe(true);
      for (const [re, via] of c.served) {
        expect(vm.files.some((f) => re.test(f.file) && f.via === via && f.outcome === 'complete'), `${re} over ${via} in ${JSON.stringify(vm.files.map((f) => [f.file, f.via, f.outcome]))}`).toBe(true);
      }
      if (c.probe) expect(vm.files.some((f) => c.probe?.test(f.file) && f.outcome === 'probe-aborted')).toBe(true);
      if (c.image === 'bee') {
        expect(vm.audit?.schema).toBe('bee-audit/1');
        expect(vm.audit?.collectors.cpu).toBe('ok');
        expect(vm.audit?.collectors.memory).toBe('ok');
        expect(Object.keys(vm.audit?.collectors ?? {}).sort()).toEqual(['board', 'cpu', 'gpu', 'memory', 'pcie', 'psu', 'storage']);
      }
    });
  }

  it('leaves no namespace, tap or process behind', async () => {
    const ns = await execa('ip', ['netns', 'list']);
    expect(ns.stdout).not.toMatch(/bootd-lab-/);
    const ps = await execa('pgrep', ['-f', 'qemu-system-x86_64 -name vm'], { reject: false });
    expect(ps.stdout.trim()).toBe('');
  });
});
