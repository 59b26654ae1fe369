import { describe, expect, it } from 'vitest';
import { formatIpv4, parseIpv4 } from '../../src/net/ipv4.js';

/** The definition parseIpv4 follows, in its plainest form: four parts of 1-3 digits, no leading zero, each at most 255. */
function reference(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n >>> 0;
}

describe('parseIpv4', () => {
  it('reads dotted quads and round-trips through formatIpv4', () => {
    expect(parseIpv4('0.0.0.0')).toBe(0);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4('198.18.0.1')).toBe(0xc6120001);
    for (const a of ['10.0.0.10', '9.99.199.255', '192.168.1.0']) expect(formatIpv4(parseIpv4(a) as number)).toBe(a);
  });

  it('refuses what is not exactly a dotted quad', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.400', '01.2.3.4', '192.168.001.1', '1.2.3.0400', ' 1.2.3.4', '1.2.3.4 ', '1..3.4', '.1.2.3', '1.2.3.', '1.2.3.-1', '1.2.3.+1', '1.2.3.1e2', 'a.b.c.d', '1.2.3.4\n']) {
      expect(parseIpv4(bad), JSON.stringify(bad)).toBeNull();
    }
  });

  it('agrees with the split-and-regex definition on random strings', () => {
    // a fixed-seed generator: the same strings on every run
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = '0123456789...x- ';
    let compared = 0;
    for (let k = 0; k < 50_000; k++) {
      const s = k % 2 === 0 ? Array.from({ length: rnd(16) }, () => alphabet[rnd(alphabet.length)]).join('') : [rnd(300), rnd(300), rnd(300), rnd(300)].join('.');
      expect(parseIpv4(s), JSON.stringify(s)).toBe(reference(s));
      compared++;
    }
    expect(compared).toBe(50_000);
  });
});
