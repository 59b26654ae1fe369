import { describe, expect, it } from 'vitest';
import { LeaseTable, type PoolConfig } from '../../src/dhcp/leases.js';
import { formatIpv4, parseIpv4 } from '../../src/net/ipv4.js';

const ip = (s: string): number => parseIpv4(s) as number;
const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';
const cfg = (over: Partial<PoolConfig> = {}): PoolConfig => ({
  ranges: [{ start: ip('198.18.0.100'), end: ip('198.18.0.102') }],
  leaseSeconds: 3600,
  offerHoldMs: 30_000,
  declineHoldMs: 600_000,
  reservations: new Map(),
  excluded: new Set(),
  ...over,
});
const fmt = (n: number | null): string | null => (n === null ? null : formatIpv4(n));

describe('LeaseTable', () => {
  it('offers, binds, and gives the same MAC the same address on every exchange', () => {
    const t = new LeaseTable(cfg());
    const o = t.offer(A, null, 0);
    expect(fmt(o)).toBe('198.18.0.100');
    expect(t.request(A, o as number, 1)).toMatchObject({ ok: true, lease: { ip: '198.18.0.100', expiresAt: 1 + 3_600_000 } });
    // the NBP and then Linux DISCOVER again, with other client ids: same address
    expect(fmt(t.offer(A, null, 10))).toBe('198.18.0.100');
    expect(fmt(t.offer(B, null, 10))).toBe('198.18.0.101');
  });

  it('holds an offered address for its client and not for others', () => {
    const t = new LeaseTable(cfg());
    expect(fmt(t.offer(A, null, 0))).toBe('198.18.0.100');
    expect(fmt(t.offer(B, ip('198.18.0.100'), 1))).toBe('198.18.0.101'); // asks for A's offered address: gets another
    expect(t.request(B, ip('198.18.0.100'), 2)).toMatchObject({ ok: false });
  });

  it('gives a reserved MAC its reserved address, even outside the range, and nobody else that address', () => {
    const t = new LeaseTable(cfg({ reservations: new Map([[C, ip('198.18.0.50')]]) }));
    expect(fmt(t.offer(C, ip('198.18.0.101'), 0))).toBe('198.18.0.50');
    expect(t.request(C, ip('198.18.0.101'), 0)).toMatchObject({ ok: false });
    expect(t.request(C, ip('198.18.0.50'), 0)).toMatchObject({ ok: true });
    expect(t.request(A, ip('198.18.0.50'), 0)).toMatchObject({ ok: false });
  });

  it('NAKs an address outside the range, one leased to another MAC, or an excluded one', () => {
    const t = new LeaseTable(cfg({ excluded: new Set([ip('198.18.0.102')]) }));
    t.request(A, ip('198.18.0.100'), 0);
    expect(t.request(B, ip('198.18.0.100'), 1)).toMatchObject({ ok: false });
    expect(t.request(B, ip('198.18.0.99'), 1)).toMatchObject({ ok: false });
    expect(t.request(B, ip('198.18.0.102'), 1)).toMatchObject({ ok: false });
  });

  it('returns null when the pool is exhausted, and reclaims expired leases (never-used addresses first)', () => {
    const t = new LeaseTable(cfg({ leaseSeconds: 10 }));
    for (const m of [A, B, C]) t.request(m, t.offer(m, null, 0) as number, 0);
    expect(t.offer('52:54:00:00:00:0d', null, 1000)).toBeNull();
    const d = t.offer('52:54:00:00:00:0d', null, 11_000); // all expired now
    expect(d).not.toBeNull();
    expect(t.request('52:54:00:00:00:0d', d as number, 11_000)).toMatchObject({ ok: true });
    expect(t.size).toBe(3); // the reclaimed lease's old owner is gone
  });

  it('keeps a declined address out of offers for the hold time (RFC 2131 section 4.3.3)', () => {
    const t = new LeaseTable(cfg());
    const o = t.offer(A, null, 0) as number;
    t.request(A, o, 0);
    t.decline(A, o, 1);
    expect(t.offer(B, o, 2)).not.toBe(o);
    expect(t.offer(C, o, 700_000)).toBe(o);
  });

  it('on release ends the lease but lets the same MAC come back to its address', () => {
    const t = new LeaseTable(cfg());
    const o = t.offer(A, null, 0) as number;
    t.request(A, o, 0);
    expect(t.release(A, o, 5)).toBe(true);
    expect(t.lease(A)?.expiresAt).toBe(5);
    expect(t.offer(A, null, 6)).toBe(o);
  });

  it('restores leases from the store and honours the unexpired ones', () => {
    const t = new LeaseTable(cfg(), [{ mac: A, ip: '198.18.0.101', expiresAt: 10_000 }]);
    expect(fmt(t.offer(A, null, 0))).toBe('198.18.0.101');
    expect(t.request(B, ip('198.18.0.101'), 0)).toMatchObject({ ok: false });
    expect(fmt(t.offer(B, null, 0))).toBe('198.18.0.100');
  });

  it('offers from the range of the request\'s subnet only', () => {
    const t = new LeaseTable(cfg({ ranges: [{ start: ip('198.18.0.100'), end: ip('198.18.0.102') }, { start: ip('198.18.5.100'), end: ip('198.18.5.101') }] }));
    expect(fmt(t.offer(A, null, 0, 1))).toBe('198.18.5.100');
    t.request(A, ip('198.18.5.100'), 0);
    // the same MAC moved to the local subnet: its old address is not offered there
    expect(fmt(t.offer(A, ip('198.18.5.100'), 1, 0))).toBe('198.18.0.100');
  });

  it('reports which MACs changed, once', () => {
    const t = new LeaseTable(cfg());
    t.request(A, ip('198.18.0.100'), 0);
    t.request(B, ip('198.18.0.101'), 0);
    expect(t.takeChanged().sort()).toEqual([A, B]);
    expect(t.takeChanged()).toEqual([]);
  });
});
