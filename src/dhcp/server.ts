/**
 * The DHCP server, full mode: decode, decide, encode, send. Address
 * bookkeeping is in leases.ts, the boot file choice in boot-policy.ts, the
 * wire format in packet.ts. An ACK leaves only after its lease is on disk.
 */
import type { Clock } from '../net/clock.js';
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';
import type { Remote, UdpSocket } from '../net/udp.js';
import type { Logger } from '../log.js';
import type { LeaseStore } from '../state/lease-store.js';
import { chooseBoot, clientFacts, pxelinuxPathPrefix, type BootDecision, type BootFileNames, type ClientFacts, type Loader } from './boot-policy.js';
import type { LeaseTable } from './leases.js';
import { IpxeSub, MessageType, Opt, decodeValue, encodeValue } from './options.js';
import { BOOTREPLY, BOOTREQUEST, DEFAULT_MAX_BYTES, DhcpDecodeError, FLAG_BROADCAST, decodeDhcp, encodeDhcp, getOption, hardwareAddress, type DhcpOption, type DhcpPacket } from './packet.js';

export type UnknownHosts = 'ignore' | 'lease' | 'boot';

/** A subnet reached through a relay agent (RFC 2131 section 4.3.1: chosen by giaddr). */
export interface RelayedSubnet {
  readonly network: string;
  readonly mask: string;
  readonly router?: string;
}

export interface DhcpServerConfig {
  /**
   * full: addresses and boot files. proxy: boot files only, beside another
   * DHCP server (PXE spec 2.1 "proxyDHCP"); no leases, nothing written.
   */
  readonly mode?: 'full' | 'proxy';
  /** This server's address on the served interface: option 54 and the default next server. */
  readonly serverIp: string;
  readonly subnetMask: string;
  readonly router?: string;
  /** Further subnets served through relays; lease range i + 1 belongs to relayed subnet i. */
  readonly relayed?: readonly RelayedSubnet[];
  readonly dns?: readonly string[];
  readonly leaseSeconds: number;
  /** What clients not in hosts/*.yaml get: nothing (default), a lease, or a lease and a boot file. */
  readonly unknownHosts: UnknownHosts;
  readonly bootFiles: BootFileNames;
  /** Loader for hosts that name none, and for unknown machines (--default-loader); absent: the boot files above. */
  readonly defaultLoader?: Loader;
  /** siaddr and option 66 (next server); defaults to serverIp. */
  readonly nextServer?: string;
}

export interface DhcpStats {
  received: number;
  malformed: number;
  ignored: number;
  offers: number;
  acks: number;
  naks: number;
  declines: number;
  releases: number;
  informs: number;
  poolExhausted: number;
}

/** The server sees a host directory through this: "not found" is a normal answer. */
export interface HostLookup {
  isKnown(mac: string): boolean;
  /** May this host netboot at all? (a host set to local boot gets a plain lease) */
  mayNetboot?(mac: string): boolean;
  /** The host name to give (option 12), overriding what the client asked for. */
  hostname?(mac: string): string | undefined;
  /** The host's boot loader choice (hosts/*.yaml `loader`); undefined: the configured boot files. */
  loader?(mac: string): Loader | undefined;
  /** Per-host quirk: wait this long before answering (a PXE ROM that listens late). */
  replyDelayMs?(mac: string): number;
}

export interface DhcpServerDeps {
  readonly socket: UdpSocket;
  /** Proxy mode: the PXE boot-server port 4011, where clients may ask again for boot information. */
  readonly pxeSocket?: UdpSocket;
  readonly clock: Clock;
  readonly leases: LeaseTable;
  readonly store: Pick<LeaseStore, 'commit'>;
  readonly hosts: HostLookup;
  readonly log: Logger;
  readonly config: DhcpServerConfig;
}

/** An OFFER or ACK as it went out, for the per-host timeline (src/afterboot/). */
export interface DhcpEvent {
  readonly type: 'offer' | 'ack';
  readonly mac: string;
  readonly ip: string;
  readonly vendorClass: string | null;
  readonly arch: number | null;
  /** Vendor class PXEClient: a firmware PXE stack (or iPXE). */
  readonly pxe: boolean;
  readonly userClassIpxe: boolean;
  readonly bootFile: string | null;
}

type Required0<T> = { readonly [K in keyof T]-?: T[K] | undefined };

/** The server's config with every key present, as a class of its own: see `Wired`. */
class WiredConfig implements Required0<DhcpServerConfig> {
  readonly mode: DhcpServerConfig['mode'];
  readonly serverIp: string;
  readonly subnetMask: string;
  readonly router: string | undefined;
  readonly relayed: readonly RelayedSubnet[] | undefined;
  readonly dns: readonly string[] | undefined;
  readonly leaseSeconds: number;
  readonly unknownHosts: UnknownHosts;
  readonly bootFiles: BootFileNames;
  readonly defaultLoader: Loader | undefined;
  readonly nextServer: string | undefined;

  constructor(c: DhcpServerConfig) {
    this.mode = c.mode;
    this.serverIp = c.serverIp;
    this.subnetMask = c.subnetMask;
    this.router = c.router;
    this.relayed = c.relayed;
    this.dns = c.dns;
    this.leaseSeconds = c.leaseSeconds;
    this.unknownHosts = c.unknownHosts;
    this.bootFiles = c.bootFiles;
    this.defaultLoader = c.defaultLoader;
    this.nextServer = c.nextServer;
  }
}

/**
 * The caller's deps and config copied into instances of classes of their
 * own. V8 compiles the request path against the types each object field has
 * held, and plain object literals share hidden classes with every other
 * literal that starts with the same keys (a TFTP server's `{ socket, ... }`,
 * a spread in the caller): when one of those stores another type into a
 * shared field, code compiled during the warm-up (src/dhcp/warmup.ts) is
 * thrown away, and the real server's first clients pay for compiling it
 * again. Instances of these classes are made only here.
 */
class Wired {
  readonly socket: UdpSocket;
  readonly pxeSocket: UdpSocket | undefined;
  readonly clock: Clock;
  readonly leases: LeaseTable;
  readonly store: Pick<LeaseStore, 'commit'>;
  readonly hosts: HostLookup;
  readonly log: Logger;
  readonly config: WiredConfig;

  constructor(d: DhcpServerDeps) {
    this.socket = d.socket;
    this.pxeSocket = d.pxeSocket;
    this.clock = d.clock;
    this.leases = d.leases;
    this.store = d.store;
    this.hosts = d.hosts;
    this.log = d.log;
    this.config = new WiredConfig(d.config);
  }
}

const CLIENT_PORT = 68;
const SERVER_PORT = 67;
const BROADCAST = '255.255.255.255';
const ZERO = '0.0.0.0';

interface Subnet {
  readonly net: number;
  readonly mask: number;
  readonly maskText: string;
  readonly router?: string;
  /** Index of this subnet's range in the LeaseTable. */
  readonly range: number;
}

export class DhcpServer {
  readonly counters: DhcpStats = { received: 0, malformed: 0, ignored: 0, offers: 0, acks: 0, naks: 0, declines: 0, releases: 0, informs: 0, poolExhausted: 0 };
  private readonly serverIpNum: number;
  /** The local subnet first, then the relayed ones. */
  private readonly subnets: Subnet[];
  private closed = false;
  private readonly listeners: ((e: DhcpEvent) => void)[] = [];

  private readonly d: Wired;

  constructor(deps: DhcpServerDeps) {
    const d = new Wired(deps);
    this.d = d;
    this.serverIpNum = parseIpv4(d.config.serverIp) ?? 0;
    const mask = parseIpv4(d.config.subnetMask) ?? 0;
    this.subnets = [
      { net: (this.serverIpNum & mask) >>> 0, mask, maskText: d.config.subnetMask, ...(d.config.router ? { router: d.config.router } : {}), range: 0 },
      ...(d.config.relayed ?? []).map((r, i) => {
        const m = parseIpv4(r.mask) ?? 0;
        return { net: ((parseIpv4(r.network) ?? 0) & m) >>> 0, mask: m, maskText: r.mask, ...(r.router ? { router: r.router } : {}), range: i + 1 };
      }),
    ];
    d.socket.onMessage((msg, from) => {
      void this.onMessage(msg, from).catch((err: unknown) => d.log.error({ err: String(err) }, 'dhcp handler failed'));
    });
    d.socket.onError((err) => d.log.warn({ err: err.message }, 'dhcp socket error'));
    d.pxeSocket?.onMessage((msg, from) => this.onPxePort(msg, from));
    d.pxeSocket?.onError((err) => d.log.warn({ err: err.message }, 'pxe 4011 socket error'));
  }

  /** Called for every OFFER and ACK sent (full mode), after the ACK's lease is durable. */
  onEvent(fn: (e: DhcpEvent) => void): void {
    this.listeners.push(fn);
  }

  private emit(e: DhcpEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  private get proxy(): boolean {
    return this.d.config.mode === 'proxy';
  }

  close(): void {
    this.closed = true;
    this.d.socket.close();
    this.d.pxeSocket?.close();
  }

  /** Waits until every change so far is on disk. */
  private persist(): Promise<void> {
    return this.d.store.commit({
      changes: () => this.d.leases.takeChanged().map((mac) => ({ mac, lease: this.d.leases.lease(mac) })),
      all: () => this.d.leases.all(),
    });
  }

  /** RFC 2131 section 4.3.1: the subnet of a relayed request is the one holding giaddr; else the local one. */
  private subnetOf(p: DhcpPacket): Subnet | undefined {
    if (p.giaddr === ZERO) return this.subnets[0];
    const g = parseIpv4(p.giaddr) ?? 0;
    return this.subnets.find((s) => ((g & s.mask) >>> 0) === s.net);
  }

  private static contains(s: Subnet, ip: number): boolean {
    return ((ip & s.mask) >>> 0) === s.net;
  }

  private async onMessage(msg: Buffer, from: Remote): Promise<void> {
    if (this.closed) return;
    this.counters.received++;
    let p: DhcpPacket;
    try {
      p = decodeDhcp(msg);
    } catch (err) {
      this.counters.malformed++;
      if (this.d.log.isLevelEnabled('debug')) {
        this.d.log.debug({ peer: from, err: (err as Error).message, code: err instanceof DhcpDecodeError ? err.code : undefined, hex: msg.subarray(0, 64).toString('hex') }, 'dhcp malformed packet dropped');
      }
      return;
    }
    const typeRaw = getOption(p, Opt.MESSAGE_TYPE);
    if (p.op !== BOOTREQUEST || !typeRaw || typeRaw.length !== 1 || p.htype !== 1 || p.hlen !== 6) {
      this.counters.ignored++; // plain BOOTP, non-Ethernet, or a reply from another server
      return;
    }
    const type = typeRaw[0] as number;
    const mac = hardwareAddress(p);
    const subnet = this.subnetOf(p);
    if (!subnet) {
      this.counters.ignored++; // relayed from a subnet this server does not serve
      return;
    }
    const known = this.d.hosts.isKnown(mac);
    if (!known && this.d.config.unknownHosts === 'ignore') {
      this.counters.ignored++;
      if (this.d.log.isLevelEnabled('debug')) this.d.log.debug({ mac, type }, 'dhcp: unknown client ignored');
      return;
    }
    if (this.proxy) {
      // proxyDHCP answers DISCOVERs only; the real server handles REQUESTs on port 67
      if (type === MessageType.DISCOVER) this.proxyOffer(p, mac, known, { address: BROADCAST, port: CLIENT_PORT });
      else this.counters.ignored++;
      return;
    }
    const now = this.d.clock.wallNow();
    switch (type) {
      case MessageType.DISCOVER:
        return this.discover(p, mac, known, now, subnet);
      case MessageType.REQUEST:
        return this.request(p, mac, known, now, subnet);
      case MessageType.DECLINE:
        return this.decline(p, mac, now);
      case MessageType.RELEASE:
        return this.release(p, mac, now);
      case MessageType.INFORM:
        return this.inform(p, mac, known, subnet);
      default:
        this.counters.ignored++;
    }
  }

  /**
   * A proxyDHCP offer (PXE spec 2.1, section 2.2.5): no address, only boot
   * information. Option 60 "PXEClient" marks it as PXE; it always goes with
   * option 43 sub-option 6 = 8 ("use the boot file in this offer, no boot
   * server discovery"): EDK2 given 60 without 43 asks port 4011 and fails with
   * PXE-E16 when that does not answer (shared/WIRE.md).
   */
  private proxyOffer(p: DhcpPacket, mac: string, known: boolean, to: Remote, type: MessageType = MessageType.OFFER): void {
    const facts = clientFacts(p);
    if (!facts.pxe && !facts.ipxe) {
      this.counters.ignored++; // not a PXE client: the real server serves it
      return;
    }
    const boot = this.bootFor(p, mac, known, facts);
    if (boot.kind !== 'file') {
      this.counters.ignored++;
      return;
    }
    const c = this.d.config;
    const next = c.nextServer ?? c.serverIp;
    const options: DhcpOption[] = [
      opt(Opt.MESSAGE_TYPE, type),
      opt(Opt.SERVER_ID, c.serverIp),
      opt(Opt.VENDOR_CLASS, 'PXEClient'),
      opt(Opt.VENDOR_SPECIFIC, [{ code: 6, data: Buffer.from([8]) }]),
      opt(Opt.TFTP_SERVER, next),
      opt(Opt.BOOTFILE, boot.file),
    ];
    if (boot.ipxe) options.push(opt(Opt.IPXE, [{ code: IpxeSub.NO_PXEDHCP, data: Buffer.from([1]) }]));
    const uuid = getOption(p, Opt.CLIENT_UUID);
    if (uuid) options.push({ code: Opt.CLIENT_UUID, data: uuid });
    const out: DhcpPacket = { ...replyBase(p), ciaddr: type === MessageType.ACK ? p.ciaddr : ZERO, siaddr: next, file: boot.file.length < 128 ? boot.file : '', options };
    this.counters.offers++;
    this.send(p, mac, out, p.giaddr !== ZERO ? { address: p.giaddr, port: SERVER_PORT } : to);
    this.d.log.info({ mac, file: boot.file, arch: facts.arch, port: to.port === CLIENT_PORT ? 67 : 4011 }, type === MessageType.ACK ? 'dhcp proxy ack' : 'dhcp proxy offer');
  }

  /** Port 4011: a PXE client asks the boot server for its boot file (REQUEST, unicast, ciaddr set). */
  private onPxePort(msg: Buffer, from: Remote): void {
    if (this.closed) return;
    this.counters.received++;
    let p: DhcpPacket;
    try {
      p = decodeDhcp(msg);
    } catch {
      this.counters.malformed++;
      return;
    }
    const type = getOption(p, Opt.MESSAGE_TYPE)?.[0];
    const subnet = this.subnetOf(p);
    if (p.op !== BOOTREQUEST || type !== MessageType.REQUEST || p.hlen !== 6 || !subnet) {
      this.counters.ignored++;
      return;
    }
    const mac = hardwareAddress(p);
    const known = this.d.hosts.isKnown(mac);
    if (!known && this.d.config.unknownHosts === 'ignore') {
      this.counters.ignored++;
      return;
    }
    // the answer goes back where the request came from (the client's address and port)
    this.proxyOffer(p, mac, known, from, MessageType.ACK);
  }

  private requestedIp(p: DhcpPacket): number | null {
    const r = getOption(p, Opt.REQUESTED_IP);
    return r && r.length === 4 ? r.readUInt32BE(0) : null;
  }

  private discover(p: DhcpPacket, mac: string, known: boolean, now: number, subnet: Subnet): void {
    const ip = this.d.leases.offer(mac, this.requestedIp(p), now, subnet.range);
    if (ip === null || !DhcpServer.contains(subnet, ip)) {
      // pool exhausted, or a reservation that belongs to another subnet than the client is on
      this.counters.poolExhausted++;
      this.d.log.warn({ mac, giaddr: p.giaddr }, 'dhcp: no address to offer on this subnet');
      return;
    }
    this.counters.offers++;
    const { boot, facts } = this.reply(p, mac, MessageType.OFFER, formatIpv4(ip), known, true, subnet);
    const e: DhcpEvent = { type: 'offer', mac, ip: formatIpv4(ip), vendorClass: facts.vendorClass, arch: facts.arch, pxe: facts.pxe, userClassIpxe: facts.ipxe, bootFile: boot.kind === 'file' ? boot.file : null };
    if (this.d.log.isLevelEnabled('info')) this.d.log.info({ mac, ip: e.ip, vendorClass: e.vendorClass, arch: e.arch, userClassIpxe: e.userClassIpxe, bootFile: e.bootFile }, 'dhcp offer');
    this.emit(e);
  }

  private async request(p: DhcpPacket, mac: string, known: boolean, now: number, subnet: Subnet): Promise<void> {
    const sid = getOption(p, Opt.SERVER_ID);
    const ciaddr = parseIpv4(p.ciaddr) ?? 0;
    if (sid) {
      // SELECTING (RFC 2131 section 4.3.2): the client named the server it chose
      if (sid.length !== 4 || sid.readUInt32BE(0) !== this.serverIpNum) {
        this.d.leases.forgetOffer(mac);
        this.counters.ignored++;
        return;
      }
    }
    const ip = this.requestedIp(p) ?? (ciaddr !== 0 ? ciaddr : null);
    if (ip === null) {
      this.counters.ignored++;
      return;
    }
    if (!DhcpServer.contains(subnet, ip)) {
      // INIT-REBOOT on the wrong network, or a bogus request: tell the client to start over
      this.nak(p, mac, `${formatIpv4(ip)} is not on this network`);
      return;
    }
    const rebinding = !sid && ciaddr !== 0 && p.giaddr === ZERO && (p.flags & FLAG_BROADCAST) !== 0;
    const hostname = getOption(p, Opt.HOSTNAME);
    const result = this.d.leases.request(mac, ip, now, hostname ? (decodeValue(Opt.HOSTNAME, hostname) as string) : undefined);
    if (!result.ok) {
      // REBINDING with no record of the client: another server may own it; stay silent (RFC 2131 section 4.3.2)
      if (rebinding && !this.d.leases.lease(mac)) {
        this.counters.ignored++;
        return;
      }
      this.nak(p, mac, result.reason);
      return;
    }
    await this.persist();
    this.counters.acks++;
    const { boot, facts } = this.reply(p, mac, MessageType.ACK, result.lease.ip, known, true, subnet);
    const e: DhcpEvent = { type: 'ack', mac, ip: result.lease.ip, vendorClass: facts.vendorClass, arch: facts.arch, pxe: facts.pxe, userClassIpxe: facts.ipxe, bootFile: boot.kind === 'file' ? boot.file : null };
    // the vendor class tells the stages apart: PXEClient (firmware), none (an NBP's own DHCP), the OS's
    if (this.d.log.isLevelEnabled('info')) this.d.log.info({ mac, ip: e.ip, expiresAt: new Date(result.lease.expiresAt).toISOString(), vendorClass: e.vendorClass, arch: e.arch, userClassIpxe: e.userClassIpxe, bootFile: e.bootFile }, 'dhcp ack');
    this.emit(e);
  }

  private async decline(p: DhcpPacket, mac: string, now: number): Promise<void> {
    const ip = this.requestedIp(p);
    if (ip === null) return;
    this.counters.declines++;
    this.d.leases.decline(mac, ip, now);
    this.d.log.warn({ mac, ip: formatIpv4(ip) }, 'dhcp decline: address in use on the network');
    await this.persist();
  }

  private async release(p: DhcpPacket, mac: string, now: number): Promise<void> {
    const ip = parseIpv4(p.ciaddr) ?? 0;
    if (this.d.leases.release(mac, ip, now)) {
      this.counters.releases++;
      this.d.log.info({ mac, ip: p.ciaddr }, 'dhcp release');
      await this.persist();
    }
  }

  private inform(p: DhcpPacket, mac: string, known: boolean, subnet: Subnet): void {
    this.counters.informs++;
    this.reply(p, mac, MessageType.ACK, ZERO, known, false, subnet);
  }

  private nak(p: DhcpPacket, mac: string, reason: string): void {
    this.counters.naks++;
    this.d.log.info({ mac, reason }, 'dhcp nak');
    const options: DhcpOption[] = [opt(Opt.MESSAGE_TYPE, MessageType.NAK), opt(Opt.SERVER_ID, this.d.config.serverIp), opt(Opt.MESSAGE, reason.slice(0, 200))];
    const relay = getOption(p, Opt.RELAY_AGENT);
    if (relay) options.push({ code: Opt.RELAY_AGENT, data: relay });
    // RFC 2131 section 4.1: a NAK goes to the relay, else is broadcast
    this.send(p, mac, { ...replyBase(p), ciaddr: ZERO, options }, p.giaddr !== ZERO ? { address: p.giaddr, port: SERVER_PORT } : { address: BROADCAST, port: CLIENT_PORT });
  }

  /** Builds and sends the reply; returns what it decided, with the client facts it read (once per packet). */
  private reply(p: DhcpPacket, mac: string, type: MessageType, yiaddr: string, known: boolean, withLease: boolean, subnet: Subnet): { boot: BootDecision; facts: ClientFacts } {
    const c = this.d.config;
    const options: DhcpOption[] = [opt(Opt.MESSAGE_TYPE, type), opt(Opt.SERVER_ID, c.serverIp)];
    if (withLease) {
      options.push(opt(Opt.LEASE_TIME, c.leaseSeconds), opt(Opt.RENEWAL_TIME, Math.floor(c.leaseSeconds / 2)), opt(Opt.REBINDING_TIME, Math.floor((c.leaseSeconds * 7) / 8)));
    }
    options.push(opt(Opt.SUBNET_MASK, subnet.maskText));
    if (subnet.router) options.push(opt(Opt.ROUTER, [subnet.router]));
    if (c.dns && c.dns.length > 0) options.push(opt(Opt.DNS, [...c.dns]));
    const hostname = (known ? this.d.hosts.hostname?.(mac) : undefined) ?? this.d.leases.lease(mac)?.hostname;
    if (hostname && withLease) options.push(opt(Opt.HOSTNAME, hostname));

    // BOOTP's siaddr is the next server for any client (RFC 951); options 66/67 only for boot clients
    const next = c.nextServer ?? c.serverIp;
    const siaddr = withLease ? next : ZERO;
    let file = '';
    const facts = clientFacts(p);
    const boot = this.bootFor(p, mac, known, facts);
    if (boot.kind === 'file') {
      // WIRE.md: every client tested takes option 67 with siaddr; `file` too when it fits
      options.push(opt(Opt.TFTP_SERVER, next), opt(Opt.BOOTFILE, boot.file));
      if (boot.file.length < 128) file = boot.file;
      // skip iPXE's 3 s ProxyDHCP wait, also when iPXE is handed PXELINUX (a pxelinux host under QEMU's ROM)
      if (boot.ipxe || facts.ipxe) options.push(opt(Opt.IPXE, [{ code: IpxeSub.NO_PXEDHCP, data: Buffer.from([1]) }]));
      if (boot.http) options.push(opt(Opt.VENDOR_CLASS, 'HTTPClient')); // UEFI HTTP boot wants it echoed
      const prefix = pxelinuxPathPrefix(facts, boot, c.bootFiles.pxelinuxHttpBase);
      if (prefix !== undefined) options.push(opt(Opt.PXELINUX_PATHPREFIX, prefix));
    }
    const uuid = getOption(p, Opt.CLIENT_UUID);
    if (uuid && boot.kind === 'file') options.push({ code: Opt.CLIENT_UUID, data: uuid }); // RFC 4578: echo 97
    const relay = getOption(p, Opt.RELAY_AGENT);
    if (relay) options.push({ code: Opt.RELAY_AGENT, data: relay }); // RFC 3046: echo 82 unchanged

    // RFC 2131 table 3: ciaddr is 0 in an OFFER, the client's in an ACK
    const out: DhcpPacket = { ...replyBase(p), ciaddr: type === MessageType.OFFER ? ZERO : p.ciaddr, yiaddr, siaddr, file, options };
    this.send(p, mac, out, this.destination(p, type));
    return { boot, facts };
  }

  private bootFor(p: DhcpPacket, mac: string, known: boolean, facts?: ClientFacts): BootDecision {
    if (!known && this.d.config.unknownHosts !== 'boot') return { kind: 'none', reason: 'unknown host gets a plain lease' };
    if (known && this.d.hosts.mayNetboot && !this.d.hosts.mayNetboot(mac)) return { kind: 'none', reason: 'netboot disabled for this host' };
    const names = this.d.config.bootFiles;
    const f = facts ?? clientFacts(p);
    // an iPXE client loads PXELINUX's files over iPXE's HTTP (option 210), faster than lpxelinux.0's own stack
    const own = known && !(f.ipxe && names.pxelinuxHttpBase !== undefined) ? names.knownHostLoaders : undefined;
    return chooseBoot(f, own ? { ...names, loaders: own } : names, (known ? this.d.hosts.loader?.(mac) : undefined) ?? this.d.config.defaultLoader);
  }

  /** RFC 2131 section 4.1 reply addressing. */
  private destination(p: DhcpPacket, type: MessageType): Remote {
    if (p.giaddr !== ZERO) return { address: p.giaddr, port: SERVER_PORT };
    if (p.ciaddr !== ZERO && type !== MessageType.OFFER) return { address: p.ciaddr, port: CLIENT_PORT };
    // Unicast to yiaddr would need an ARP entry the client cannot answer yet,
    // which node:dgram cannot install; broadcasting works with every client
    // tested (WIRE.md, checklist 1).
    return { address: BROADCAST, port: CLIENT_PORT };
  }

  private send(req: DhcpPacket, mac: string, reply: DhcpPacket, to: Remote): void {
    const max = getOption(req, Opt.MAX_MESSAGE_SIZE);
    const maxBytes = max && max.length === 2 ? Math.max(DEFAULT_MAX_BYTES, max.readUInt16BE(0) - 28) : DEFAULT_MAX_BYTES;
    let wire: Buffer;
    try {
      wire = encodeDhcp(reply, { maxBytes });
    } catch (err) {
      this.d.log.error({ err: (err as Error).message }, 'dhcp reply does not fit the client');
      return;
    }
    const delay = this.d.hosts.replyDelayMs?.(mac) ?? 0;
    if (delay > 0) this.d.clock.setTimer(delay, () => this.closed || this.d.socket.send(wire, to));
    else this.d.socket.send(wire, to);
  }
}

function opt(code: number, value: Parameters<typeof encodeValue>[1]): DhcpOption {
  return { code, data: encodeValue(code, value) };
}

function replyBase(p: DhcpPacket): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: p.htype,
    hlen: p.hlen,
    hops: 0,
    xid: p.xid,
    secs: 0,
    flags: p.flags,
    ciaddr: p.ciaddr,
    yiaddr: ZERO,
    siaddr: ZERO,
    giaddr: p.giaddr,
    chaddr: p.chaddr,
    sname: '',
    file: '',
    options: [],
  };
}
