/**
 * Per-client limits on the request port, so that one address cannot take
 * every transfer slot (everyone else would get "Server busy") or keep the
 * server resolving files for a flood of requests:
 * - at most `maxTransfers` transfers in flight per client address;
 * - requests per address through a token bucket (`requestsPerSecond`,
 *   `burst`); a request over the rate is dropped without an answer (the
 *   client retransmits; an answer would feed the flood).
 * Addresses are tracked in a bounded table (a spoofed-source flood cannot
 * grow it without bound): the least recently seen idle address goes first.
 * Pure bookkeeping; time comes in as milliseconds.
 */

export interface ClientLimits {
  readonly maxTransfers: number;
  readonly requestsPerSecond: number;
  readonly burst: number;
}

interface Entry {
  tokens: number;
  at: number;
  active: number;
}

export class ClientLimiter {
  private readonly clients = new Map<string, Entry>();

  constructor(
    private readonly limits: ClientLimits,
    private readonly maxTracked = 65_536,
  ) {}

  private entry(addr: string, now: number): Entry {
    let e = this.clients.get(addr);
    if (e) {
      this.clients.delete(addr); // re-inserted below: Map order is recency
    } else {
      e = { tokens: this.limits.burst, at: now, active: 0 };
      if (this.clients.size >= this.maxTracked) this.evictOne();
    }
    this.clients.set(addr, e);
    return e;
  }

  private evictOne(): void {
    for (const [addr, e] of this.clients) {
      if (e.active === 0) {
        this.clients.delete(addr);
        return;
      }
    }
  }

  /** A request from `addr` arrived: false when it is over the address's rate. */
  admit(addr: string, now: number): boolean {
    const e = this.entry(addr, now);
    e.tokens = Math.min(this.limits.burst, e.tokens + ((now - e.at) * this.limits.requestsPerSecond) / 1000);
    e.at = now;
    if (e.tokens < 1) return false;
    e.tokens -= 1;
    return true;
  }

  /** Takes a transfer slot for `addr`; false when it has its maximum in flight. */
  acquire(addr: string, now: number): boolean {
    const e = this.entry(addr, now);
    if (e.active >= this.limits.maxTransfers) return false;
    e.active++;
    return true;
  }

  release(addr: string): void {
    const e = this.clients.get(addr);
    if (e && e.active > 0) e.active--;
  }

  active(addr: string): number {
    return this.clients.get(addr)?.active ?? 0;
  }

  get tracked(): number {
    return this.clients.size;
  }
}
