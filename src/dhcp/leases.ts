/**
 * The address pool and its leases: pure bookkeeping, time passed in.
 *
 * Client identity (RFC 2131 section 4.2, RFC 6842): a client is its client
 * identifier (option 61) when it sends one, else its hardware address
 * (chaddr). Two clients with one MAC and different identifiers are two
 * clients; one identifier seen on a new MAC is the same client. A lease
 * recorded without an identifier, or a request without one, is matched by
 * MAC (Kea's `Lease4::belongsToClient`): EDK2's PXE sends no option 61 and
 * the Linux that follows sends `01:<mac>`, and both must get the same lease
 * (shared/WIRE.md, "Leases").
 *
 * Reservations (hosts/*.yaml) stay by MAC: a reserved address belongs to
 * every exchange from that MAC whatever identifier it sends, because one
 * machine's boot runs up to four exchanges (firmware, NBP, Linux) and they
 * may send different identifiers (iPXE `01:<mac>`, systemd-networkd a DUID).
 *
 * Leases are keyed by address, as Kea's lease4 table is.
 */
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';

/** Who is asking: the hardware address and the client identifier (option 61, hex) if sent. */
export interface ClientIdentity {
  readonly mac: string;
  readonly clientId: string | null;
}

/** `active`: bound; `released`: ended by DHCPRELEASE, the address still remembered for its client. */
export type LeaseState = 'active' | 'released';

export interface Lease {
  readonly mac: string;
  readonly ip: string;
  /** Option 61 as lower-case hex, when the client sent one. */
  readonly clientId?: string | undefined;
  /** Wall-clock ms since the epoch. */
  readonly expiresAt: number;
  readonly hostname?: string | undefined;
  /** Absent in records written before it existed: `active`. */
  readonly state?: LeaseState;
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
  /**
   * At most this many addresses are held as declined at once (default: a
   * quarter of the pool, at least 1); the oldest hold ends early beyond it, so
   * DECLINEs (a conflicting device, or a client that declines whatever it
   * gets) can never take the whole pool out of service.
   */
  readonly maxDeclined?: number;
  /** Fixed addresses by MAC (from hosts/*.yaml); they may lie outside the range. */
  readonly reservations: ReadonlyMap<string, number>;
  /** Addresses never handed out (the server's own, the router's). */
  readonly excluded: ReadonlySet<number>;
}

export type RequestResult = { readonly ok: true; readonly lease: Lease } | { readonly ok: false; readonly reason: string };

interface Rec {
  mac: string;
  clientId: string | null;
  expiresAt: number;
  hostname: string | undefined;
  state: LeaseState;
}

interface Offer {
  readonly ip: number;
  readonly until: number;
  readonly mac: string;
  readonly clientId: string | null;
}

/** Kea's rule: identifiers decide when both sides have one; otherwise the MAC does. */
function belongs(rec: { readonly mac: string; readonly clientId: string | null }, id: ClientIdentity): boolean {
  if (rec.clientId !== null && id.clientId !== null) return rec.clientId === id.clientId;
  return rec.mac === id.mac;
}

function keyOf(id: ClientIdentity): string {
  return id.clientId !== null ? `c${id.clientId}` : `m${id.mac}`;
}

export function describeClient(id: ClientIdentity): string {
  return id.clientId !== null ? `${id.mac} (client id ${id.clientId})` : id.mac;
}

export class LeaseTable {
  private readonly byIp = new Map<number, Rec>();
  private readonly byMac = new Map<string, Set<number>>();
  private readonly byClientId = new Map<string, number>();
  private readonly offers = new Map<string, Offer>();
  /** Offered address -> key of the client it is held for (an index over `offers`, so availability is O(1)). */
  private readonly offeredTo = new Map<number, string>();
  /** Declined address -> until when; insertion order is decline order (oldest first). */
  private readonly declined = new Map<number, number>();
  private readonly maxDeclined: number;
  private reservedIps = new Map<number, string>();
  private reservations: ReadonlyMap<string, number>;
  private readonly cursors: number[];
  private readonly changed = new Set<number>();

  constructor(
    private readonly cfg: PoolConfig,
    initial: readonly Lease[] = [],
  ) {
    if (cfg.ranges.length === 0) throw new Error('no DHCP range');
    for (const r of cfg.ranges) if (r.end < r.start) throw new Error('DHCP range end is before its start');
    const poolSize = cfg.ranges.reduce((n, r) => n + (r.end - r.start + 1), 0);
    this.maxDeclined = cfg.maxDeclined ?? Math.max(1, Math.floor(poolSize / 4));
    this.reservations = cfg.reservations;
    for (const [mac, ip] of cfg.reservations) this.reservedIps.set(ip, mac);
    this.putAll(initial);
    this.cursors = cfg.ranges.map((r) => r.start);
    this.changed.clear(); // what was loaded is already on disk
  }

  private putAll(leases: readonly Lease[]): void {
    for (const l of leases) {
      const ip = parseIpv4(l.ip);
      if (ip === null) continue; // unreadable record in a damaged store: skip
      this.put(ip, { mac: l.mac, clientId: l.clientId ?? null, expiresAt: l.expiresAt, hostname: l.hostname, state: l.state ?? 'active' });
    }
  }

  /**
   * Starts over from the stored leases (an instance that takes over a
   * segment from another reads what that one committed). Offers and
   * declines held in memory go: they were never promised in the store, and
   * the new leader's store is the truth. Pending changes are dropped too:
   * the caller reloads only when nothing it wrote is unacknowledged.
   */
  reload(leases: readonly Lease[]): void {
    this.byIp.clear();
    this.byMac.clear();
    this.byClientId.clear();
    this.offers.clear();
    this.offeredTo.clear();
    this.declined.clear();
    this.putAll(leases);
    this.changed.clear();
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
    const r = this.byIp.get(ip);
    return r && r.expiresAt > now ? r.mac : undefined;
  }

  get size(): number {
    return this.byIp.size;
  }

  /** One shape for every lease (absent values are undefined, which JSON leaves out): the request path stays monomorphic. */
  private view(ip: number, r: Rec): Lease {
    return { mac: r.mac, ip: formatIpv4(ip), clientId: r.clientId ?? undefined, expiresAt: r.expiresAt, hostname: r.hostname || undefined, state: r.state };
  }

  /** The lease on `ip`, expired or not. */
  leaseAt(ip: number): Lease | undefined {
    const r = this.byIp.get(ip);
    return r ? this.view(ip, r) : undefined;
  }

  /** The lease this client holds or last held (expired or released included). */
  find(id: ClientIdentity): Lease | undefined {
    const ip = this.findIp(id);
    return ip === null ? undefined : this.leaseAt(ip);
  }

  /** The address of the client's lease or last lease (a number), without building a Lease; null: no record. */
  addressOf(id: ClientIdentity): number | null {
    return this.findIp(id);
  }

  /** The host name recorded with the client's lease, without building a Lease. */
  hostnameOf(id: ClientIdentity): string | undefined {
    const ip = this.findIp(id);
    return ip === null ? undefined : (this.byIp.get(ip) as Rec).hostname;
  }

  /** The newest lease of any client on this MAC (which address a host in hosts/ has now). */
  latestForMac(mac: string): Lease | undefined {
    let best: number | null = null;
    for (const ip of this.byMac.get(mac) ?? []) {
      if (best === null || (this.byIp.get(ip) as Rec).expiresAt > (this.byIp.get(best) as Rec).expiresAt) best = ip;
    }
    return best === null ? undefined : this.leaseAt(best);
  }

  /**
   * Per range (in the order configured): its size, the addresses held by an
   * unexpired lease, and those declined and still held back (RFC 2131 section
   * 4.3.3). For the metrics exporter: one pass over the leases, when scraped.
   */
  rangeUsage(now: number): { readonly start: number; readonly end: number; readonly total: number; readonly assigned: number; readonly declined: number }[] {
    const out = this.cfg.ranges.map((r) => ({ start: r.start, end: r.end, total: r.end - r.start + 1, assigned: 0, declined: 0 }));
    const slot = (ip: number) => out.find((r) => ip >= r.start && ip <= r.end);
    for (const [ip, r] of this.byIp) {
      if (r.expiresAt <= now || r.state !== 'active') continue;
      const s = slot(ip);
      if (s) s.assigned++;
    }
    for (const [ip, until] of this.declined) {
      if (until <= now) continue;
      const s = slot(ip);
      if (s) s.declined++;
    }
    return out;
  }

  all(): Lease[] {
    return [...this.byIp].map(([ip, r]) => this.view(ip, r));
  }

  /** Addresses whose lease changed since the last call (for the durable store). */
  takeChanged(): number[] {
    const out = [...this.changed];
    this.changed.clear();
    return out;
  }

  /** Puts addresses back on the changed list: their write failed and must be retried. */
  markChanged(ips: readonly number[]): void {
    for (const ip of ips) this.changed.add(ip);
  }

  inRange(ip: number): boolean {
    return this.cfg.ranges.some((r) => ip >= r.start && ip <= r.end);
  }

  /** Is `ip` one this server hands out at all (a range, or a reservation)? */
  isOurs(ip: number): boolean {
    return this.inRange(ip) || this.reservedIps.has(ip);
  }

  /** Does this MAC have a fixed address (hosts/*.yaml)? */
  reservationOf(mac: string): number | undefined {
    return this.reservations.get(mac);
  }

  private findIp(id: ClientIdentity): number | null {
    if (id.clientId !== null) {
      const ip = this.byClientId.get(id.clientId);
      if (ip !== undefined) return ip;
    }
    let best: number | null = null;
    for (const ip of this.byMac.get(id.mac) ?? []) {
      const r = this.byIp.get(ip) as Rec;
      if (!belongs(r, id)) continue;
      if (best === null || r.expiresAt > (this.byIp.get(best) as Rec).expiresAt) best = ip;
    }
    return best;
  }

  private put(ip: number, r: Rec): void {
    this.remove(ip);
    this.byIp.set(ip, r);
    let set = this.byMac.get(r.mac);
    if (!set) this.byMac.set(r.mac, (set = new Set()));
    set.add(ip);
    if (r.clientId !== null) {
      const prev = this.byClientId.get(r.clientId);
      // one identifier, one lease: an older lease under the same identifier is this client's past
      if (prev !== undefined && prev !== ip) this.remove(prev);
      this.byClientId.set(r.clientId, ip);
    }
  }

  private remove(ip: number): void {
    const r = this.byIp.get(ip);
    if (!r) return;
    this.byIp.delete(ip);
    const set = this.byMac.get(r.mac);
    set?.delete(ip);
    if (set && set.size === 0) this.byMac.delete(r.mac);
    if (r.clientId !== null && this.byClientId.get(r.clientId) === ip) this.byClientId.delete(r.clientId);
    this.changed.add(ip);
  }

  private declinedUntil(ip: number, now: number): number {
    const until = this.declined.get(ip);
    if (until === undefined) return 0;
    if (until <= now) {
      this.declined.delete(ip);
      return 0;
    }
    return until;
  }

  /** Can this client have `ip` right now? */
  private available(ip: number, id: ClientIdentity, now: number): boolean {
    if (this.cfg.excluded.has(ip)) return false;
    const reservedFor = this.reservedIps.get(ip);
    if (reservedFor !== undefined && reservedFor !== id.mac) return false;
    if (reservedFor === undefined && !this.inRange(ip)) return false;
    if (this.declinedUntil(ip, now) > now) return false;
    const r = this.byIp.get(ip);
    // a reserved address belongs to its MAC, whichever identifier the lease on it was taken with
    if (r && r.expiresAt > now && !belongs(r, id) && reservedFor !== id.mac) return false;
    const offeredTo = this.offeredTo.get(ip);
    if (offeredTo !== undefined && offeredTo !== keyOf(id)) {
      const o = this.offers.get(offeredTo);
      if (o && o.until > now && !belongs(o, id)) return false;
    }
    return true;
  }

  /**
   * DHCPDISCOVER (RFC 2131 section 4.3.1): the address to offer, holding it
   * for `offerHoldMs`. Preference: the MAC's reservation, the client's
   * current or past lease, the address it asks for, then a free address
   * (never-used before expired ones). null when the pool is exhausted.
   */
  offer(id: ClientIdentity, requested: number | null, now: number, range = 0): number | null {
    const pick = this.pick(id, requested, now, range);
    if (pick !== null) {
      this.dropOffer(id);
      const key = keyOf(id);
      this.offers.set(key, { ip: pick, until: now + this.cfg.offerHoldMs, mac: id.mac, clientId: id.clientId });
      this.offeredTo.set(pick, key);
    }
    return pick;
  }

  private dropOffer(id: ClientIdentity): void {
    const key = keyOf(id);
    const o = this.offers.get(key);
    if (!o) return;
    this.offers.delete(key);
    if (this.offeredTo.get(o.ip) === key) this.offeredTo.delete(o.ip);
  }

  /** Candidates outside `range` (another subnet's addresses) are never offered. */
  private pick(id: ClientIdentity, requested: number | null, now: number, rangeIndex: number): number | null {
    const range = this.cfg.ranges[rangeIndex];
    if (!range) return null;
    const within = (ip: number): boolean => (ip >= range.start && ip <= range.end) || this.reservedIps.get(ip) === id.mac;
    const reserved = this.reservations.get(id.mac);
    if (reserved !== undefined) return this.available(reserved, id, now) ? reserved : null;
    const held = this.offers.get(keyOf(id));
    if (held && held.until > now && within(held.ip) && this.available(held.ip, id, now)) return held.ip;
    const current = this.findIp(id);
    if (current !== null && within(current) && this.available(current, id, now)) return current;
    if (requested !== null && within(requested) && this.available(requested, id, now)) return requested;
    const n = range.end - range.start + 1;
    // first pass: addresses nobody ever had; second: expired leases of others
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < n; i++) {
        const ip = this.cursors[rangeIndex] as number;
        this.cursors[rangeIndex] = ip >= range.end ? range.start : ip + 1;
        if (pass === 0 && this.byIp.has(ip)) continue;
        if (this.available(ip, id, now)) return ip;
      }
    }
    return null;
  }

  /**
   * DHCPREQUEST for `ip` (any state, RFC 2131 section 4.3.2): binds or
   * extends the lease, or says why it must be NAKed. The client's lease on
   * another address, if any, ends: a client holds one lease.
   */
  request(id: ClientIdentity, ip: number, now: number, hostname?: string): RequestResult {
    const reserved = this.reservations.get(id.mac);
    if (reserved !== undefined && reserved !== ip) return { ok: false, reason: `${id.mac} is reserved ${formatIpv4(reserved)}` };
    if (!this.available(ip, id, now)) return { ok: false, reason: `${formatIpv4(ip)} is not available to ${describeClient(id)}` };
    const oldIp = this.findIp(id);
    const old = oldIp !== null ? this.byIp.get(oldIp) : undefined;
    if (oldIp !== null && oldIp !== ip) this.remove(oldIp);
    const here = this.byIp.get(ip);
    const name = hostname ?? (here && belongs(here, id) ? here.hostname : undefined) ?? old?.hostname;
    // an expired lease of another client on `ip` is reclaimed by the put
    this.put(ip, { mac: id.mac, clientId: id.clientId, expiresAt: now + this.cfg.leaseSeconds * 1000, hostname: name, state: 'active' });
    this.dropOffer(id);
    this.changed.add(ip);
    return { ok: true, lease: this.leaseAt(ip) as Lease };
  }

  /** The client chose another server (SELECTING with a foreign server id): free our offer. */
  forgetOffer(id: ClientIdentity): void {
    this.dropOffer(id);
  }

  /**
   * DHCPDECLINE (RFC 2131 section 4.3.3): the address is in use by someone
   * else. Taken only from the client the address is leased or offered to;
   * false (and nothing changes) otherwise.
   */
  decline(id: ClientIdentity, ip: number, now: number): boolean {
    const r = this.byIp.get(ip);
    const o = this.offers.get(keyOf(id));
    const owns = (r !== undefined && r.expiresAt > now && belongs(r, id)) || (o !== undefined && o.ip === ip && o.until > now);
    if (!owns) return false;
    if (r && belongs(r, id)) this.remove(ip);
    this.dropOffer(id);
    this.declined.delete(ip);
    this.declined.set(ip, now + this.cfg.declineHoldMs);
    // bounded: beyond the cap the oldest holds end early
    for (const old of this.declined.keys()) {
      if (this.declined.size <= this.maxDeclined) break;
      this.declined.delete(old);
    }
    return true;
  }

  /** Addresses held as declined now, with when each hold ends. */
  declinedNow(now: number): { ip: string; until: number }[] {
    const out: { ip: string; until: number }[] = [];
    for (const [ip, until] of this.declined) if (until > now) out.push({ ip: formatIpv4(ip), until });
    return out;
  }

  /**
   * DHCPRELEASE (RFC 2131 section 4.4.6): the lease ends now; the client
   * keeps its claim on the address for next time. Only from the lease's own
   * client; false (and nothing changes) otherwise.
   */
  release(id: ClientIdentity, ip: number, now: number): boolean {
    const r = this.byIp.get(ip);
    if (!r || !belongs(r, id) || r.state === 'released') return false;
    r.expiresAt = Math.min(r.expiresAt, now);
    r.state = 'released';
    this.changed.add(ip);
    return true;
  }
}
