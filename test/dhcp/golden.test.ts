/**
 * Golden decodes of DISCOVERs captured from real clients by
 * test/fixtures/dhcp/capture.sh: udhcpc, dhclient, dhcpcd, and firmware in
 * QEMU (iPXE ROM under SeaBIOS and OVMF, OVMF's own PxeBcDxe). A decode that changes fails here; after a
 * deliberate change, UPDATE_GOLDEN=1 rewrites test/golden/dhcp/*.json.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OPTION_SPECS, Opt, decodeValue } from '../../src/dhcp/options.js';
import { decodeDhcp, encodeDhcp, getOption, hardwareAddress } from '../../src/dhcp/packet.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(here, '../fixtures/dhcp');
const GOLDEN = path.join(here, '../golden/dhcp');

/** Buffers anywhere (encapsulated options such as iPXE's 175) as hex, so the summary survives JSON. */
const hexBuffers = (_k: string, v: unknown): unknown => {
  const b = v as { type?: unknown; data?: unknown } | null;
  return b && b.type === 'Buffer' && Array.isArray(b.data) ? Buffer.from(b.data as number[]).toString('hex') : v;
};

function summary(buf: Buffer): unknown {
  return JSON.parse(JSON.stringify(rawSummary(buf), hexBuffers)) as unknown;
}

function rawSummary(buf: Buffer): unknown {
  const p = decodeDhcp(buf);
  return {
    op: p.op,
    xid: p.xid.toString(16).padStart(8, '0'),
    flags: p.flags,
    secs: p.secs,
    ciaddr: p.ciaddr,
    hwaddr: hardwareAddress(p),
    options: p.options.map((o) => {
      const v = decodeValue(o.code, o.data);
      return { code: o.code, name: OPTION_SPECS.get(o.code)?.name ?? 'unknown', value: Buffer.isBuffer(v) ? v.toString('hex') : v };
    }),
  };
}

const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.hex'));

describe('golden decodes of captured client packets', () => {
  it('has captures of udhcpc, dhclient, dhcpcd, QEMU iPXE (BIOS and EFI) and OVMF', () => {
    expect(fixtures.sort()).toEqual(['dhclient.hex', 'dhcpcd.hex', 'ipxe-bios.hex', 'ipxe-efi.hex', 'ovmf-pxe.hex', 'udhcpc.hex']);
  });

  for (const f of fixtures) {
    const wire = Buffer.from(readFileSync(path.join(FIXTURES, f), 'utf8').replace(/\s+/g, ''), 'hex');
    const golden = path.join(GOLDEN, f.replace(/\.hex$/, '.json'));

    it(`${f} decodes to its golden summary`, () => {
      const got = summary(wire);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, JSON.stringify(got, null, 2) + '\n');
      expect(existsSync(golden), `${golden} is missing: run with UPDATE_GOLDEN=1 once`).toBe(true);
      expect(got).toEqual(JSON.parse(readFileSync(golden, 'utf8')));
    });

    it(`${f} is a DISCOVER from the capture's MAC and survives re-encoding`, () => {
      const p = decodeDhcp(wire);
      expect(decodeValue(Opt.MESSAGE_TYPE, getOption(p, Opt.MESSAGE_TYPE) as Buffer)).toBe(1);
      expect(hardwareAddress(p)).toBe('52:54:00:e2:e0:42');
      expect(decodeDhcp(encodeDhcp(p, { maxBytes: 1500 }))).toEqual(p);
    });
  }

  const load = (f: string) => decodeDhcp(Buffer.from(readFileSync(path.join(FIXTURES, f), 'utf8').replace(/\s+/g, ''), 'hex'));
  const str = (p: ReturnType<typeof decodeDhcp>, code: number): unknown => {
    const raw = getOption(p, code);
    return raw === undefined ? undefined : decodeValue(code, raw);
  };

  it("QEMU's iPXE ROM under SeaBIOS: PXEClient arch 0, user class iPXE, option 175, UNDI 2.1 (WIRE.md)", () => {
    const p = load('ipxe-bios.hex');
    expect(str(p, Opt.VENDOR_CLASS)).toBe('PXEClient:Arch:00000:UNDI:002001');
    expect(str(p, Opt.CLIENT_ARCH)).toEqual([0]);
    expect(getOption(p, Opt.USER_CLASS)?.toString('latin1')).toBe('iPXE');
    expect(getOption(p, Opt.CLIENT_NDI)?.toString('hex')).toBe('010201');
    expect(getOption(p, 175)).toBeDefined();
    expect(getOption(p, Opt.CLIENT_UUID)?.length).toBe(17);
    // iPXE asks for 175 and for the PXE options; the broadcast flag is off (it takes unicast replies)
    expect(str(p, Opt.PARAMETER_LIST)).toEqual(expect.arrayContaining([43, 60, 66, 67, 175]));
    expect(p.flags).toBe(0);
  });

  it("QEMU's iPXE EFI ROM under OVMF: arch 7 (x64 UEFI), UNDI 3.16, still user class iPXE", () => {
    const p = load('ipxe-efi.hex');
    expect(str(p, Opt.VENDOR_CLASS)).toBe('PXEClient:Arch:00007:UNDI:003010');
    expect(str(p, Opt.CLIENT_ARCH)).toEqual([7]);
    expect(getOption(p, Opt.USER_CLASS)?.toString('latin1')).toBe('iPXE');
  });

  it("OVMF's own PxeBcDxe: arch 7, no user class, no 175, the broadcast flag set, option 97 asked for", () => {
    const p = load('ovmf-pxe.hex');
    expect(str(p, Opt.VENDOR_CLASS)).toBe('PXEClient:Arch:00007:UNDI:003000');
    expect(str(p, Opt.CLIENT_ARCH)).toEqual([7]);
    expect(getOption(p, Opt.USER_CLASS)).toBeUndefined();
    expect(getOption(p, 175)).toBeUndefined();
    expect(p.flags & 0x8000).toBe(0x8000);
    expect(str(p, Opt.PARAMETER_LIST)).toEqual(expect.arrayContaining([43, 60, 66, 67, 97]));
  });

  it('udhcpc sends the vendor class it was given, and no PXE options (WIRE.md)', () => {
    const p = decodeDhcp(Buffer.from(readFileSync(path.join(FIXTURES, 'udhcpc.hex'), 'utf8').replace(/\s+/g, ''), 'hex'));
    expect(decodeValue(Opt.VENDOR_CLASS, getOption(p, Opt.VENDOR_CLASS) as Buffer)).toBe('e2e-initramfs');
    expect(getOption(p, Opt.CLIENT_ARCH)).toBeUndefined();
    expect(getOption(p, Opt.USER_CLASS)).toBeUndefined();
  });
});
