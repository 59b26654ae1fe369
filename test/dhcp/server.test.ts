import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseTable } from '../../src/dhcp/leases.js';
import { IpxeSub, MessageType, Opt, decodeSubOptions, decodeValue, encodeValue } from '../../src/dhcp/options.js';
import { FLAG_BROADCAST, clientRequest, decodeDhcp, encodeDhcp, getOption, type ClientRequest, type DhcpOption, type DhcpPacket } from '../../src/dhcp/packet.js';
import { DhcpServer, type DhcpServerConfig, type HostLookup } from '../../src/dhcp/server.js';
import { silentLogger } from '../../src/log.js';
import { parseIpv4 } from '../../src/net/ipv4.js';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import { EventBus } from '../../src/events/bus.js';
import type { BootEvent, EventSink } from '../../src/events/types.js';
import { ManualClock } from '../helpers/clock.js';
import { settle } from '../helpers/settle.js';
import { MemoryNetwork, type MemorySocket } from '../helpers/memory-udp.js';

const SERVER_IP = '198.18.0.1';
const MAC = '52:54:00:12:34:56';
const KNOWN = '52:54:00:00:00:99';
let dir: string;
const opened: FileLeaseStore[] = [];

const o = (code: number, value: Parameters<typeof encodeValue>[1]): DhcpOption => ({ code, data: encodeValue(code, value) });
function request(type: number, extra: DhcpOption[] = [], over: Partial<ClientRequest> = {}, mac = MAC): Buffer {
  return encodeDhcp(clientRequest({ mac, xid: 0x1234, options: [o(Opt.MESSAGE_TYPE, type), ...extra], ...over }));
}

interface Rig {
  net: MemoryNetwork;
  client: MemorySocket;
  relay: MemorySocket;
  server: DhcpServer;
  store: FileLeaseStore;
  clock: ManualClock;
  replies(): { to: string; p: DhcpPacket }[];
  /** Delivers packets until quiet (80 ms with nothing to deliver), or until `done()` holds (at most 10 s). */
  settle(done?: () => boolean): Promise<void>;
}

interface RigExtra {
  readonly neighbor?: (ip: string, mac: string) => boolean;
  /** Wraps the store's commit (a disk that fails). */
  readonly commit?: (real: FileLeaseStore['commit']) => FileLeaseStore['commit'];
  readonly events?: EventSink;
}

async function rig(over: Partial<DhcpServerConfig> = {}, hosts: HostLookup = { isKnown: (mac) => mac === KNOWN }, extra: RigExtra = {}): Promise<Rig> {
  const net = new MemoryNetwork();
  const clock = new ManualClock();
  const store = await FileLeaseStore.open(dir);
  opened.push(store);
  const leases = new LeaseTable({
    ranges: [
      { start: parseIpv4('198.18.0.100') as number, end: parseIpv4('198.18.0.110') as number },
      { start: parseIpv4('198.18.5.100') as number, end: parseIpv4('198.18.5.110') as number },
    ],
    leaseSeconds: 600,
    offerHoldMs: 30_000,
    declineHoldMs: 600_000,
    reservations: new Map([[KNOWN, parseIpv4('198.18.0.42') as number]]),
    excluded: new Set(),
  });
  const server = new DhcpServer({
    socket: net.bindSync({ address: '0.0.0.0', port: 67 }),
    ...(over.mode === 'proxy' ? { pxeSocket: net.bindSync({ address: '0.0.0.0', port: 4011 }) } : {}),
    clock,
    leases,
    store: extra.commit ? { commit: extra.commit(store.commit.bind(store)) } : store,
    hosts,
    log: silentLogger,
    ...(extra.neighbor ? { neighbor: extra.neighbor } : {}),
    ...(extra.events ? { events: extra.events } : {}),
    config: {
      serverIp: SERVER_IP, subnetMask: '255.255.255.0', router: '198.18.0.254', leaseSeconds: 600, unknownHosts: 'lease',
      relayed: [{ network: '198.18.5.0', mask: '255.255.255.0', router: '198.18.5.1' }],
      bootFiles: { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi' }, ipxe: 'boot.ipxe' },
      ...over,
    },
  });
  const client = net.bindSync({ address: '0.0.0.0', port: 68 });
  const relay = net.bindSync({ address: '198.18.0.2', port: 67 });
  return {
    net, client, relay, server, store, clock,
    replies: () => net.log.filter((d) => (d.from.port === 67 || d.from.port === 4011) && d.from.address === '10.0.0.1').map((d) => ({ to: `${d.to.address}:${d.to.port}`, p: decodeDhcp(d.data) })),
    settle: (done?: () => boolean) => settle(net, done),
  };
}

const type = (p: DhcpPacket): number => getOption(p, Opt.MESSAGE_TYPE)?.[0] ?? 0;
const SERVER = { address: '255.255.255.255', port: 67 };

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-dhcpsrv-'));
});
afterEach(async () => {
  // each rig's store holds its journal open: close it here (a FileHandle left to the GC is Node's DEP0137)
  for (const s of opened.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DhcpServer (full mode) over an in-memory network', () => {
  it('gives a known host its configured name (option 12) and waits its reply delay (hosts/*.yaml quirk)', async () => {
    const r = await rig({}, { isKnown: (mac) => mac === KNOWN, hostname: (mac) => (mac === KNOWN ? 'web-01' : undefined), replyDelayMs: (mac) => (mac === KNOWN ? 500 : 0) });
    r.client.send(request(MessageType.DISCOVER, [], {}, KNOWN), SERVER);
    await r.settle();
    expect(r.replies()).toHaveLength(0); // held back
    r.clock.advance(499);
    await r.settle();
    expect(r.replies()).toHaveLength(0);
    r.clock.advance(1);
    await r.settle(() => r.replies().length === 1);
    const offer = r.replies()[0]?.p as DhcpPacket;
    expect(offer.yiaddr).toBe('198.18.0.42');
    expect(decodeValue(Opt.HOSTNAME, getOption(offer, Opt.HOSTNAME) as Buffer)).toBe('web-01');
    // another client is answered at once
    r.client.send(request(MessageType.DISCOVER), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(r.replies()).toHaveLength(2);
  });

  it('gives http/lpxelinux.0 (knownHostLoaders) to a known pxelinux host only; an unknown machine keeps pxelinux.0', async () => {
    const lp = { pxelinux: { bios: 'http/lpxelinux.0', efi: { 'efi-x64': 'syslinux.efi' } }, ipxe: { bios: 'undionly.kpxe', efi: { 'efi-x64': 'snponly.efi' } }, grub: { bios: 'pxelinux.0', efi: { 'efi-x64': 'shimx64.efi' } } } as const;
    const r = await rig(
      { unknownHosts: 'boot', defaultLoader: 'pxelinux', bootFiles: { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi' }, ipxe: 'boot.ipxe', knownHostLoaders: lp } },
      { isKnown: (mac) => mac === KNOWN, loader: (mac) => (mac === KNOWN ? 'pxelinux' : undefined) },
    );
    const pxe = [o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001'), o(Opt.CLIENT_ARCH, [0])];
    r.client.send(request(MessageType.DISCOVER, pxe, {}, KNOWN), SERVER);
    r.client.send(request(MessageType.DISCOVER, pxe, { xid: 0x9999 }), SERVER);
    await r.settle(() => r.replies().length === 2);
    const file = (xid: number): unknown => {
      const p = r.replies().find((x) => x.p.xid === xid)?.p as DhcpPacket;
      return decodeValue(Opt.BOOTFILE, getOption(p, Opt.BOOTFILE) as Buffer);
    };
    expect(file(0x1234)).toBe('http/lpxelinux.0');
    expect(file(0x9999)).toBe('pxelinux.0');
  });

  it('with pxelinuxHttpBase: an iPXE client handed PXELINUX gets pxelinux.0 and option 210 at the HTTP server, known or not; a plain PXE ROM keeps http/lpxelinux.0 (known) or pxelinux.0 (unknown) without 210', async () => {
    const lp = { pxelinux: { bios: 'http/lpxelinux.0', efi: { 'efi-x64': 'syslinux.efi' } }, ipxe: { bios: 'undionly.kpxe', efi: { 'efi-x64': 'snponly.efi' } }, grub: { bios: 'pxelinux.0', efi: { 'efi-x64': 'shimx64.efi' } } } as const;
    const r = await rig(
      { unknownHosts: 'boot', defaultLoader: 'pxelinux', bootFiles: { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi' }, ipxe: 'boot.ipxe', knownHostLoaders: lp, pxelinuxHttpBase: 'http://198.18.0.1:80' } },
      { isKnown: (mac) => mac === KNOWN, loader: (mac) => (mac === KNOWN ? 'pxelinux' : undefined) },
    );
    const pxe = [o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001'), o(Opt.CLIENT_ARCH, [0])];
    const ipxe = [...pxe, { code: Opt.USER_CLASS, data: Buffer.from('iPXE') }];
    const OTHER = '52:54:00:00:00:77';
    r.client.send(request(MessageType.DISCOVER, ipxe, { xid: 1 }, KNOWN), SERVER);
    r.client.send(request(MessageType.DISCOVER, pxe, { xid: 2 }, KNOWN), SERVER);
    r.client.send(request(MessageType.DISCOVER, ipxe, { xid: 3 }, OTHER), SERVER);
    r.client.send(request(MessageType.DISCOVER, pxe, { xid: 4 }, OTHER), SERVER);
    await r.settle(() => r.replies().length === 4);
    const got = (xid: number): [unknown, unknown] => {
      const p = r.replies().find((x) => x.p.xid === xid)?.p as DhcpPacket;
      const prefix = getOption(p, Opt.PXELINUX_PATHPREFIX);
      return [decodeValue(Opt.BOOTFILE, getOption(p, Opt.BOOTFILE) as Buffer), prefix && decodeValue(Opt.PXELINUX_PATHPREFIX, prefix)];
    };
    expect(got(1)).toEqual(['pxelinux.0', 'http://198.18.0.1:80/']);
    expect(got(2)).toEqual(['http/lpxelinux.0', undefined]);
    expect(got(3)).toEqual(['pxelinux.0', 'http://198.18.0.1:80/']);
    expect(got(4)).toEqual(['pxelinux.0', undefined]);
  });

  it('runs DISCOVER/OFFER/REQUEST/ACK, broadcasts the replies, and writes the lease before the ACK', async () => {
    const r = await rig();
    r.client.send(request(MessageType.DISCOVER), SERVER);
    await r.settle();
    const offer = r.replies()[0];
    expect(offer?.to).toBe('255.255.255.255:68');
    expect(offer && type(offer.p)).toBe(MessageType.OFFER);
    expect(offer?.p).toMatchObject({ yiaddr: '198.18.0.100', siaddr: SERVER_IP, ciaddr: '0.0.0.0', xid: 0x1234 });
    expect(decodeValue(Opt.ROUTER, getOption(offer?.p as DhcpPacket, Opt.ROUTER) as Buffer)).toEqual(['198.18.0.254']);
    expect(r.store.writes).toBe(0); // an offer is not a lease
    r.client.send(request(MessageType.REQUEST, [o(Opt.SERVER_ID, SERVER_IP), o(Opt.REQUESTED_IP, '198.18.0.100')]), SERVER);
    await r.settle(() => r.replies().length === 2);
    const ack = r.replies()[1];
    expect(ack && type(ack.p)).toBe(MessageType.ACK);
    expect(decodeValue(Opt.LEASE_TIME, getOption(ack?.p as DhcpPacket, Opt.LEASE_TIME) as Buffer)).toBe(600);
    expect(r.store.writes).toBe(1);
    const reopened = await FileLeaseStore.open(dir);
    opened.push(reopened);
    expect(reopened.leases()).toMatchObject([{ mac: MAC, ip: '198.18.0.100' }]);
  });

  it('forgets its offer when the client chose another server (SELECTING with a foreign option 54)', async () => {
    const r = await rig();
    r.client.send(request(MessageType.DISCOVER), SERVER);
    r.client.send(request(MessageType.REQUEST, [o(Opt.SERVER_ID, '198.18.0.9'), o(Opt.REQUESTED_IP, '198.18.0.100')]), SERVER);
    await r.settle();
    expect(r.replies().map((x) => type(x.p))).toEqual([MessageType.OFFER]);
    expect(r.server.counters.ignored).toBe(1);
  });

  it('standing by (another instance leads the segment): counts and drops everything, answers again once leading', async () => {
    const r = await rig();
    r.server.setLeading(false);
    r.client.send(request(MessageType.DISCOVER), SERVER);
    await r.settle();
    expect(r.replies()).toEqual([]);
    expect(r.server.counters).toMatchObject({ received: 1, standby: 1, discovers: 0, offers: 0 });
    r.server.setLeading(true);
    r.client.send(request(MessageType.DISCOVER), SERVER);
    await r.settle(() => r.replies().length === 1);
    expect(r.replies().map((x) => type(x.p))).toEqual([MessageType.OFFER]);
  });

  it('answers a client that chose a peer instance of its segment (its OFFER, then it died): they are one server', async () => {
    const r = await rig();
    r.server.setPeerServerIds(['198.18.0.2', SERVER_IP]);
    // the REQUEST names the dead peer 198.18.0.2; this server never offered
    r.client.send(request(MessageType.REQUEST, [o(Opt.SERVER_ID, '198.18.0.2'), o(Opt.REQUESTED_IP, '198.18.0.100')]), SERVER);
    await r.settle(() => r.replies().length === 1);
    const ack = r.replies()[0];
    expect(ack && type(ack.p)).toBe(MessageType.ACK);
    expect(ack?.p.yiaddr).toBe('198.18.0.100');
    expect(decodeValue(Opt.SERVER_ID, getOption(ack?.p as DhcpPacket, Opt.SERVER_ID) as Buffer)).toBe(SERVER_IP);
    // an address the peer offered that is bound to another client: NAK, the client starts over
    r.client.send(request(MessageType.REQUEST, [o(Opt.SERVER_ID, '198.18.0.2'), o(Opt.REQUESTED_IP, '198.18.0.100')], {}, '52:54:00:00:00:78'), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(type((r.replies()[1] as { p: DhcpPacket }).p)).toBe(MessageType.NAK);
    // a server that is no peer is still another server
    r.client.send(request(MessageType.REQUEST, [o(Opt.SERVER_ID, '198.18.0.9'), o(Opt.REQUESTED_IP, '198.18.0.101')], {}, '52:54:00:00:00:79'), SERVER);
    await r.settle();
    expect(r.replies()).toHaveLength(2);
  });

  it('NAKs an INIT-REBOOT request for an address on another network', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '10.9.9.9')]), SERVER);
    await r.settle();
    const nak = r.replies()[0];
    expect(nak && type(nak.p)).toBe(MessageType.NAK);
    expect(nak?.to).toBe('255.255.255.255:68');
  });

  it('NAKs a request for an address leased to another MAC', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.100'), o(Opt.SERVER_ID, SERVER_IP)]), SERVER);
    await r.settle(() => r.replies().length === 1);
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.100'), o(Opt.SERVER_ID, SERVER_IP)], {}, '52:54:00:00:00:77'), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(r.replies().map((x) => type(x.p))).toEqual([MessageType.ACK, MessageType.NAK]);
  });

  it('answers a RENEWING request by unicast to ciaddr', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.100'), o(Opt.SERVER_ID, SERVER_IP)]), SERVER);
    await r.settle(() => r.replies().length === 1);
    r.client.send(request(MessageType.REQUEST, [], { ciaddr: '198.18.0.100' }), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(r.replies()[1]).toMatchObject({ to: '198.18.0.100:68' });
    expect(r.replies()[1]?.p.ciaddr).toBe('198.18.0.100');
  });

  it('stays silent in REBINDING for a client it has no record of', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [], { ciaddr: '198.18.0.200', flags: FLAG_BROADCAST }), SERVER);
    await r.settle();
    // 198.18.0.200 is on our network but outside the range and unknown: not ours to NAK
    expect(r.replies()).toEqual([]);
  });

  it('sends relayed replies to the relay on port 67 and echoes option 82 unchanged (RFC 3046)', async () => {
    const r = await rig();
    const agent = Buffer.from('0106657468302f31', 'hex');
    r.relay.send(request(MessageType.DISCOVER, [{ code: Opt.RELAY_AGENT, data: agent }], { giaddr: '198.18.0.2', hops: 1 }), { address: '10.0.0.1', port: 67 });
    await r.settle();
    const offer = r.replies()[0];
    expect(offer?.to).toBe('198.18.0.2:67');
    expect(getOption(offer?.p as DhcpPacket, Opt.RELAY_AGENT)?.equals(agent)).toBe(true);
  });

  it('leases from the relayed subnet that holds giaddr, with that subnet\'s mask and router (RFC 2131 section 4.3.1)', async () => {
    const r = await rig();
    const relay5 = r.net.bindSync({ address: '198.18.5.1', port: 67 });
    relay5.send(request(MessageType.DISCOVER, [], { giaddr: '198.18.5.1', hops: 1 }), { address: '10.0.0.1', port: 67 });
    await r.settle(() => r.replies().length === 1);
    const offer = r.replies()[0];
    expect(offer?.to).toBe('198.18.5.1:67');
    expect(offer?.p.yiaddr).toBe('198.18.5.100');
    expect(decodeValue(Opt.ROUTER, getOption(offer?.p as DhcpPacket, Opt.ROUTER) as Buffer)).toEqual(['198.18.5.1']);
    relay5.send(request(MessageType.REQUEST, [o(Opt.SERVER_ID, SERVER_IP), o(Opt.REQUESTED_IP, '198.18.5.100')], { giaddr: '198.18.5.1', hops: 1 }), { address: '10.0.0.1', port: 67 });
    await r.settle(() => r.replies().length === 2);
    expect(r.replies()[1] && type(r.replies()[1]?.p as DhcpPacket)).toBe(MessageType.ACK);
  });

  it('NAKs a relayed request for an address of another subnet than the relay\'s', async () => {
    const r = await rig();
    const relay5 = r.net.bindSync({ address: '198.18.5.1', port: 67 });
    relay5.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.100')], { giaddr: '198.18.5.1' }), { address: '10.0.0.1', port: 67 });
    await r.settle(() => r.replies().length === 1);
    expect(type(r.replies()[0]?.p as DhcpPacket)).toBe(MessageType.NAK);
    expect(r.replies()[0]?.to).toBe('198.18.5.1:67');
  });

  it('ignores a relayed request from a subnet it does not serve', async () => {
    const r = await rig();
    r.relay.send(request(MessageType.DISCOVER, [], { giaddr: '10.20.30.1' }), { address: '10.0.0.1', port: 67 });
    await r.settle();
    expect(r.replies()).toEqual([]);
  });

  it('gives a known PXE client its boot file: siaddr, 66, 67, file, and echoes 97', async () => {
    const r = await rig();
    const uuid = Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0xab)]);
    r.client.send(
      request(MessageType.DISCOVER, [o(Opt.CLIENT_ARCH, [7]), o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00007:UNDI:003000'), { code: Opt.CLIENT_UUID, data: uuid }], { flags: FLAG_BROADCAST }, KNOWN),
      SERVER,
    );
    await r.settle();
    const offer = r.replies()[0]?.p as DhcpPacket;
    expect(offer).toMatchObject({ yiaddr: '198.18.0.42', siaddr: SERVER_IP, file: 'syslinux.efi' });
    expect(decodeValue(Opt.BOOTFILE, getOption(offer, Opt.BOOTFILE) as Buffer)).toBe('syslinux.efi');
    expect(decodeValue(Opt.TFTP_SERVER, getOption(offer, Opt.TFTP_SERVER) as Buffer)).toBe(SERVER_IP);
    expect(getOption(offer, Opt.CLIENT_UUID)?.equals(uuid)).toBe(true);
  });

  it('gives iPXE the script and option 175.176 = 1, so it does not wait for proxy offers', async () => {
    const r = await rig();
    r.client.send(request(MessageType.DISCOVER, [o(Opt.CLIENT_ARCH, [0]), { code: Opt.USER_CLASS, data: Buffer.from('iPXE') }], {}, KNOWN), SERVER);
    await r.settle();
    const offer = r.replies()[0]?.p as DhcpPacket;
    expect(offer.file).toBe('boot.ipxe');
    expect(decodeSubOptions(Opt.IPXE, getOption(offer, Opt.IPXE) as Buffer)).toEqual([{ code: IpxeSub.NO_PXEDHCP, data: Buffer.from([1]) }]);
  });

  it('gives an unknown PXE client a plain lease when the policy is "lease", and a boot file when it is "boot"', async () => {
    const pxe = [o(Opt.CLIENT_ARCH, [0]), o(Opt.VENDOR_CLASS, 'PXEClient')];
    let r = await rig({ unknownHosts: 'lease' });
    r.client.send(request(MessageType.DISCOVER, pxe), SERVER);
    await r.settle();
    expect(getOption(r.replies()[0]?.p as DhcpPacket, Opt.BOOTFILE)).toBeUndefined();
    r = await rig({ unknownHosts: 'boot' });
    r.client.send(request(MessageType.DISCOVER, pxe), SERVER);
    await r.settle();
    expect(r.replies()[0]?.p.file).toBe('pxelinux.0');
  });

  it('ignores unknown clients by default, and answers known ones', async () => {
    const r = await rig({ unknownHosts: 'ignore' });
    r.client.send(request(MessageType.DISCOVER), SERVER);
    r.client.send(request(MessageType.DISCOVER, [], {}, KNOWN), SERVER);
    await r.settle();
    expect(r.replies().map((x) => x.p.yiaddr)).toEqual(['198.18.0.42']);
  });

  it('marks a declined address unusable and offers another', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.100'), o(Opt.SERVER_ID, SERVER_IP)]), SERVER);
    await r.settle(() => r.replies().length === 1);
    r.client.send(request(MessageType.DECLINE, [o(Opt.REQUESTED_IP, '198.18.0.100'), o(Opt.SERVER_ID, SERVER_IP)]), SERVER);
    await r.settle();
    r.client.send(request(MessageType.DISCOVER), SERVER);
    await r.settle();
    expect(r.replies().at(-1)?.p.yiaddr).toBe('198.18.0.101');
  });

  it('answers INFORM with configuration but no address or lease time', async () => {
    const r = await rig();
    r.client.send(request(MessageType.INFORM, [], { ciaddr: '198.18.0.77' }), SERVER);
    await r.settle();
    const ack = r.replies()[0];
    expect(ack?.to).toBe('198.18.0.77:68');
    expect(ack?.p.yiaddr).toBe('0.0.0.0');
    expect(getOption(ack?.p as DhcpPacket, Opt.LEASE_TIME)).toBeUndefined();
  });

  it('counts and drops malformed packets, BOOTP requests and replies from other servers, and keeps serving', async () => {
    const r = await rig();
    for (const junk of [Buffer.alloc(10), Buffer.alloc(300, 0xff)]) r.client.send(junk, SERVER);
    const bootp = request(MessageType.DISCOVER);
    bootp.fill(0, 240); // no options at all: plain BOOTP
    r.client.send(bootp, SERVER);
    const reply = request(MessageType.OFFER);
    reply[0] = 2;
    r.client.send(reply, SERVER);
    r.client.send(request(MessageType.DISCOVER), SERVER);
    await r.settle();
    expect(r.server.counters).toMatchObject({ malformed: 2, ignored: 2, offers: 1 });
  });
});

describe('DhcpServer (proxy mode)', () => {
  const pxe = [o(Opt.CLIENT_ARCH, [7]), o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00007:UNDI:003000'), { code: Opt.CLIENT_UUID, data: Buffer.alloc(17, 1) }];

  it('answers a PXE DISCOVER with boot information only: no address, 60 PXEClient with 43.6 = 8, the boot file', async () => {
    const r = await rig({ mode: 'proxy', unknownHosts: 'boot' });
    r.client.send(request(MessageType.DISCOVER, pxe, { flags: FLAG_BROADCAST }), SERVER);
    await r.settle(() => r.replies().length === 1);
    const offer = r.replies()[0];
    expect(offer?.to).toBe('255.255.255.255:68');
    const p = offer?.p as DhcpPacket;
    expect(type(p)).toBe(MessageType.OFFER);
    expect(p).toMatchObject({ yiaddr: '0.0.0.0', siaddr: SERVER_IP, file: 'syslinux.efi' });
    expect(decodeValue(Opt.VENDOR_CLASS, getOption(p, Opt.VENDOR_CLASS) as Buffer)).toBe('PXEClient');
    expect(getOption(p, Opt.VENDOR_SPECIFIC)?.toString('hex')).toBe('060108');
    expect(getOption(p, Opt.LEASE_TIME)).toBeUndefined();
    expect(getOption(p, Opt.CLIENT_UUID)?.length).toBe(17);
    expect(r.store.writes).toBe(0);
  });

  it('stays silent for non-PXE clients and for REQUESTs on port 67 (the real server answers those)', async () => {
    const r = await rig({ mode: 'proxy', unknownHosts: 'boot' });
    r.client.send(request(MessageType.DISCOVER, [o(Opt.VENDOR_CLASS, 'udhcp 1.35.0')]), SERVER);
    r.client.send(request(MessageType.REQUEST, [...pxe, o(Opt.REQUESTED_IP, '198.18.0.100'), o(Opt.SERVER_ID, '198.18.0.9')]), SERVER);
    await r.settle();
    expect(r.replies()).toEqual([]);
  });

  it('answers a REQUEST on port 4011 with an ACK carrying the boot file, back to the asking address and port', async () => {
    const r = await rig({ mode: 'proxy', unknownHosts: 'boot' });
    const c = r.net.bindSync({ address: '198.18.0.100', port: 4011 });
    c.send(request(MessageType.REQUEST, pxe, { ciaddr: '198.18.0.100' }), { address: '10.0.0.1', port: 4011 });
    await r.settle(() => r.replies().length === 1);
    const ack = r.replies()[0];
    expect(ack?.to).toBe('198.18.0.100:4011');
    expect(type(ack?.p as DhcpPacket)).toBe(MessageType.ACK);
    expect(ack?.p.file).toBe('syslinux.efi');
  });
});

describe('DhcpServer and UEFI HTTP Boot clients (UEFI 2.x section 24.7; edk2 HttpBootDxe)', () => {
  // what OVMF's HTTP Boot client sends (bootd's log, issue 24)
  const http = [o(Opt.CLIENT_ARCH, [16]), o(Opt.VENDOR_CLASS, 'HTTPClient:Arch:00016:UNDI:003000')];
  const httpFiles = { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi' }, ipxe: 'http://198.18.0.1:80/boot.ipxe', httpBase: 'http://198.18.0.1:80' } as const;
  const loaderOf = (loader: 'pxelinux' | 'ipxe' | 'grub'): HostLookup => ({ isKnown: (mac) => mac === KNOWN, loader: (mac) => (mac === KNOWN ? loader : undefined) });
  const bootFile = (p: DhcpPacket): unknown => (getOption(p, Opt.BOOTFILE) ? decodeValue(Opt.BOOTFILE, getOption(p, Opt.BOOTFILE) as Buffer) : undefined);
  const vendor = (p: DhcpPacket): unknown => (getOption(p, Opt.VENDOR_CLASS) ? decodeValue(Opt.VENDOR_CLASS, getOption(p, Opt.VENDOR_CLASS) as Buffer) : undefined);

  it('full mode: the offer echoes 60 HTTPClient and carries an http:// URL to iPXE (snponly.efi) in 67 and the file field', async () => {
    const r = await rig({ unknownHosts: 'boot', bootFiles: httpFiles });
    r.client.send(request(MessageType.DISCOVER, http), SERVER);
    await r.settle(() => r.replies().length === 1);
    const p = r.replies()[0]?.p as DhcpPacket;
    expect(type(p)).toBe(MessageType.OFFER);
    expect(vendor(p)).toBe('HTTPClient');
    expect(bootFile(p)).toBe('http://198.18.0.1:80/snponly.efi');
    expect(p.file).toBe('http://198.18.0.1:80/snponly.efi');
  });

  it('proxy mode: 60 HTTPClient with the URL and no option 43 (PXE boot-server discovery is not HTTP Boot\'s)', async () => {
    const r = await rig({ mode: 'proxy', unknownHosts: 'boot', bootFiles: httpFiles });
    r.client.send(request(MessageType.DISCOVER, http, { flags: FLAG_BROADCAST }), SERVER);
    await r.settle(() => r.replies().length === 1);
    const p = r.replies()[0]?.p as DhcpPacket;
    expect(p.yiaddr).toBe('0.0.0.0');
    expect(vendor(p)).toBe('HTTPClient');
    expect(getOption(p, Opt.VENDOR_SPECIFIC)).toBeUndefined();
    expect(bootFile(p)).toBe('http://198.18.0.1:80/snponly.efi');
  });

  it('per loader: pxelinux and ipxe hosts get iPXE over HTTP; a grub host (Secure Boot) the RAM disk with shim and GRUB; over PXE a grub host gets shim', async () => {
    for (const [loader, want] of [['pxelinux', 'http://198.18.0.1:80/snponly.efi'], ['ipxe', 'http://198.18.0.1:80/snponly.efi'], ['grub', 'http://198.18.0.1:80/efi/http-boot-x64.img']] as const) {
      const r = await rig({ bootFiles: httpFiles }, loaderOf(loader));
      r.client.send(request(MessageType.DISCOVER, http, {}, KNOWN), SERVER);
      await r.settle(() => r.replies().length === 1);
      const p = r.replies()[0]?.p as DhcpPacket;
      expect(bootFile(p), loader).toBe(want);
      expect(vendor(p), loader).toBe('HTTPClient');
    }
    const r = await rig({ bootFiles: httpFiles }, loaderOf('grub'));
    r.client.send(request(MessageType.DISCOVER, [o(Opt.CLIENT_ARCH, [7]), o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00007:UNDI:003000')], {}, KNOWN), SERVER);
    await r.settle(() => r.replies().length === 1);
    expect(bootFile(r.replies()[0]?.p as DhcpPacket)).toBe('shimx64.efi');
  });

  it('arm64 (option 93 = 11, 19): shimaa64.efi over PXE and the arm64 RAM disk over HTTP Boot, whatever the loader (Debian ships no arm64 syslinux or iPXE)', async () => {
    for (const loader of ['pxelinux', 'ipxe', 'grub'] as const) {
      const r = await rig({ bootFiles: httpFiles }, loaderOf(loader));
      r.client.send(request(MessageType.DISCOVER, [o(Opt.CLIENT_ARCH, [11]), o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00011:UNDI:003000')], {}, KNOWN), SERVER);
      r.client.send(request(MessageType.DISCOVER, [o(Opt.CLIENT_ARCH, [19]), o(Opt.VENDOR_CLASS, 'HTTPClient:Arch:00019:UNDI:003000')], { xid: 0x4321 }, KNOWN), SERVER);
      await r.settle(() => r.replies().length === 2);
      const by = (xid: number): DhcpPacket => r.replies().find((x) => x.p.xid === xid)?.p as DhcpPacket;
      expect(bootFile(by(0x1234)), loader).toBe('shimaa64.efi');
      expect(bootFile(by(0x4321)), loader).toBe('http://198.18.0.1:80/efi/http-boot-aa64.img');
    }
  });

  it('without bootd\'s HTTP server an HTTP Boot client gets no boot file (a plain lease)', async () => {
    const { httpBase: _h, ...noHttp } = httpFiles;
    const r = await rig({ unknownHosts: 'boot', bootFiles: noHttp });
    r.client.send(request(MessageType.DISCOVER, http), SERVER);
    await r.settle(() => r.replies().length === 1);
    expect(bootFile(r.replies()[0]?.p as DhcpPacket)).toBeUndefined();
  });
});

describe('DhcpServer by the RFCs', () => {
  const cid = (hex: string): DhcpOption => ({ code: Opt.CLIENT_ID, data: Buffer.from(hex, 'hex') });
  const sel = (ip: string): DhcpOption[] => [o(Opt.SERVER_ID, SERVER_IP), o(Opt.REQUESTED_IP, ip)];

  it('returns option 61 in every OFFER, ACK and NAK to a client that sent it (RFC 6842 section 3)', async () => {
    const r = await rig();
    r.client.send(request(MessageType.DISCOVER, [cid('01aabbcc')]), SERVER);
    await r.settle(() => r.replies().length === 1);
    r.client.send(request(MessageType.REQUEST, [cid('01aabbcc'), ...sel('198.18.0.100')]), SERVER);
    await r.settle(() => r.replies().length === 2);
    r.client.send(request(MessageType.REQUEST, [cid('01aabbcc'), ...sel('198.18.0.105')], {}, '52:54:00:00:00:44'), SERVER);
    await r.settle(() => r.replies().length === 3);
    r.client.send(request(MessageType.REQUEST, [cid('01ddeeff'), o(Opt.REQUESTED_IP, '10.1.1.1')]), SERVER); // wrong network: NAK
    await r.settle(() => r.replies().length === 4);
    const got = r.replies().map((x) => [type(x.p), getOption(x.p, Opt.CLIENT_ID)?.toString('hex')]);
    expect(got).toEqual([[MessageType.OFFER, '01aabbcc'], [MessageType.ACK, '01aabbcc'], [MessageType.ACK, '01aabbcc'], [MessageType.NAK, '01ddeeff']]);
    // the third was the same client on another MAC: it moved its lease
    expect(r.replies()[2]?.p.yiaddr).toBe('198.18.0.105');
    r.client.send(request(MessageType.DISCOVER), SERVER); // no option 61: none comes back
    await r.settle(() => r.replies().length === 5);
    expect(getOption(r.replies()[4]?.p as DhcpPacket, Opt.CLIENT_ID)).toBeUndefined();
  });

  it('leases two addresses to two clients that share a MAC but not a client identifier (RFC 2131 section 4.2)', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [cid('01aa'), ...sel('198.18.0.100')]), SERVER);
    await r.settle(() => r.replies().length === 1);
    r.client.send(request(MessageType.DISCOVER, [cid('01bb')]), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(r.replies()[1]?.p.yiaddr).toBe('198.18.0.101');
    r.client.send(request(MessageType.REQUEST, [cid('01bb'), ...sel('198.18.0.100')]), SERVER);
    await r.settle(() => r.replies().length === 3);
    expect(type(r.replies()[2]?.p as DhcpPacket)).toBe(MessageType.NAK);
  });

  it('stays silent on INIT-REBOOT from a client it has no record of; NAKs a wrong address; ACKs the right one (RFC 2131 section 4.3.2)', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.100')]), SERVER);
    await r.settle();
    expect(r.replies()).toHaveLength(0);
    expect(r.server.counters.unknownInitReboot).toBe(1);
    expect(r.store.writes).toBe(0); // and nothing was handed out
    r.client.send(request(MessageType.REQUEST, sel('198.18.0.103')), SERVER);
    await r.settle(() => r.replies().length === 1);
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.104')]), SERVER);
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.103')], { xid: 77 }), SERVER);
    await r.settle(() => r.replies().length === 3);
    const t = r.replies().map((x) => type(x.p));
    expect(t.slice(1).sort()).toEqual([MessageType.ACK, MessageType.NAK].sort());
    expect(r.replies().find((x) => x.p.xid === 77)?.p.yiaddr).toBe('198.18.0.103');
  });

  it('answers INIT-REBOOT from a host with a reservation even with no lease on record', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.0.42')], {}, KNOWN), SERVER);
    await r.settle(() => r.replies().length === 1);
    expect(type(r.replies()[0]?.p as DhcpPacket)).toBe(MessageType.ACK);
  });

  it('sets the broadcast bit in a NAK sent through a relay (RFC 2131 section 4.3.2)', async () => {
    const r = await rig();
    r.relay.send(request(MessageType.REQUEST, [o(Opt.SERVER_ID, SERVER_IP), o(Opt.REQUESTED_IP, '198.18.0.100')], { giaddr: '198.18.5.1', hops: 1 }), { address: '10.0.0.1', port: 67 });
    await r.settle(() => r.replies().length === 1);
    const nak = r.replies()[0];
    expect(nak?.to).toBe('198.18.5.1:67');
    expect(type(nak?.p as DhcpPacket)).toBe(MessageType.NAK);
    expect((nak?.p.flags ?? 0) & FLAG_BROADCAST).toBe(FLAG_BROADCAST);
  });

  it('ignores (and counts) a DECLINE or RELEASE from anyone but the lease\'s client, or for an address not ours', async () => {
    const r = await rig();
    r.client.send(request(MessageType.REQUEST, [cid('01aa'), ...sel('198.18.0.100')]), SERVER);
    await r.settle(() => r.replies().length === 1);
    const intruder = [cid('01ee')];
    r.client.send(request(MessageType.DECLINE, [...intruder, ...sel('198.18.0.100')], {}, '52:54:00:00:00:66'), SERVER);
    r.client.send(request(MessageType.RELEASE, [...intruder, o(Opt.SERVER_ID, SERVER_IP)], { ciaddr: '198.18.0.100' }, '52:54:00:00:00:66'), SERVER);
    r.client.send(request(MessageType.DECLINE, [cid('01aa'), ...sel('10.7.7.7')]), SERVER);
    await r.settle();
    expect(r.server.counters).toMatchObject({ declines: 0, releases: 0, foreignDeclines: 2, foreignReleases: 1 });
    r.client.send(request(MessageType.DISCOVER, [cid('01aa')]), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(r.replies()[1]?.p.yiaddr).toBe('198.18.0.100'); // still its lease
    r.client.send(request(MessageType.RELEASE, [cid('01aa'), o(Opt.SERVER_ID, SERVER_IP)], { ciaddr: '198.18.0.100' }), SERVER);
    await r.settle();
    expect(r.server.counters.releases).toBe(1);
  });

  it('keeps no lease for a request whose reply cannot fit, and the same MAC is served when it asks normally', async () => {
    const r = await rig();
    // 255 bytes of client id and 250 of option 82 (RFC 3396 lets a sender join instances): each is
    // echoed (RFC 6842, RFC 3046), and together they cannot fit the 548 bytes the client takes
    const huge = [cid('01' + 'ab'.repeat(254)), { code: Opt.RELAY_AGENT, data: Buffer.alloc(250, 1) }];
    r.client.send(request(MessageType.REQUEST, [...huge, ...sel('198.18.0.100')]), SERVER);
    r.client.send(request(MessageType.DISCOVER, huge), SERVER);
    await r.settle();
    expect(r.replies()).toHaveLength(0);
    expect(r.server.counters.replyTooBig).toBe(2);
    expect(r.store.writes).toBe(0);
    r.client.send(request(MessageType.DISCOVER), SERVER);
    await r.settle(() => r.replies().length === 1);
    expect(type(r.replies()[0]?.p as DhcpPacket)).toBe(MessageType.OFFER);
    // nothing was bound or held: the address the oversized request named is free for anyone
    r.client.send(request(MessageType.REQUEST, sel('198.18.0.100'), {}, '52:54:00:00:00:58'), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(type(r.replies()[1]?.p as DhcpPacket)).toBe(MessageType.ACK);
  });

  it('bounds a client host name on the way in: a long or odd one is neither kept nor echoed', async () => {
    const r = await rig();
    const longName = Buffer.alloc(600, 0x61); // joined from three option 12 instances (RFC 3396)
    r.client.send(request(MessageType.REQUEST, [{ code: Opt.HOSTNAME, data: longName }, ...sel('198.18.0.100')]), SERVER);
    r.client.send(request(MessageType.REQUEST, [o(Opt.HOSTNAME, 'bad name;rm'), ...sel('198.18.0.101')], {}, '52:54:00:00:00:55'), SERVER);
    r.client.send(request(MessageType.REQUEST, [o(Opt.HOSTNAME, 'bee-01'), ...sel('198.18.0.102')], {}, '52:54:00:00:00:56'), SERVER);
    await r.settle(() => r.replies().length === 3);
    expect(r.replies().map((x) => type(x.p))).toEqual([MessageType.ACK, MessageType.ACK, MessageType.ACK]);
    expect(r.replies().map((x) => getOption(x.p, Opt.HOSTNAME)?.toString())).toEqual([undefined, undefined, 'bee-01']);
    expect(r.server.counters.badClientValues).toBe(2);
  });

  it('sends no ACK when the lease cannot be written, and ACKs the retry once the disk takes it', async () => {
    let fail = true;
    const r = await rig({}, undefined, { commit: (real) => (src) => (fail ? (src.changes(), Promise.reject(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }))) : real(src)) });
    r.client.send(request(MessageType.REQUEST, sel('198.18.0.100')), SERVER);
    await r.settle();
    expect(r.replies()).toHaveLength(0);
    expect(r.server.counters.storeFailures).toBe(1);
    fail = false;
    r.client.send(request(MessageType.REQUEST, sel('198.18.0.100')), SERVER);
    await r.settle(() => r.replies().length === 1);
    expect(type(r.replies()[0]?.p as DhcpPacket)).toBe(MessageType.ACK);
    const reopened = await FileLeaseStore.open(dir);
    opened.push(reopened);
    expect(reopened.leases()).toMatchObject([{ mac: MAC, ip: '198.18.0.100' }]);
  });

  it('unicasts to yiaddr when the broadcast bit is clear and an ARP entry can be installed; broadcasts otherwise (RFC 2131 section 4.1)', async () => {
    const arp: string[] = [];
    const r = await rig({}, undefined, { neighbor: (ip, mac) => (arp.push(`${ip}=${mac}`), true) });
    r.client.send(request(MessageType.DISCOVER), SERVER);
    r.client.send(request(MessageType.DISCOVER, [], { flags: FLAG_BROADCAST }, '52:54:00:00:00:57'), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(r.replies().map((x) => x.to).sort()).toEqual(['198.18.0.100:68', '255.255.255.255:68']);
    expect(arp).toEqual([`198.18.0.100=${MAC}`]);
    const r2 = await rig({}, undefined, { neighbor: () => false });
    r2.client.send(request(MessageType.DISCOVER), SERVER);
    await r2.settle(() => r2.replies().length === 1);
    expect(r2.replies()[0]?.to).toBe('255.255.255.255:68');
  });

  it('installs no ARP entry for a request it refuses: the address keeps pointing at its owner', async () => {
    const arp: string[] = [];
    const r = await rig({}, undefined, { neighbor: (ip, mac) => (arp.push(`${ip}=${mac}`), true) });
    r.client.send(request(MessageType.REQUEST, sel('198.18.0.100')), SERVER);
    await r.settle(() => r.replies().length === 1);
    r.client.send(request(MessageType.REQUEST, sel('198.18.0.100'), {}, '52:54:00:00:00:66'), SERVER);
    await r.settle(() => r.replies().length === 2);
    expect(type(r.replies()[1]?.p as DhcpPacket)).toBe(MessageType.NAK);
    expect(arp).toEqual([`198.18.0.100=${MAC}`]);
  });

  it('drops a client identifier shorter than 2 bytes as malformed (RFC 2132 section 9.14)', async () => {
    const r = await rig();
    r.client.send(request(MessageType.DISCOVER, [cid('01')]), SERVER);
    await r.settle();
    expect(r.replies()).toHaveLength(0);
    expect(r.server.counters.malformed).toBe(1);
  });
});

describe('DhcpServer events (src/events/): the reply path never waits for a subscriber', () => {
  const exchange = async (r: Rig): Promise<void> => {
    r.client.send(request(MessageType.DISCOVER, [o(Opt.CLIENT_ARCH, [0]), o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001')]), SERVER);
    await r.settle(() => r.replies().length === 1);
    const offer = r.replies()[0]?.p as DhcpPacket;
    r.client.send(request(MessageType.REQUEST, [o(Opt.SERVER_ID, SERVER_IP), o(Opt.REQUESTED_IP, offer.yiaddr)]), SERVER);
    await r.settle(() => r.replies().length === 2);
  };

  it('publishes discover, offer, request\'s ack, nak and release with the client, address, arch and vendor class, in order', async () => {
    const seen: BootEvent[] = [];
    const seqs: number[] = [];
    const bus = new EventBus({ wallNow: () => 0 });
    bus.subscribe('test', (e, s) => {
      seen.push(e);
      seqs.push(s.seq);
    });
    const r = await rig({}, undefined, { events: bus });
    await exchange(r);
    r.client.send(request(MessageType.REQUEST, [o(Opt.REQUESTED_IP, '198.18.1.9')]), SERVER); // INIT-REBOOT on the wrong network: NAK
    r.client.send(request(MessageType.RELEASE, [o(Opt.SERVER_ID, SERVER_IP)], { ciaddr: '198.18.0.100' }), SERVER);
    await r.settle(() => seen.length === 5);
    await bus.drained();
    expect(seen.map((e) => (e.type === 'dhcp' ? `${e.message} ${e.ip ?? '-'}` : e.type))).toEqual(['discover -', 'offer 198.18.0.100', 'ack 198.18.0.100', 'nak -', 'release 198.18.0.100']);
    expect(seen[1]).toMatchObject({ type: 'dhcp', mac: MAC, clientId: null, arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', pxe: true, relay: null, bootFile: null }); // unknown_hosts: lease gives no boot file
    expect(seen[3]).toMatchObject({ message: 'nak', reason: expect.stringContaining('not on this network') });
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
  });

  it('a subscriber that takes a second per event does not delay an ACK, and still gets every event in order', async () => {
    const got: string[] = [];
    const bus = new EventBus({ wallNow: () => 0 });
    bus.subscribe('slow', async (e) => {
      await new Promise((res) => setTimeout(res, 1000)); // a database that answers in a second
      if (e.type === 'dhcp') got.push(e.message);
    });
    const r = await rig({}, undefined, { events: bus });
    const t0 = performance.now();
    await exchange(r);
    const ms = performance.now() - t0;
    expect(type(r.replies()[1]?.p as DhcpPacket)).toBe(MessageType.ACK);
    expect(ms).toBeLessThan(500); // the subscriber is still on its first event
    expect(got).toEqual([]);
    await bus.drained();
    expect(got).toEqual(['discover', 'offer', 'ack']);
  }, 15_000);

  it('a subscriber that throws, or blocks the loop, runs only after the reply that caused its event went out; the others still get everything', async () => {
    const failures: string[] = [];
    const bus = new EventBus({ wallNow: () => 0, onFailure: (name) => failures.push(name) });
    let r: Rig | null = null;
    let acksOnWireWhenBlocked = -1;
    bus.subscribe('throws', () => {
      throw new Error('subscriber bug');
    });
    bus.subscribe('blocks', (e) => {
      if (e.type !== 'dhcp' || e.message !== 'ack') return;
      acksOnWireWhenBlocked = r?.replies().filter((x) => type(x.p) === MessageType.ACK).length ?? -1;
      const until = performance.now() + 1000;
      while (performance.now() < until); // a subscriber that blocks the event loop for a second
    });
    const good: string[] = [];
    bus.subscribe('good', (e) => void (e.type === 'dhcp' && good.push(e.message)));
    r = await rig({}, undefined, { events: bus });
    await exchange(r);
    await bus.drained();
    expect(acksOnWireWhenBlocked).toBe(1);
    expect(good).toEqual(['discover', 'offer', 'ack']);
    expect(failures).toEqual(['throws', 'throws', 'throws']);
    expect(bus.stats().subscribers.find((s) => s.name === 'throws')).toMatchObject({ failed: 3, delivered: 0 });
  }, 15_000);
});
