import { describe, expect, it } from 'vitest';
import { NetasciiShare, fromNetascii, toNetascii, toNetasciiYielding } from '../../src/tftp/netascii.js';

describe('netascii (RFC 1350 / RFC 764)', () => {
  it('turns LF into CR LF and a bare CR into CR NUL', () => {
    expect(toNetascii(Buffer.from('a\nb\rc')).toString('hex')).toBe(Buffer.from('a\r\nb\r\0c').toString('hex'));
  });
  it('returns the same buffer when there is nothing to convert', () => {
    const b = Buffer.from('plain');
    expect(toNetascii(b)).toBe(b);
  });
  it('round-trips arbitrary bytes', () => {
    const b = Buffer.from([0x0d, 0x0a, 0x0d, 0x0d, 0x00, 0x0a, 0x41, 0x0d]);
    expect(fromNetascii(toNetascii(b))).toEqual(b);
  });
});

describe('netascii for large files', () => {
  it('converts in steps with the event loop served between them, with the same result as toNetascii', async () => {
    const input = Buffer.alloc(3 * (1 << 20) + 5);
    for (let i = 0; i < input.length; i++) input[i] = i % 97 === 0 ? 0x0a : i % 89 === 0 ? 0x0d : 0x41 + (i % 26);
    let yields = 0;
    const out = await toNetasciiYielding(input, async () => {
      yields++;
    });
    expect(out.equals(toNetascii(input))).toBe(true);
    expect(yields).toBe(6); // three steps counting, three converting: 1 MiB at a time
  });

  it('shares one converted copy among concurrent readers of one file version, and drops it after the last release', async () => {
    const share = new NetasciiShare();
    let loads = 0;
    const load = async (): Promise<Buffer> => {
      loads++;
      return Buffer.from('a\nb\n');
    };
    const [x, y] = await Promise.all([share.get('f\0 4\0 1', load), share.get('f\0 4\0 1', load)]);
    expect(loads).toBe(1);
    expect(x.buf).toBe(y.buf);
    expect(x.buf.toString()).toBe('a\r\nb\r\n');
    x.release();
    x.release(); // idempotent
    expect(share.size).toBe(1);
    y.release();
    expect(share.size).toBe(0);
    await share.get('f\0 4\0 1', load);
    expect(loads).toBe(2);
  });

  it('does not keep a failed load', async () => {
    const share = new NetasciiShare();
    await expect(share.get('g', () => Promise.reject(new Error('EIO')))).rejects.toThrow('EIO');
    expect(share.size).toBe(0);
  });
});
