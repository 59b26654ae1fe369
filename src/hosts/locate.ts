/**
 * Which host is behind an address or a MAC: by its reserved address in
 * hosts/*.yaml, else by the lease its MAC holds. One place for the question
 * the TFTP quirks, the upload folders and the after-boot records all ask.
 */
import { parseIpv4 } from '../net/ipv4.js';
import type { HostSet } from './directory.js';
import { macHyphen, type Host } from './types.js';

export interface HostLocatorDeps {
  /** The host set being served now. */
  readonly hosts: () => HostSet | undefined;
  /** The MAC that holds a lease on an address now (undefined: none, or no DHCP). */
  readonly macAt: (ip: number) => string | undefined;
}

/** Per-host TFTP negotiation limits (hosts/*.yaml quirks). */
export interface TftpQuirkLimits {
  readonly maxBlksize?: number;
  readonly maxWindowsize?: number;
}

/** A host that after-boot records may be kept for; `ifRecorded`: only if a record exists already. */
export interface TrackedHost {
  readonly name: string;
  readonly image?: string;
  readonly ifRecorded?: boolean;
}

export class HostLocator {
  constructor(private readonly d: HostLocatorDeps) {}

  /** The host at an address: by its reserved IP, else by the MAC its lease belongs to. */
  at(address: string): { host?: Host; mac?: string } {
    const set = this.d.hosts();
    const reserved = set?.byIp(address);
    if (reserved) return { host: reserved };
    const ip = parseIpv4(address);
    const mac = ip === null ? undefined : this.d.macAt(ip);
    if (!mac) return {};
    const host = set?.byMac(mac);
    return host ? { host, mac } : { mac };
  }

  /** Firmware quirks of the host at an address, as TFTP negotiation limits. */
  tftpLimits(address: string): TftpQuirkLimits | undefined {
    const q = this.at(address).host?.quirks;
    if (!q) return undefined;
    return { ...(q.tftpMaxBlksize !== undefined ? { maxBlksize: q.tftpMaxBlksize } : {}), ...(q.tftpNoWindowsize ? { maxWindowsize: 1 } : {}) };
  }

  /** The name uploads from an address go under: the host's name, or the MAC of an unknown machine (as bee.report= names them). */
  uploadName(address: string): string | undefined {
    const at = this.at(address);
    return at.host?.name ?? (at.mac ? macHyphen(at.mac) : undefined);
  }

  /**
   * The host whose records an address's transfers belong to: a host in
   * hosts/, else an unknown machine that bootd already keeps a record of.
   */
  trackedAt(address: string): TrackedHost | undefined {
    const at = this.at(address);
    if (at.host) return { name: at.host.name };
    return at.mac ? { name: macHyphen(at.mac), ifRecorded: true } : undefined;
  }

  /**
   * The host a DHCP exchange belongs to. Records are kept for hosts in
   * hosts/, and for unknown machines bootd boots (`unknownImage`, given when
   * unknown_hosts is boot) once they netboot (PXE or iPXE); an unknown
   * machine that has a record stays tracked (its OS's DHCP).
   */
  trackedMac(mac: string, netboot: boolean, unknownImage: string | undefined): TrackedHost | undefined {
    const h = this.d.hosts()?.byMac(mac);
    if (h) return { name: h.name, ...(h.netboot ? { image: h.image.name } : {}) };
    // asked for every OFFER and ACK: plain literals, no spreads (this is on the DHCP event path)
    const name = macHyphen(mac);
    if (unknownImage === undefined) return { name, ifRecorded: true };
    return netboot ? { name, image: unknownImage } : { name, image: unknownImage, ifRecorded: true };
  }
}
