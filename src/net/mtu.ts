/**
 * The MTU of the interface that carries traffic for a local IPv4 address,
 * read from Linux sysfs. Used to clamp TFTP blksize (RFC 2348) so DATA
 * packets are never IP-fragmented: PXE ROMs often cannot reassemble.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export const DEFAULT_MTU = 1500;

export type MtuLookup = (localAddress: string) => number;

/** Finds the interface holding `localAddress` and returns its MTU (1500 when unknown). */
export function linuxMtu(localAddress: string): number {
  const ifaces = os.networkInterfaces();
  for (const [name, addrs] of Object.entries(ifaces)) {
    if (!addrs?.some((a) => a.address === localAddress)) continue;
    try {
      const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
      if (Number.isInteger(mtu) && mtu >= 68) return mtu;
    } catch {
      // not Linux, or the interface vanished
    }
    return DEFAULT_MTU;
  }
  return DEFAULT_MTU;
}

/** Caches lookups; interface MTUs rarely change and the lookup reads sysfs. */
export function cachedMtu(lookup: MtuLookup, ttlMs = 10_000, now: () => number = Date.now): MtuLookup {
  const cache = new Map<string, { mtu: number; at: number }>();
  return (addr) => {
    const hit = cache.get(addr);
    const t = now();
    if (hit && t - hit.at < ttlMs) return hit.mtu;
    const mtu = lookup(addr);
    cache.set(addr, { mtu, at: t });
    return mtu;
  };
}
