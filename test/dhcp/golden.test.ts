/**
 * Golden decodes of DISCOVERs captured from real clients by
 * test/fixtures/dhcp/capture.sh. A decode that changes fails here; after a
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

function summary(buf: Buffer): unknown {
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
  it('has captures of udhcpc, dhclient and dhcpcd', () => {
    expect(fixtures.sort()).toEqual(['dhclient.hex', 'dhcpcd.hex', 'udhcpc.hex']);
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

  it('udhcpc sends the vendor class it was given, and no PXE options (WIRE.md)', () => {
    const p = decodeDhcp(Buffer.from(readFileSync(path.join(FIXTURES, 'udhcpc.hex'), 'utf8').replace(/\s+/g, ''), 'hex'));
    expect(decodeValue(Opt.VENDOR_CLASS, getOption(p, Opt.VENDOR_CLASS) as Buffer)).toBe('e2e-initramfs');
    expect(getOption(p, Opt.CLIENT_ARCH)).toBeUndefined();
    expect(getOption(p, Opt.USER_CLASS)).toBeUndefined();
  });
});
