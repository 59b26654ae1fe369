/**
 * The DHCP server, full mode: decode, decide, encode, send. Address
 * bookkeeping is in leases.ts, the boot file choice in boot-policy.ts, the
 * wire format in packet.ts. An ACK leaves only after its lease is on disk.
 */
import type { Clock } from '../net/clock.js';
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';
import { SocketLostError, type Remote, type UdpSocket } from '../net/udp.js';
import type { Logger } from '../log.js';
import { RepeatLimiter } from '../log-limit.js';
import type { LeaseStore } from './lease-store.js';
import { NO_EVENTS, type DhcpMessageEvent, type EventSink } from '../events/types.js';
import { chooseBoot, clientFacts, pxelinuxPathPrefix, type BootDecision, type BootFileNames, type ClientFacts, type Loader } from './boot-policy.js';
import { describeClient, type ClientIdentity, type LeaseTable } from './leases.js';
import { IpxeSub, MessageType, Opt, encodeValue } from './options.js';
import { BOOTREPLY, BOOTREQUEST, DEFAULT_MAX_BYTES, DhcpDecodeError, FLAG_BROADCAST, decodeDhcp, encodeDhcp, getOption, hardwareAddress, type DhcpOption, type DhcpPacket } from './packet.js';
import { Histogram, REPLY_BOUNDS } from '../stats/histogram.js';

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
  /** Received, by message type (the rest are counted as declines, releases, informs). */
  discovers: number;
  requests: number;
  malformed: number;
  ignored: number;
  offers: number;
  acks: number;
  naks: number;
  declines: number;
  releases: number;
  informs: number;
  poolExhausted: number;
  /** DECLINE or RELEASE not from the address's own client, or naming no address of ours: ignored. */
  foreignDeclines: number;
  foreignReleases: number;
  /** INIT-REBOOT REQUESTs from clients this server has no record of (RFC 2131 section 4.3.2: silence). */
  unknownInitReboot: number;
  /** Replies that could not be encoded within the client's size: nothing was leased. */
  replyTooBig: number;
  /** Client-supplied values refused on the way in (host name too long or not a name). */
  badClientValues: number;
  /** Lease writes that failed (disk full): no ACK went out. */
  storeFailures: number;
  /** Replies unicast to yiaddr with an ARP entry installed (RFC 2131 section 4.1). */
  unicastReplies: number;
  /** Datagrams dropped while another instance leads this segment (docs/postgresql.md). */
  standby: number;
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
  /**
   * Installs an ARP entry (ip -> mac) on the served interface so that a reply
   * can be unicast to a client that has no address yet (RFC 2131 section
   * 4.1). Returns false where the platform does not let us; replies are then
   * broadcast. Absent: always broadcast.
   */
  readonly neighbor?: ((ip: string, mac: string) => boolean) | undefined;
  /**
   * Where every DHCP message received and sent is published (src/events/):
   * an OFFER or ACK after it went out (an ACK after its lease is durable).
   * Publishing only queues; nothing here waits for a subscriber. Absent: none.
   */
  readonly events?: EventSink;
  /** The listening socket is lost (SocketLostError): this server cannot go on. */
  readonly onFatal?: (err: Error) => void;
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
  readonly neighbor: ((ip: string, mac: string) => boolean) | undefined;
  readonly events: EventSink;

  constructor(d: DhcpServerDeps) {
    this.socket = d.socket;
    this.pxeSocket = d.pxeSocket;
    this.clock = d.clock;
    this.leases = d.leases;
    this.store = d.store;
    this.hosts = d.hosts;
    this.log = d.log;
    this.config = new WiredConfig(d.config);
    this.neighbor = d.neighbor;
    this.events = d.events ?? NO_EVENTS;
  }
}

/**
 * A DHCP event as one class: every event has the same fields in the same
 * order, so V8 builds one shape for all of them (an object literal with a
 * conditional spread took the slow cloning path on every packet).
 */
class DhcpMessage implements DhcpMessageEvent {
  readonly type = 'dhcp' as const;
  constructor(
    readonly message: DhcpMessageEvent['message'],
    readonly mac: string,
    readonly clientId: string | null,
    readonly ip: string | null,
    readonly arch: number | null,
    readonly vendorClass: string | null,
    readonly relay: string | null,
    readonly pxe: boolean,
    readonly userClassIpxe: boolean,
    readonly bootFile: string | null,
    readonly reason: string | null,
  ) {}
}

const CLIENT_PORT = 68;
const SERVER_PORT = 67;
const BROADCAST = '255.255.255.255';
const ZERO = '0.0.0.0';
/** RFC 2132 section 9.14: a client identifier has at least a type and one byte. Kea's upper bound. */
const CLIENT_ID_MIN = 2;
const CLIENT_ID_MAX = 255;
/** Longest host name taken from a client (Linux's HOST_NAME_MAX; RFC 1035 labels are 63). */
const HOSTNAME_MAX = 64;
const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)*$/;

interface Subnet {
  readonly net: number;
  readonly mask: number;
  readonly maskText: string;
  readonly router?: string;
  /** Index of this subnet's range in the LeaseTable. */
  readonly range: number;
}

export class DhcpServer {
  readonly counters: DhcpStats = {
    received: 0, discovers: 0, requests: 0, malformed: 0, ignored: 0, offers: 0, acks: 0, naks: 0, declines: 0, releases: 0, informs: 0, poolExhausted: 0,
    foreignDeclines: 0, foreignReleases: 0, unknownInitReboot: 0, replyTooBig: 0, badClientValues: 0, storeFailures: 0, unicastReplies: 0, standby: 0,
  };
  private readonly serverIpNum: number;
  /** The local subnet first, then the relayed ones. */
  private readonly subnets: Subnet[];
  private closed = false;
  /** False while another instance leads this segment: then nothing is answered (see setLeading). */
  private leading = true;
  /** Server identifiers of the segment's other instances (see setPeerServerIds). */
  private peerIds: ReadonlySet<number> = new Set();
  /** Warnings a client can cause per packet, summarised (a flood writes a few lines, not one per packet). */
  private readonly warnings: RepeatLimiter;
  /** Cleared when installing an ARP entry fails: from then on every reply is broadcast. */
  private unicastOk = true;

  private readonly d: Wired;
  /** Arrival of the datagram being handled now (performance.now()); a handler that awaits keeps its own. */
  private rxAt = 0;
  /** Arrival to reply sent, every reply (offers, ACKs, NAKs, proxy and INFORM answers). */
  readonly replyLatency = new Histogram(REPLY_BOUNDS);

  constructor(deps: DhcpServerDeps) {
    const d = new Wired(deps);
    this.d = d;
    this.warnings = new RepeatLimiter(d.log, d.clock);
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
      void this.onMessage(msg, from).catch((err: unknown) => this.warnings.warn('handler', { err: String(err) }, 'dhcp handler failed'));
    });
    const onError = (what: string) => (err: Error) => {
      if (err instanceof SocketLostError && !this.closed && deps.onFatal) deps.onFatal(err);
      else this.warnings.warn(what, { err: err.message }, `${what} error`);
    };
    d.socket.onError(onError('dhcp socket'));
    d.pxeSocket?.onMessage((msg, from) => this.onPxePort(msg, from));
    d.pxeSocket?.onError(onError('pxe 4011 socket'));
  }

  /** Publishes a message this server received or sent (src/events/types.ts). */
  private publish(message: DhcpMessageEvent['message'], p: DhcpPacket, id: ClientIdentity, ip: string | null, facts: ClientFacts | null, bootFile: string | null, reason: string | null = null): void {
    const f = facts ?? clientFacts(p);
    this.d.events.publish(new DhcpMessage(message, id.mac, id.clientId, ip, f.arch, f.vendorClass, p.giaddr !== ZERO ? p.giaddr : null, f.pxe, f.ipxe, bootFile, reason));
  }

  private get proxy(): boolean {
    return this.d.config.mode === 'proxy';
  }

  /**
   * Serves, or stands by while another instance leads this segment (several
   * bootd on one segment, one database: docs/postgresql.md). On standby every
   * datagram is counted and dropped unanswered, so a client hears one server.
   */
  setLeading(on: boolean): void {
    this.leading = on;
  }

  get isLeading(): boolean {
    return this.leading;
  }

  /**
   * The server identifiers (option 54) of the other instances on this
   * segment: together they are one server, so a client that chose one of
   * them (an OFFER from a leader that died before its ACK) is answered by
   * the leader from the shared leases, not left to time out. A client whose
   * requested address is bound to another gets a NAK as usual.
   */
  setPeerServerIds(ips: Iterable<string>): void {
    this.peerIds = new Set([...ips].flatMap((a) => {
      const n = parseIpv4(a);
      return n === null || n === this.serverIpNum ? [] : [n];
    }));
  }

  /** Option 54 names this server, or a peer instance of its segment. */
  private isOurServerId(sid: Buffer): boolean {
    if (sid.length !== 4) return false;
    const n = sid.readUInt32BE(0);
    return n === this.serverIpNum || this.peerIds.has(n);
  }

  close(): void {
    this.closed = true;
    this.warnings.close();
    this.d.socket.close();
    this.d.pxeSocket?.close();
  }

  /** Waits until every change so far is on disk; rejects if the write failed (the changes stay pending). */
  private persist(): Promise<void> {
    const leases = this.d.leases;
    return this.d.store.commit({
      changes: () => leases.takeChanged().map((ip) => ({ ip: formatIpv4(ip), lease: leases.leaseAt(ip) })),
      all: () => leases.all(),
      putBack: (changes) => leases.markChanged(changes.map((c) => parseIpv4(c.ip) ?? 0)),
    });
  }

  /** persist(), with a failure counted and logged: false means nothing may be acknowledged. */
  private async durable(id: ClientIdentity): Promise<boolean> {
    try {
      await this.persist();
      return true;
    } catch (err) {
      this.counters.storeFailures++;
      this.warnings.warn('store', { client: describeClient(id), err: (err as Error).message }, 'dhcp: lease not written, no ACK sent (the client will retry)');
      return false;
    }
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
    this.rxAt = performance.now();
    this.counters.received++;
    if (!this.leading) {
      this.counters.standby++;
      return;
    }
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
    const cid = getOption(p, Opt.CLIENT_ID);
    if (cid && (cid.length < CLIENT_ID_MIN || cid.length > CLIENT_ID_MAX)) {
      this.counters.malformed++; // RFC 2132 section 9.14
      return;
    }
    const id: ClientIdentity = { mac, clientId: cid ? cid.toString('hex') : null };
    const subnet = this.subnetOf(p);
    if (!subnet) {
      this.counters.ignored++; // relayed from a subnet this server does not serve
      return;
    }
    const known = this.d.hosts.isKnown(mac);
    if (!known && this.d.config.unknownHosts === 'ignore') {
      this.counters.ignored++;
      // still told: a machine that asks to boot but is in no hosts file shows as pending on the dashboard
      if (type === MessageType.DISCOVER) this.publish('discover', p, id, null, null, null);
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
        this.counters.discovers++;
        return this.discover(p, id, known, now, subnet);
      case MessageType.REQUEST:
        this.counters.requests++;
        return this.request(p, id, known, now, subnet);
      case MessageType.DECLINE:
        return this.decline(p, id, now);
      case MessageType.RELEASE:
        return this.release(p, id, now);
      case MessageType.INFORM:
        return this.inform(p, id, known, subnet);
      default:
        this.counters.ignored++;
    }
  }

  /**
   * A proxyDHCP offer (PXE spec 2.1, section 2.2.5): no address, only boot
   * information. Option 60 "PXEClient" marks it as PXE (for a UEFI HTTP Boot
   * client "HTTPClient", with the URL and no option 43); it always goes with
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
      // UEFI HTTP Boot (UEFI 2.x section 24.7.2) keeps a proxy offer only when its option 60 is
      // "HTTPClient" with a URI boot file; option 43's PXE boot-server discovery is PXE's alone
      ...(boot.http ? [opt(Opt.VENDOR_CLASS, 'HTTPClient')] : [opt(Opt.VENDOR_CLASS, 'PXEClient'), opt(Opt.VENDOR_SPECIFIC, [{ code: 6, data: Buffer.from([8]) }])]),
      opt(Opt.TFTP_SERVER, next),
      opt(Opt.BOOTFILE, boot.file),
    ];
    if (boot.ipxe) options.push(opt(Opt.IPXE, [{ code: IpxeSub.NO_PXEDHCP, data: Buffer.from([1]) }]));
    const uuid = getOption(p, Opt.CLIENT_UUID);
    if (uuid) options.push({ code: Opt.CLIENT_UUID, data: uuid });
    echoClientId(p, options);
    const out: DhcpPacket = { ...replyBase(p), ciaddr: type === MessageType.ACK ? p.ciaddr : ZERO, siaddr: next, file: boot.file.length < 128 ? boot.file : '', options };
    const wire = this.encode(p, out, mac);
    if (!wire) return;
    this.counters.offers++;
    this.transmit(mac, wire, p.giaddr !== ZERO ? { address: p.giaddr, port: SERVER_PORT } : to);
    // a proxy offer carries no address (ip null): boot information only
    this.publish(type === MessageType.ACK ? 'ack' : 'offer', p, { mac, clientId: getOption(p, Opt.CLIENT_ID)?.toString('hex') ?? null }, null, facts, boot.file);
    this.d.log.info({ mac, file: boot.file, arch: facts.arch, port: to.port === CLIENT_PORT ? 67 : 4011 }, type === MessageType.ACK ? 'dhcp proxy ack' : 'dhcp proxy offer');
  }

  /** Port 4011: a PXE client asks the boot server for its boot file (REQUEST, unicast, ciaddr set). */
  private onPxePort(msg: Buffer, from: Remote): void {
    if (this.closed) return;
    this.rxAt = performance.now();
    this.counters.received++;
    if (!this.leading) {
      this.counters.standby++;
      return;
    }
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

  private discover(p: DhcpPacket, id: ClientIdentity, known: boolean, now: number, subnet: Subnet): void {
    const mac = id.mac;
    const ip = this.d.leases.offer(id, this.requestedIp(p), now, subnet.range);
    if (ip === null || !DhcpServer.contains(subnet, ip)) {
      this.publish('discover', p, id, null, null, null);
      // pool exhausted, or a reservation that belongs to another subnet than the client is on
      if (ip !== null) this.d.leases.forgetOffer(id);
      this.counters.poolExhausted++;
      this.warnings.warn('no-address', { mac, giaddr: p.giaddr }, 'dhcp: no address to offer on this subnet');
      return;
    }
    const offered = formatIpv4(ip); // once: the reply, its destination, the log line and the event
    const built = this.reply(p, id, MessageType.OFFER, offered, known, true, subnet, this.hostnameFor(p, id, known));
    if (!built) {
      this.publish('discover', p, id, null, null, null);
      this.d.leases.forgetOffer(id); // nothing held for a client we cannot answer
      return;
    }
    // published with the facts the reply already read (one parse of the options per packet)
    this.publish('discover', p, id, null, built.facts, null);
    this.counters.offers++;
    const to = this.destination(p, MessageType.OFFER, offered, mac);
    this.transmit(mac, built.wire, to);
    const { boot, facts } = built;
    const bootFile = boot.kind === 'file' ? boot.file : null;
    if (this.d.log.isLevelEnabled('info')) this.d.log.info({ mac, ...(id.clientId !== null ? { clientId: id.clientId } : {}), ip: offered, to: to.address, vendorClass: facts.vendorClass, arch: facts.arch, userClassIpxe: facts.ipxe, bootFile }, 'dhcp offer');
    this.publish('offer', p, id, offered, facts, bootFile);
  }

  /**
   * The host name a client asked for (option 12), if it is one: at most
   * HOSTNAME_MAX characters of letters, digits, '-', '_' and dots. Anything
   * else is counted and not kept (it would be echoed in every reply and could
   * make them too big to send).
   */
  private clientHostname(p: DhcpPacket): string | undefined {
    const raw = getOption(p, Opt.HOSTNAME);
    if (!raw) return undefined;
    const name = raw.length <= HOSTNAME_MAX ? raw.toString('latin1').replace(/\0+$/, '') : '';
    if (name.length === 0 || !HOSTNAME_RE.test(name)) {
      this.counters.badClientValues++;
      return undefined;
    }
    return name;
  }

  /** Option 12 in a reply: the host's configured name, else what the client asked for or had. */
  private hostnameFor(p: DhcpPacket, id: ClientIdentity, known: boolean): string | undefined {
    return (known ? this.d.hosts.hostname?.(id.mac) : undefined) ?? this.clientHostname(p) ?? this.d.leases.hostnameOf(id);
  }

  private async request(p: DhcpPacket, id: ClientIdentity, known: boolean, now: number, subnet: Subnet): Promise<void> {
    const rxAt = this.rxAt; // the ACK goes out after an await, when rxAt may be another datagram's
    const mac = id.mac;
    const sid = getOption(p, Opt.SERVER_ID);
    const ciaddr = parseIpv4(p.ciaddr) ?? 0;
    if (sid) {
      // SELECTING (RFC 2131 section 4.3.2): the client named the server it chose
      if (!this.isOurServerId(sid)) {
        this.d.leases.forgetOffer(id);
        this.counters.ignored++;
        return;
      }
    }
    const requested = this.requestedIp(p);
    const ip = requested ?? (ciaddr !== 0 ? ciaddr : null);
    if (ip === null) {
      this.counters.ignored++;
      return;
    }
    if (!DhcpServer.contains(subnet, ip)) {
      // INIT-REBOOT on the wrong network, or a bogus request: tell the client to start over
      this.nak(p, id, `${formatIpv4(ip)} is not on this network`);
      return;
    }
    const recorded = this.d.leases.addressOf(id);
    const reserved = this.d.leases.reservationOf(mac);
    if (!sid && requested !== null && ciaddr === 0) {
      // INIT-REBOOT (RFC 2131 section 4.3.2): "If the DHCP server has no record of this
      // client, then it MUST remain silent" (another server on the wire may own it); a
      // reservation is a record. If the client's notion of its address is wrong: NAK.
      if (recorded === null && reserved === undefined) {
        this.counters.unknownInitReboot++;
        return;
      }
      const mine = reserved ?? recorded;
      if (mine !== ip) {
        this.nak(p, id, `${formatIpv4(ip)} is not the address of ${describeClient(id)}`);
        return;
      }
    }
    const rebinding = !sid && ciaddr !== 0 && p.giaddr === ZERO && (p.flags & FLAG_BROADCAST) !== 0;
    const hostname = this.clientHostname(p);
    const replyName = (known ? this.d.hosts.hostname?.(mac) : undefined) ?? hostname ?? (recorded !== null ? this.d.leases.hostnameOf(id) : undefined);
    // the reply is built before anything is leased: one that cannot be sent must leave nothing behind
    const built = this.reply(p, id, MessageType.ACK, formatIpv4(ip), known, true, subnet, replyName);
    if (!built) return;
    const result = this.d.leases.request(id, ip, now, hostname);
    if (!result.ok) {
      // REBINDING with no record of the client: another server may own it; stay silent (RFC 2131 section 4.3.2)
      if (rebinding && recorded === null) {
        this.counters.ignored++;
        return;
      }
      this.nak(p, id, result.reason);
      return;
    }
    if (!(await this.durable(id))) return; // never an ACK before the lease is on disk
    if (this.closed) return;
    this.counters.acks++;
    // addressed (and any ARP entry installed) only now: a request that was refused must not
    // point the server's ARP cache for someone else's address at the asking MAC
    const to = this.destination(p, MessageType.ACK, result.lease.ip, mac);
    this.transmit(mac, built.wire, to, rxAt);
    const { boot, facts } = built;
    const bootFile = boot.kind === 'file' ? boot.file : null;
    // the vendor class tells the stages apart: PXEClient (firmware), none (an NBP's own DHCP), the OS's
    if (this.d.log.isLevelEnabled('info')) this.d.log.info({ mac, ...(id.clientId !== null ? { clientId: id.clientId } : {}), ip: result.lease.ip, expiresAt: new Date(result.lease.expiresAt).toISOString(), to: to.address, vendorClass: facts.vendorClass, arch: facts.arch, userClassIpxe: facts.ipxe, bootFile }, 'dhcp ack');
    this.publish('ack', p, id, result.lease.ip, facts, bootFile);
  }

  /** A DECLINE or RELEASE naming another server (option 54) is not for us. */
  private forOtherServer(p: DhcpPacket): boolean {
    const sid = getOption(p, Opt.SERVER_ID);
    return sid !== undefined && !this.isOurServerId(sid);
  }

  /**
   * DHCPDECLINE (RFC 2131 section 4.3.3): the address the client was given is
   * in use by another device. Honoured only from the address's own client and
   * for an address of ours; anything else is counted and ignored (a client
   * must not take others' addresses out of service).
   */
  private async decline(p: DhcpPacket, id: ClientIdentity, now: number): Promise<void> {
    const ip = this.requestedIp(p);
    if (ip === null || this.forOtherServer(p) || !this.d.leases.isOurs(ip) || !this.d.leases.decline(id, ip, now)) {
      this.counters.foreignDeclines++;
      return;
    }
    this.counters.declines++;
    this.publish('decline', p, id, formatIpv4(ip), null, null);
    this.warnings.warn('decline', { mac: id.mac, ip: formatIpv4(ip) }, 'dhcp decline: address in use on the network');
    await this.durable(id);
  }

  /** DHCPRELEASE (RFC 2131 section 4.4.6), from the lease's own client only. */
  private async release(p: DhcpPacket, id: ClientIdentity, now: number): Promise<void> {
    const ip = parseIpv4(p.ciaddr) ?? 0;
    if (this.forOtherServer(p) || !this.d.leases.isOurs(ip) || !this.d.leases.release(id, ip, now)) {
      this.counters.foreignReleases++;
      return;
    }
    this.counters.releases++;
    this.publish('release', p, id, p.ciaddr, null, null);
    this.d.log.info({ mac: id.mac, ip: p.ciaddr }, 'dhcp release');
    await this.durable(id);
  }

  private inform(p: DhcpPacket, id: ClientIdentity, known: boolean, subnet: Subnet): void {
    this.counters.informs++;
    this.publish('inform', p, id, null, null, null);
    const built = this.reply(p, id, MessageType.ACK, ZERO, known, false, subnet, undefined);
    if (built) this.transmit(id.mac, built.wire, this.destination(p, MessageType.ACK, ZERO, id.mac));
  }

  private nak(p: DhcpPacket, id: ClientIdentity, reason: string): void {
    this.counters.naks++;
    this.publish('nak', p, id, null, null, null, reason);
    this.d.log.info({ mac: id.mac, reason }, 'dhcp nak');
    const options: DhcpOption[] = [opt(Opt.MESSAGE_TYPE, MessageType.NAK), opt(Opt.SERVER_ID, this.d.config.serverIp), opt(Opt.MESSAGE, reason.slice(0, 200))];
    echoClientId(p, options); // RFC 6842 section 3
    const relay = getOption(p, Opt.RELAY_AGENT);
    if (relay) options.push({ code: Opt.RELAY_AGENT, data: relay });
    const relayed = p.giaddr !== ZERO;
    // RFC 2131 section 4.3.2: through a relay the server MUST set the broadcast bit, so the relay
    // broadcasts the NAK to the client; section 4.1: without a relay a NAK is broadcast
    const out: DhcpPacket = { ...replyBase(p), flags: relayed ? p.flags | FLAG_BROADCAST : p.flags, ciaddr: ZERO, options };
    const wire = this.encode(p, out, id.mac);
    if (wire) this.transmit(id.mac, wire, relayed ? { address: p.giaddr, port: SERVER_PORT } : { address: BROADCAST, port: CLIENT_PORT });
  }

  /**
   * Builds and encodes the reply; returns it with where it goes and what was
   * decided (the client facts are read once per packet). null: it does not
   * fit the client's size, counted and logged; nothing was sent.
   */
  private reply(p: DhcpPacket, id: ClientIdentity, type: MessageType, yiaddr: string, known: boolean, withLease: boolean, subnet: Subnet, hostname: string | undefined): { wire: Buffer; boot: BootDecision; facts: ClientFacts } | null {
    const c = this.d.config;
    const mac = id.mac;
    const options: DhcpOption[] = [opt(Opt.MESSAGE_TYPE, type), opt(Opt.SERVER_ID, c.serverIp)];
    if (withLease) {
      options.push(opt(Opt.LEASE_TIME, c.leaseSeconds), opt(Opt.RENEWAL_TIME, Math.floor(c.leaseSeconds / 2)), opt(Opt.REBINDING_TIME, Math.floor((c.leaseSeconds * 7) / 8)));
    }
    options.push(opt(Opt.SUBNET_MASK, subnet.maskText));
    if (subnet.router) options.push(opt(Opt.ROUTER, [subnet.router]));
    if (c.dns && c.dns.length > 0) options.push(opt(Opt.DNS, [...c.dns]));
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
    echoClientId(p, options); // RFC 6842 section 3
    const relay = getOption(p, Opt.RELAY_AGENT);
    if (relay) options.push({ code: Opt.RELAY_AGENT, data: relay }); // RFC 3046: echo 82 unchanged

    // RFC 2131 table 3: ciaddr is 0 in an OFFER, the client's in an ACK
    const out: DhcpPacket = { ...replyBase(p), ciaddr: type === MessageType.OFFER ? ZERO : p.ciaddr, yiaddr, siaddr, file, options };
    const wire = this.encode(p, out, mac);
    return wire ? { wire, boot, facts } : null;
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

  /**
   * RFC 2131 section 4.1 reply addressing: to the relay (giaddr); to ciaddr
   * when the client has an address (not for an OFFER); broadcast when the
   * client set the broadcast bit (EDK2 does); else, as the RFC says a server
   * SHOULD, unicast to yiaddr at chaddr, which needs an ARP entry the client
   * cannot answer for yet: installed through `neighbor` (SIOCSARP, as
   * dnsmasq does). iPXE, udhcpc, dhclient and dhcpcd leave the bit clear and
   * take the unicast (shared/WIRE.md: dnsmasq's unicast to iPXE). Where the
   * entry cannot be installed (no CAP_NET_ADMIN, another platform) the reply
   * is broadcast, which every client tested accepts.
   */
  private destination(p: DhcpPacket, type: MessageType, yiaddr: string, mac: string): Remote {
    if (p.giaddr !== ZERO) return { address: p.giaddr, port: SERVER_PORT };
    if (p.ciaddr !== ZERO && type !== MessageType.OFFER) return { address: p.ciaddr, port: CLIENT_PORT };
    if ((p.flags & FLAG_BROADCAST) === 0 && yiaddr !== ZERO && this.unicastOk && this.d.neighbor) {
      if (this.d.neighbor(yiaddr, mac)) {
        this.counters.unicastReplies++;
        return { address: yiaddr, port: CLIENT_PORT };
      }
      this.unicastOk = false;
      this.d.log.warn({ mac, ip: yiaddr }, 'dhcp: cannot install ARP entries here; replies are broadcast from now on');
    }
    return { address: BROADCAST, port: CLIENT_PORT };
  }

  /** The reply's bytes within the client's size (option 57), or null: counted, logged (summarised). */
  private encode(req: DhcpPacket, reply: DhcpPacket, mac: string): Buffer | null {
    const max = getOption(req, Opt.MAX_MESSAGE_SIZE);
    const maxBytes = max && max.length === 2 ? Math.max(DEFAULT_MAX_BYTES, max.readUInt16BE(0) - 28) : DEFAULT_MAX_BYTES;
    try {
      return encodeDhcp(reply, { maxBytes });
    } catch (err) {
      this.counters.replyTooBig++;
      this.warnings.warn('too-big', { mac, err: (err as Error).message }, 'dhcp reply does not fit the client; nothing leased');
      return null;
    }
  }

  private transmit(mac: string, wire: Buffer, to: Remote, rxAt = this.rxAt): void {
    this.replyLatency.observe((performance.now() - rxAt) / 1000);
    const delay = this.d.hosts.replyDelayMs?.(mac) ?? 0;
    if (delay > 0) this.d.clock.setTimer(delay, () => this.closed || this.d.socket.send(wire, to));
    else this.d.socket.send(wire, to);
  }
}

/** RFC 6842 section 3: a server MUST return the client identifier in OFFER, ACK and NAK. */
function echoClientId(p: DhcpPacket, options: DhcpOption[]): void {
  const cid = getOption(p, Opt.CLIENT_ID);
  if (cid) options.push({ code: Opt.CLIENT_ID, data: cid });
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
