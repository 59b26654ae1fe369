import { describe, expect, it } from 'vitest';
import { blksizeForMtu, negotiate, type NegotiationLimits } from '../../src/tftp/options.js';

const open: NegotiationLimits = { maxBlksize: 65464, maxWindowsize: 64 };
const opts = (...pairs: [string, string][]) => pairs.map(([name, value]) => ({ name, value }));

describe('RFC 2347 option negotiation', () => {
  it('answers EDK2 (tsize=0 blksize=1468 windowsize=4) with the file size and both values', () => {
    const n = negotiate({ options: opts(['tsize', '0'], ['blksize', '1468'], ['windowsize', '4']), size: 123456, write: false, limits: open });
    expect(n.oack).toEqual(opts(['tsize', '123456'], ['blksize', '1468'], ['windowsize', '4']));
    expect(n).toMatchObject({ blksize: 1468, windowsize: 4 });
  });

  it('leaves tsize out for an empty file (curl rejects an OACK with tsize 0)', () => {
    expect(negotiate({ options: opts(['tsize', '0']), size: 0, write: false, limits: open }).oack).toBeNull();
    expect(negotiate({ options: opts(['tsize', '0'], ['blksize', '1408']), size: 0, write: false, limits: open }).oack).toEqual(opts(['blksize', '1408']));
  });

  it('sends no OACK when nothing was asked, so the transfer starts with DATA 1 (RFC 1350 client)', () => {
    expect(negotiate({ options: [], size: 10, write: false, limits: open })).toMatchObject({ oack: null, blksize: 512, windowsize: 1 });
  });

  it('acknowledges only options it knows', () => {
    const n = negotiate({ options: opts(['multicast', ''], ['rollover', '0'], ['blksize', '1024']), size: 1, write: false, limits: open });
    expect(n.oack).toEqual(opts(['blksize', '1024']));
  });

  it('clamps blksize to the path MTU and to 65464, and ignores values below 8 (RFC 2348)', () => {
    expect(negotiate({ options: opts(['blksize', '65464']), size: 1, write: false, limits: { ...open, maxBlksize: blksizeForMtu(1500) } }).blksize).toBe(1468);
    expect(negotiate({ options: opts(['blksize', '99999']), size: 1, write: false, limits: open }).blksize).toBe(65464);
    expect(negotiate({ options: opts(['blksize', '7']), size: 1, write: false, limits: open })).toMatchObject({ blksize: 512, oack: null });
  });

  it.each([['abc'], ['-1'], [''], ['1e3'], ['12345678901'], ['0x10']])('ignores a non-numeric or absurd value %j', (v) => {
    expect(negotiate({ options: opts(['blksize', v], ['windowsize', v], ['timeout', v]), size: 1, write: false, limits: open }).oack).toBeNull();
  });

  it('grants windowsize up to 64 and never when the host quirk says 1', () => {
    expect(negotiate({ options: opts(['windowsize', '512']), size: 1, write: false, limits: open }).windowsize).toBe(64);
    expect(negotiate({ options: opts(['windowsize', '8']), size: 1, write: false, limits: { ...open, maxWindowsize: 1 } })).toMatchObject({ windowsize: 1, oack: null });
  });

  it('accepts timeout 1..255 s and refuses 0 and 256 (RFC 2349)', () => {
    expect(negotiate({ options: opts(['timeout', '6']), size: 1, write: false, limits: open })).toMatchObject({ timeoutMs: 6000, oack: opts(['timeout', '6']) });
    expect(negotiate({ options: opts(['timeout', '0']), size: 1, write: false, limits: open }).oack).toBeNull();
    expect(negotiate({ options: opts(['timeout', '256']), size: 1, write: false, limits: open }).oack).toBeNull();
  });

  it('matches names case-insensitively, echoes the client spelling, and takes the first duplicate', () => {
    const n = negotiate({ options: opts(['BLKSIZE', '1408'], ['blksize', '512']), size: 1, write: false, limits: open });
    expect(n.oack).toEqual(opts(['BLKSIZE', '1408']));
  });

  it('echoes a WRQ tsize as the announced upload size', () => {
    expect(negotiate({ options: opts(['tsize', '4096']), size: null, write: true, limits: open })).toMatchObject({ announcedSize: 4096, oack: opts(['tsize', '4096']) });
  });
});
