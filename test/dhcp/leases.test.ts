import { describe, expect, it } from 'vitest';
import { LeaseTable, type ClientIdentity, type PoolConfig } from '../../src/dhcp/leases.js';
import { formatIpv4, parseIpv4 } from '../../src/net/ipv4.js';

const ip = (s: string): number => parseIpv4(s) as number;
const byMac = (mac: string): ClientIdentity => ({ mac, clientId: null });
const A = byMac('52:54:00:00:00:0a');
const B = byMac('52:54:00:00:00:0b');
const C = byMac('52:54:00:00:00:0c');
const D = byMac('52:54:00:00:00:0d');
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
    const t = new LeaseTable(cfg({ reservations: new Map([[C.mac, ip('198.18.0.50')]]) }));
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
    expect(t.offer(D, null, 1000)).toBeNull();
    const d = t.offer(D, null, 11_000); // all expired now
    expect(d).not.toBeNull();
    expect(t.request(D, d as number, 11_000)).toMatchObject({ ok: true });
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
    expect(t.find(A)).toMatchObject({ expiresAt: 5, state: 'released' });
    expect(t.offer(A, null, 6)).toBe(o);
  });

  it('restores leases from the store and honours the unexpired ones', () => {
    const t = new LeaseTable(cfg(), [{ mac: A.mac, ip: '198.18.0.101', expiresAt: 10_000 }]);
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

  it('reports which addresses changed, once', () => {
    const t = new LeaseTable(cfg());
    t.request(A, ip('198.18.0.100'), 0);
    t.request(B, ip('198.18.0.101'), 0);
    expect(t.takeChanged().sort()).toEqual([ip('198.18.0.100'), ip('198.18.0.101')]);
    expect(t.takeChanged()).toEqual([]);
  });

  describe('client identity (RFC 2131 section 4.2, RFC 6842)', () => {
    const withId = (mac: string, clientId: string): ClientIdentity => ({ mac, clientId });

    it('treats two clients with one MAC and different identifiers as two clients', () => {
      const t = new LeaseTable(cfg());
      const x = withId(A.mac, '01aa'), y = withId(A.mac, '01bb');
      const ox = t.offer(x, null, 0) as number;
      expect(t.request(x, ox, 0)).toMatchObject({ ok: true, lease: { mac: A.mac, clientId: '01aa' } });
      const oy = t.offer(y, null, 1) as number;
      expect(oy).not.toBe(ox);
      expect(t.request(y, ox, 1)).toMatchObject({ ok: false }); // x's address is not y's
      expect(t.request(y, oy, 1)).toMatchObject({ ok: true });
      expect(t.size).toBe(2);
      expect(t.find(x)?.ip).toBe(fmt(ox));
      expect(t.find(y)?.ip).toBe(fmt(oy));
    });

    it('follows one identifier onto a new hardware address (same client, same lease)', () => {
      const t = new LeaseTable(cfg());
      const o = t.offer(withId(A.mac, '01cafe'), null, 0) as number;
      t.request(withId(A.mac, '01cafe'), o, 0);
      expect(t.offer(withId(B.mac, '01cafe'), null, 1)).toBe(o);
      expect(t.request(withId(B.mac, '01cafe'), o, 1)).toMatchObject({ ok: true, lease: { mac: B.mac, clientId: '01cafe' } });
      expect(t.size).toBe(1);
    });

    it('matches by MAC when either side has no identifier (EDK2 sends none, then Linux sends 01:<mac>)', () => {
      const t = new LeaseTable(cfg());
      const o = t.offer(A, null, 0) as number;
      t.request(A, o, 0);
      const linux = withId(A.mac, '01525400000000a');
      expect(t.offer(linux, null, 1)).toBe(o);
      expect(t.request(linux, o, 1)).toMatchObject({ ok: true, lease: { clientId: '01525400000000a' } });
      expect(t.find(A)?.ip).toBe(fmt(o)); // a later exchange without an identifier still finds it
      expect(t.size).toBe(1);
    });

    it('keeps reservations by MAC: every identifier on the reserved MAC gets the reserved address', () => {
      const t = new LeaseTable(cfg({ reservations: new Map([[C.mac, ip('198.18.0.50')]]) }));
      expect(t.request(withId(C.mac, '01ipxe'), ip('198.18.0.50'), 0)).toMatchObject({ ok: true });
      expect(fmt(t.offer(withId(C.mac, 'ffduid'), null, 1))).toBe('198.18.0.50');
      expect(t.request(withId(C.mac, 'ffduid'), ip('198.18.0.50'), 1)).toMatchObject({ ok: true, lease: { clientId: 'ffduid' } });
      expect(t.request(withId(A.mac, 'ffduid2'), ip('198.18.0.50'), 2)).toMatchObject({ ok: false });
    });
  });

  describe('DECLINE and RELEASE from their owner only', () => {
    it('ignores a DECLINE or RELEASE from anyone but the lease\'s client', () => {
      const t = new LeaseTable(cfg());
      const o = t.offer(A, null, 0) as number;
      t.request(A, o, 0);
      expect(t.decline(B, o, 1)).toBe(false);
      expect(t.release(B, o, 1)).toBe(false);
      expect(t.release({ mac: A.mac, clientId: '01other' }, o, 1)).toBe(true); // the lease has no identifier: matched by MAC
      expect(t.find(A)).toMatchObject({ state: 'released' });
    });

    it('takes a DECLINE of an offered address from the client it was offered to', () => {
      const t = new LeaseTable(cfg());
      const o = t.offer(A, null, 0) as number;
      expect(t.decline(B, o, 1)).toBe(false);
      expect(t.decline(A, o, 1)).toBe(true);
      expect(t.offer(B, o, 2)).not.toBe(o);
    });

    it('holds at most maxDeclined addresses as declined (the oldest hold ends first), and each hold expires', () => {
      const t = new LeaseTable(cfg({ maxDeclined: 2 }));
      const ips: number[] = [];
      for (const c of [A, B, C]) {
        const o = t.offer(c, null, 0) as number;
        t.request(c, o, 0);
        ips.push(o);
      }
      for (const [i, c] of [A, B, C].entries()) expect(t.decline(c, ips[i] as number, 10 + i)).toBe(true);
      expect(t.declinedNow(20).map((d) => d.ip)).toEqual([fmt(ips[1] as number), fmt(ips[2] as number)]);
      expect(t.declinedNow(700_000)).toEqual([]);
      expect(t.offer(D, null, 700_001)).not.toBeNull();
    });

    it('bounds declines by default to a quarter of the pool', () => {
      const t = new LeaseTable(cfg({ ranges: [{ start: ip('198.18.0.1'), end: ip('198.18.0.40') }] }));
      for (let i = 0; i < 40; i++) {
        const c = byMac(`52:54:00:00:01:${i.toString(16).padStart(2, '0')}`);
        const o = t.offer(c, null, i);
        if (o === null) break;
        t.request(c, o, i);
        t.decline(c, o, i);
      }
      expect(t.declinedNow(100)).toHaveLength(10);
    });
  });
});
