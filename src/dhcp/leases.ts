/**
 * The address pool and its leases: pure bookkeeping, time passed in.
 *
 * Leases are keyed by the client's hardware address (chaddr), never by
 * option 61: one machine runs up to four DHCP exchanges per boot (firmware
 * PXE, the NBP, Linux), with different client identifiers or none, and all of
 * them must get the same address (shared/WIRE.md, "Leases").
 */
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';

export interface Lease {
  readonly mac: string;
  readonly ip: string;
  /** Wall-clock ms since the epoch. */
  readonly expiresAt: number;
  readonly hostname?: string;
}

export interface AddressRange {
  /** First and last address handed out dynamically (host order numbers). */
  readonly start: number;
  readonly end: number;
}

export interface PoolConfig {
  /** One range per served subnet; the server passes the index of the request's subnet. */
  readonly ranges: readonly AddressRange[];
  readonly leaseSeconds: number;
  /** How long an OFFER holds its address for the client that got it. */
  readonly offerHoldMs: number;
  /** RFC 2131 section 4.3.3: a declined address is not offered for this long. */
  readonly declineHoldMs: number;
  /** Fixed addresses by MAC (from hosts/*.yaml); they may lie outside the range. */
  readonly reservations: ReadonlyMap<string, number>;
  /** Addresses never handed out (the server's own, the router's). */
  readonly excluded: ReadonlySet<number>;
}

export type RequestResult = { readonly ok: true; readonly lease: Lease } | { readonly ok: false; readonly reason: string };

export class LeaseTable {
  private readonly byMac = new Map<string, { ip: number; expiresAt: number; hostname?: string }>();
  private readonly owner = new Map<number, string>();
  private readonly offers = new Map<string, { ip: number; until: number }>();
  /** Offered address -> MAC it is held for (an index over `offers`, so availability is O(1)). */
  private readonly offeredTo = new Map<number, string>();
  private readonly declined = new Map<number, number>();
  private reservedIps = new Map<number, string>();
  private reservations: ReadonlyMap<string, number>;
  private readonly cursors: number[];
  private readonly changed = new Set<string>();

  constructor(
    private readonly cfg: PoolConfig,
    initial: readonly Lease[] = [],
  ) {
    if (cfg.ranges.length === 0) throw new Error('no DHCP range');
    for (const r of cfg.ranges) if (r.end < r.start) throw new Error('DHCP range end is before its start');
    this.reservations = cfg.reservations;
    for (const [mac, ip] of cfg.reservations) this.reservedIps.set(ip, mac);
    for (const l of initial) {
      const ip = parseIpv4(l.ip);
      if (ip === null || this.owner.has(ip)) continue; // unreadable, or a second owner in a corrupt store: skip
      this.byMac.set(l.mac, { ip, expiresAt: l.expiresAt, ...(l.hostname ? { hostname: l.hostname } : {}) });
      this.owner.set(ip, l.mac);
    }
    this.cursors = cfg.ranges.map((r) => r.start);
  }

  /**
   * Replaces the fixed addresses (hosts/*.yaml was edited). Existing leases
   * stay; a client whose reservation changed gets a NAK on its next
   * REQUEST and moves to the new address (RFC 2131 section 4.3.2).
   */
  setReservations(reservations: ReadonlyMap<string, number>): void {
    this.reservations = reservations;
    const byIp = new Map<number, string>();
    for (const [mac, ip] of reservations) byIp.set(ip, mac);
    this.reservedIps = byIp;
  }

  /** The MAC holding an unexpired lease on `ip` (which host is asking, for TFTP quirks). */
  macOf(ip: number, now: number): string | undefined {
    const mac = this.owner.get(ip);
    if (mac === undefined) return undefined;
    const l = this.byMac.get(mac);
    return l && l.expiresAt > now ? mac : undefined;
  }

  get size(): number {
    return this.byMac.size;
  }

  lease(mac: string): Lease | undefined {
    const l = this.byMac.get(mac);
    return l ? { mac, ip: formatIpv4(l.ip), expiresAt: l.expiresAt, ...(l.hostname ? { hostname: l.hostname } : {}) } : undefined;
  }

  all(): Lease[] {
    return [...this.byMac.keys()].map((mac) => this.lease(mac) as Lease);
  }

  /** MACs whose lease changed since the last call (for the durable store). */
  takeChanged(): string[] {
    const out = [...this.changed];
    this.changed.clear();
    return out;
  }

  inRange(ip: number): boolean {
    return this.cfg.ranges.some((r) => ip >= r.start && ip <= r.end);
  }

  /** Can `mac` have `ip` right now? */
  private available(ip: number, mac: string, now: number): boolean {
    if (this.cfg.excluded.has(ip)) return false;
    const reservedFor = this.reservedIps.get(ip);
    if (reservedFor !== undefined && reservedFor !== mac) return false;
    if (reservedFor === undefined && !this.inRange(ip)) return false;
    if ((this.declined.get(ip) ?? 0) > now) return false;
    const other = this.owner.get(ip);
    if (other !== undefined && other !== mac) {
      const l = this.byMac.get(other);
      if (l && l.expiresAt > now) return false;
    }
    const offeredTo = this.offeredTo.get(ip);
    if (offeredTo !== undefined && offeredTo !== mac && (this.offers.get(offeredTo)?.until ?? 0) > now) return false;
    return true;
  }

  /**
   * DHCPDISCOVER (RFC 2131 section 4.3.1): the address to offer, holding it
   * for `offerHoldMs`. Preference: the MAC's reservation, its current or past
   * lease, the address it asks for, then a free address (never-used before
   * expired ones). null when the pool is exhausted.
   */
  offer(mac: string, requested: number | null, now: number, range = 0): number | null {
    const pick = this.pick(mac, requested, now, range);
    if (pick !== null) {
      this.dropOffer(mac);
      this.offers.set(mac, { ip: pick, until: now + this.cfg.offerHoldMs });
      this.offeredTo.set(pick, mac);
    }
    return pick;
  }

  private dropOffer(mac: string): void {
    const o = this.offers.get(mac);
    if (!o) return;
    this.offers.delete(mac);
    if (this.offeredTo.get(o.ip) === mac) this.offeredTo.delete(o.ip);
  }

  /** Candidates outside `range` (another subnet's addresses) are never offered. */
  private pick(mac: string, requested: number | null, now: number, rangeIndex: number): number | null {
    const range = this.cfg.ranges[rangeIndex];
    if (!range) return null;
    const within = (ip: number): boolean => (ip >= range.start && ip <= range.end) || this.reservedIps.get(ip) === mac;
    const reserved = this.reservations.get(mac);
    if (reserved !== undefined) return this.available(reserved, mac, now) ? reserved : null;
    const held = this.offers.get(mac);
    if (held && held.until > now && within(held.ip) && this.available(held.ip, mac, now)) return held.ip;
    const current = this.byMac.get(mac);
    if (current && within(current.ip) && this.available(current.ip, mac, now)) return current.ip;
    if (requested !== null && within(requested) && this.available(requested, mac, now)) return requested;
    const n = range.end - range.start + 1;
    // first pass: addresses nobody ever had; second: expired leases of others
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < n; i++) {
        const ip = this.cursors[rangeIndex] as number;
        this.cursors[rangeIndex] = ip >= range.end ? range.start : ip + 1;
        if (pass === 0 && this.owner.has(ip)) continue;
        if (this.available(ip, mac, now)) return ip;
      }
    }
    return null;
  }

  /**
   * DHCPREQUEST for `ip` (any state, RFC 2131 section 4.3.2): binds or
   * extends the lease, or says why it must be NAKed.
   */
  request(mac: string, ip: number, now: number, hostname?: string): RequestResult {
    const reserved = this.reservations.get(mac);
    if (reserved !== undefined && reserved !== ip) return { ok: false, reason: `${mac} is reserved ${formatIpv4(reserved)}` };
    if (!this.available(ip, mac, now)) return { ok: false, reason: `${formatIpv4(ip)} is not available to ${mac}` };
    const old = this.byMac.get(mac);
    if (old && old.ip !== ip && this.owner.get(old.ip) === mac) this.owner.delete(old.ip);
    const prevOwner = this.owner.get(ip);
    if (prevOwner !== undefined && prevOwner !== mac) {
      this.byMac.delete(prevOwner); // an expired lease of another client, reclaimed
      this.changed.add(prevOwner);
    }
    const expiresAt = now + this.cfg.leaseSeconds * 1000;
    const name = hostname ?? old?.hostname;
    this.byMac.set(mac, { ip, expiresAt, ...(name ? { hostname: name } : {}) });
    this.owner.set(ip, mac);
    this.dropOffer(mac);
    this.changed.add(mac);
    return { ok: true, lease: this.lease(mac) as Lease };
  }

  /** The client chose another server (SELECTING with a foreign server id): free our offer. */
  forgetOffer(mac: string): void {
    this.dropOffer(mac);
  }

  /** DHCPDECLINE (RFC 2131 section 4.3.3): the address is in use by someone else. */
  decline(mac: string, ip: number, now: number): void {
    this.declined.set(ip, now + this.cfg.declineHoldMs);
    const l = this.byMac.get(mac);
    if (l && l.ip === ip) {
      this.byMac.delete(mac);
      this.owner.delete(ip);
      this.changed.add(mac);
    }
    this.dropOffer(mac);
  }

  /** DHCPRELEASE: the lease ends now; the MAC keeps its claim on the address for next time. */
  release(mac: string, ip: number, now: number): boolean {
    const l = this.byMac.get(mac);
    if (!l || l.ip !== ip) return false;
    this.byMac.set(mac, { ...l, expiresAt: Math.min(l.expiresAt, now) });
    this.changed.add(mac);
    return true;
  }
}
