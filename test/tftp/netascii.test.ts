import { describe, expect, it } from 'vitest';
import { fromNetascii, toNetascii } from '../../src/tftp/netascii.js';

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
