/**
 * Wiring of the DHCP half: the check for another server on the segment, the
 * lease store and table, the warm-up, the sockets and the server. Only
 * wiring: every decision is in src/dhcp/.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SubnetUsage } from '../admin/metrics.js';
import { probeForDhcpServers } from '../dhcp/probe.js';
import { DhcpServer, type DhcpServerConfig, type HostLookup } from '../dhcp/server.js';
import { warmUpDhcp } from '../dhcp/warmup.js';
import { LeaseTable, type PoolConfig } from '../dhcp/leases.js';
import type { LeaseStore } from '../dhcp/lease-store.js';
import type { EventSink } from '../events/types.js';
import type { HostDirectory } from '../hosts/loader.js';
import type { Logger } from '../log.js';
import { arpInstaller } from '../net/arp.js';
import type { Clock } from '../net/clock.js';
import { cidrOf, parseIpv4 } from '../net/ipv4.js';
import { RoutedSocket, type BindOptions, type UdpSocketFactory } from '../net/udp.js';
import { FileLeaseStore } from '../state/lease-store.js';
import { PgLeaseStore } from '../state/pg/lease-store.js';
import { SegmentLeadership, pgLeaderSession } from '../state/pg/leadership.js';
import { MemoryLeaseStore } from '../state/memory.js';

export interface DhcpWiring {
  /** The only interface DHCP is served on. */
  readonly interface: string;
  readonly server: DhcpServerConfig;
  readonly rangeStart: string;
  readonly rangeEnd: string;
  /** Ranges of the relayed subnets, in the order of `server.relayed`. */
  readonly relayedRanges?: readonly { readonly start: string; readonly end: string }[];
  /** Fixed addresses by MAC; these hosts count as known. */
  readonly reservations: ReadonlyMap<string, string>;
  readonly stateDir: string;
  /** Leases in PostgreSQL instead of the state directory's journal (postgresql://...). */
  readonly stateUrl?: string;
  /**
   * With a state URL: the segment this instance serves, the name its
   * leadership lock goes by (default: the interface's subnet, 198.18.0.0/24);
   * instances on one segment share it, and one of them leads.
   */
  readonly segment?: string;
  /** This instance's name in the database (default: host name and server address). */
  readonly instance?: string;
  /** How often a standby tries for the lead (default 500 ms). */
  readonly leaderPollMs?: number;
  /**
   * Server addresses of the segment's other instances in the database: the
   * probe does not count them as a foreign server, and the leader answers
   * clients that chose one of them.
   */
  readonly peerAddresses?: () => Promise<ReadonlySet<string>>;
  /** Skip the check for another DHCP server on the segment. */
  readonly force: boolean;
  readonly probeMs: number;
}

export interface DhcpWiringDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly udp: UdpSocketFactory;
  readonly events: EventSink;
  readonly onFatal: (err: Error) => void;
}

/**
 * The DHCP warm-up over loopback sockets and a scratch lease store in a
 * temporary directory, removed after. It only makes the first clients
 * faster: if it fails (no writable temp directory, say), bootd says so and
 * serves anyway.
 */
const WARM_UP_PREFIX = 'bootd-warmup-';

/**
 * Removes scratch folders of warm-ups that a kill -9 cut short: named with
 * their process's PID, they go when that process is gone (one left by an
 * older version, without a PID, when it is over 10 minutes old). A running
 * bootd's own folder is never touched.
 */
export async function sweepStaleWarmUps(tmp: string, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of await fs.readdir(tmp).catch(() => [] as string[])) {
    if (!name.startsWith(WARM_UP_PREFIX)) continue;
    const m = /^bootd-warmup-(\d+)-/.exec(name);
    let stale: boolean;
    if (m) {
      try {
        process.kill(Number(m[1]), 0);
        stale = false;
      } catch (err) {
        stale = (err as NodeJS.ErrnoException).code === 'ESRCH';
      }
    } else {
      const st = await fs.stat(path.join(tmp, name)).catch(() => null);
      stale = st !== null && now - st.mtimeMs > 10 * 60_000;
    }
    if (stale) {
      await fs.rm(path.join(tmp, name), { recursive: true, force: true }).catch(() => {});
      removed++;
    }
  }
  return removed;
}

export async function warmUp(deps: Pick<DhcpWiringDeps, 'clock' | 'udp' | 'log'>, hosts: HostLookup, config: DhcpServerConfig, pool: PoolConfig, bindLike: Omit<BindOptions, 'address' | 'port'>, tmp = os.tmpdir()): Promise<number> {
  let dir: string | null = null;
  try {
    await sweepStaleWarmUps(tmp);
    // a scratch file store (no O_DSYNC): the journal append is half of the cold cost the warm-up
    // takes away (src/dhcp/warmup.ts); with no writable temp folder, the memory store stands in
    dir = await fs.mkdtemp(path.join(tmp, `${WARM_UP_PREFIX}${process.pid}-`)).catch(() => null);
    const base = dir;
    let n = 0;
    const openStore = (): Promise<LeaseStore> => (base === null ? Promise.resolve(new MemoryLeaseStore()) : FileLeaseStore.open(path.join(base, String(n++)), undefined, { sync: false }));
    // a sibling of the real DHCP logger (same parent, level given explicitly): one shape for both
    return await warmUpDhcp({ clock: deps.clock, hosts, config }, { udp: deps.udp, openStore, pool, bindLike, log: deps.log.child({ svc: 'dhcp' }, { level: 'silent' }) });
  } catch (err) {
    deps.log.warn({ svc: 'dhcp', err: String(err) }, 'dhcp warm-up failed; serving without it (the first clients are answered more slowly)');
    return 0;
  } finally {
    if (dir) await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}


export interface StartedDhcp {
  readonly server: DhcpServer;
  readonly leases: LeaseTable;
  readonly store: LeaseStore;
  /** With a state URL: this instance's lead of its segment. */
  readonly leadership: SegmentLeadership | null;
  readonly segment: string;
  readonly onHostsChanged: () => void;
  readonly usage: () => SubnetUsage[];
  /** Gives up the lead, then waits for writes in flight and closes the store. */
  readonly stop: () => Promise<void>;
}

export async function startDhcp(c: DhcpWiring, deps: DhcpWiringDeps, hosts: HostDirectory | null, onLeading: (leading: boolean) => void = () => {}): Promise<StartedDhcp> {
  // the level given explicitly, as for the warm-up's silent sibling: pino then gives both the same shape
  const log = deps.log.child({ svc: 'dhcp' }, { level: deps.log.level });
  const proxy = c.server.mode === 'proxy';
  // proxyDHCP exists to run beside another server; full mode must not
  if (!c.force && !proxy) {
    const probe = await probeForDhcpServers(deps.udp, c.interface, c.probeMs, { clock: deps.clock });
    // another instance on the same database is not a foreign server: one of us leads, the others stand by
    const peers = c.peerAddresses ? await c.peerAddresses() : new Set<string>();
    const foreign = probe.servers.filter((s) => !peers.has(s));
    if (foreign.length > 0) {
      throw new Error(`another DHCP server answers on ${c.interface} (${foreign.join(', ')}); bootd will not serve DHCP beside it. Use --dhcp-mode proxy, or --force if you are sure`);
    }
  }
  // range 0 is the interface's own subnet, range i + 1 the relayed subnet i
  const subnetNames = [cidrOf(c.server.serverIp, c.server.subnetMask), ...(c.server.relayed ?? []).map((r) => cidrOf(r.network, r.mask))];
  const segment = c.segment ?? subnetNames[0] ?? c.interface;
  let leadership: SegmentLeadership | null = null;
  const store: LeaseStore =
    c.stateUrl !== undefined
      ? await PgLeaseStore.open(c.stateUrl, {
          segment,
          fence: () => {
            const epoch = leadership?.epoch ?? null;
            return epoch === null ? null : { segment, epoch };
          },
        })
      : await FileLeaseStore.open(c.stateDir);
  // --reserve flags first, then hosts/*.yaml (the loader already refused duplicate IPs between files)
  const reservationsNow = (): Map<string, number> => {
    const out = new Map<string, number>();
    for (const [mac, ip] of c.reservations) out.set(mac, parseIpv4(ip) as number);
    for (const [mac, ip] of hosts?.current.reservations() ?? []) if (!out.has(mac)) out.set(mac, parseIpv4(ip) as number);
    return out;
  };
  const reservations = reservationsNow();
  const pool: PoolConfig = {
    ranges: [
      { start: parseIpv4(c.rangeStart) as number, end: parseIpv4(c.rangeEnd) as number },
      ...(c.relayedRanges ?? []).map((r) => ({ start: parseIpv4(r.start) as number, end: parseIpv4(r.end) as number })),
    ],
    leaseSeconds: c.server.leaseSeconds,
    offerHoldMs: 30_000,
    declineHoldMs: 10 * 60_000,
    reservations,
    excluded: new Set([c.server.serverIp, c.server.router].flatMap((a) => (a ? [parseIpv4(a) as number] : []))),
  };
  const leases = new LeaseTable(pool, await store.load());
  const lookup: HostLookup = {
    isKnown: (mac) => c.reservations.has(mac) || hosts?.current.byMac(mac) !== undefined,
    mayNetboot: (mac) => hosts?.current.byMac(mac)?.netboot ?? true,
    hostname: (mac) => hosts?.current.byMac(mac)?.hostname,
    loader: (mac) => hosts?.current.byMac(mac)?.loader,
    replyDelayMs: (mac) => hosts?.current.byMac(mac)?.quirks.dhcpReplyDelayMs ?? 0,
  };
  // Compile the request path before the first real client (src/dhcp/warmup.ts),
  // and before port 67 is bound: whoever waits for the port (a boot bench, a
  // supervisor) then starts its clients when bootd is ready, not while the
  // warm-up still takes the CPU from them.
  const warmStart = deps.clock.now();
  const bindOpts = { device: c.interface, broadcast: true, reuseAddr: true, recvBufferBytes: 4 << 20 } as const;
  const warmed = proxy ? 0 : await warmUp(deps, lookup, c.server, pool, bindOpts);
  const warmMs = Math.round(deps.clock.now() - warmStart);
  const socket = new RoutedSocket(await deps.udp.bind({ ...bindOpts, address: '0.0.0.0', port: 67 }));
  const pxeSocket = proxy ? await deps.udp.bind({ address: '0.0.0.0', port: 4011, device: c.interface, reuseAddr: true }) : undefined;
  const server = new DhcpServer({
    socket,
    ...(pxeSocket ? { pxeSocket } : {}),
    clock: deps.clock,
    leases,
    store,
    hosts: lookup,
    log,
    config: c.server,
    ...(proxy ? {} : { neighbor: arpInstaller(c.interface, (errno) => log.warn({ interface: c.interface, errno }, 'dhcp: SIOCSARP failed')) }),
    events: deps.events,
    onFatal: deps.onFatal,
  });
  if (c.stateUrl !== undefined) {
    const url = c.stateUrl;
    // several instances on one segment and one database: one leads, the others stand by (./state/pg/leadership.ts)
    server.setLeading(false);
    const l = new SegmentLeadership({
      clock: deps.clock,
      connect: pgLeaderSession(url, segment, c.instance ?? `${os.hostname()}/${c.server.serverIp}`),
      pollMs: c.leaderPollMs ?? 500,
      onLead: async (epoch) => {
        const t0 = deps.clock.now();
        // what the previous leader committed; its last writes finished before our epoch (the fence)
        leases.reload(await store.load());
        // clients that chose a peer of this segment (its OFFER, then it died) are ours now
        if (c.peerAddresses) server.setPeerServerIds(await c.peerAddresses());
        server.setLeading(true);
        onLeading(true);
        log.info({ segment, epoch, leases: leases.size, reloadMs: Math.round(deps.clock.now() - t0) }, 'dhcp: leading the segment');
        deps.events.publish({ type: 'server', server: 'dhcp', state: 'started', listen: `${c.interface} (leading ${segment}, epoch ${epoch})` });
      },
      onStandby: (reason) => {
        server.setLeading(false);
        onLeading(false);
        if (reason === 'closing') log.info({ segment }, 'dhcp: lead of the segment given back');
        else log.warn({ segment, reason }, 'dhcp: lead of the segment lost; standing by (nothing answered until this instance leads again)');
      },
    });
    leadership = l;
    if (!(await l.start())) log.info({ segment }, 'dhcp: another instance leads this segment; standing by');
  }
  log.info({ interface: c.interface, mode: proxy ? 'proxy' : 'full', server: c.server.serverIp, range: proxy ? null : `${c.rangeStart}-${c.rangeEnd}`, leases: leases.size, unknownHosts: c.server.unknownHosts, state: c.stateUrl !== undefined ? 'postgresql' : path.join(c.stateDir, 'leases.json'), ...(c.stateUrl !== undefined ? { segment, leading: server.isLeading } : {}), warmUp: { exchanges: warmed, ms: warmMs } }, 'dhcp listening');
  const usage = (): SubnetUsage[] => (proxy ? [] : leases.rangeUsage(deps.clock.wallNow()).map((u, i) => ({ subnet: subnetNames[i] ?? `range-${i}`, total: u.total, assigned: u.assigned, declined: u.declined })));
  const stop = async (): Promise<void> => {
    await leadership?.close();
    await store.close();
  };
  return { server, leases, store, leadership, segment, onHostsChanged: () => leases.setReservations(reservationsNow()), usage, stop };
}

