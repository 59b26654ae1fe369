/**
 * The composition root: builds every server from one configuration, starts
 * them under one AbortSignal, and stops them all when it is aborted or when
 * one of them fails. Nothing else in bootd constructs sockets or servers.
 */
import type { Clock } from './net/clock.js';
import { cachedMtu, type MtuLookup } from './net/mtu.js';
import type { UdpSocketFactory } from './net/udp.js';
import type { Logger } from './log.js';
import { probeForDhcpServers } from './dhcp/probe.js';
import { DhcpServer, type DhcpServerConfig } from './dhcp/server.js';
import { LeaseTable } from './dhcp/leases.js';
import { parseIpv4 } from './net/ipv4.js';
import { LeaseStore } from './state/lease-store.js';
import { FileRoot, VirtualFileTable } from './tftp/fileroot.js';
import { TftpServer } from './tftp/server.js';
import { FileCache } from './tftp/source.js';
import type { TimingConfig } from './tftp/session.js';

export interface AppConfig {
  readonly tftp: {
    readonly root: string;
    readonly listen: string;
    readonly port: number;
    readonly maxTransfers: number;
    readonly maxBlksize: number;
    readonly maxWindowsize: number;
    readonly timing: TimingConfig;
    readonly cacheBytes: number;
  };
  /** Absent: no DHCP at all (TFTP-only use). */
  readonly dhcp?: {
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
    /** Skip the check for another DHCP server on the segment. */
    readonly force: boolean;
    readonly probeMs: number;
  };
}

export interface AppDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly udp: UdpSocketFactory;
  readonly mtu: MtuLookup;
}

export interface App {
  readonly tftp: TftpServer;
  readonly dhcp: DhcpServer | null;
  /** Registered generated files (pxelinux configs, iPXE scripts) served over TFTP. */
  readonly virtualFiles: VirtualFileTable;
  /** Resolves when every server has stopped. */
  readonly stopped: Promise<void>;
}

export async function startApp(cfg: AppConfig, deps: AppDeps, signal: AbortSignal): Promise<App> {
  const log = deps.log;
  const virtualFiles = new VirtualFileTable();
  const root = await FileRoot.open(cfg.tftp.root, [virtualFiles]);
  const listener = await deps.udp.bind({ address: cfg.tftp.listen, port: cfg.tftp.port, recvBufferBytes: 4 << 20 });
  const cache = new FileCache(cfg.tftp.cacheBytes);
  const tftp = new TftpServer({
    listener,
    udp: deps.udp,
    clock: deps.clock,
    root,
    cache,
    mtu: cachedMtu(deps.mtu),
    log: log.child({ svc: 'tftp' }),
    config: {
      maxTransfers: cfg.tftp.maxTransfers,
      maxBlksize: cfg.tftp.maxBlksize,
      maxWindowsize: cfg.tftp.maxWindowsize,
      timing: cfg.tftp.timing,
      transferAddress: cfg.tftp.listen,
    },
  });
  const addr = tftp.address;
  log.info({ svc: 'tftp', listen: `${addr.address}:${addr.port}`, root: root.realRoot }, 'tftp listening');

  let dhcp: DhcpServer | null = null;
  if (cfg.dhcp) {
    try {
      dhcp = await startDhcp(cfg.dhcp, deps);
    } catch (err) {
      await tftp.close();
      throw err;
    }
  }

  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      log.info({ active: tftp.counters.active }, 'stopping');
      dhcp?.close();
      void tftp.close().then(() => {
        // peak resident memory, for boot-storm measurements (docs/performance.md)
        log.info({ stats: tftp.counters, dhcp: dhcp?.counters, cache: cache.stats(), maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }, 'stopped');
        resolve();
      });
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  return { tftp, dhcp, virtualFiles, stopped };
}

async function startDhcp(c: NonNullable<AppConfig['dhcp']>, deps: AppDeps): Promise<DhcpServer> {
  const log = deps.log.child({ svc: 'dhcp' });
  const proxy = c.server.mode === 'proxy';
  // proxyDHCP exists to run beside another server; full mode must not
  if (!c.force && !proxy) {
    const probe = await probeForDhcpServers(deps.udp, c.interface, c.probeMs);
    if (probe.servers.length > 0) {
      throw new Error(`another DHCP server answers on ${c.interface} (${probe.servers.join(', ')}); bootd will not serve DHCP beside it. Use --dhcp-mode proxy, or --force if you are sure`);
    }
  }
  const store = await LeaseStore.open(c.stateDir);
  const reservations = new Map<string, number>();
  for (const [mac, ip] of c.reservations) reservations.set(mac, parseIpv4(ip) as number);
  const leases = new LeaseTable(
    {
      ranges: [
        { start: parseIpv4(c.rangeStart) as number, end: parseIpv4(c.rangeEnd) as number },
        ...(c.relayedRanges ?? []).map((r) => ({ start: parseIpv4(r.start) as number, end: parseIpv4(r.end) as number })),
      ],
      leaseSeconds: c.server.leaseSeconds,
      offerHoldMs: 30_000,
      declineHoldMs: 10 * 60_000,
      reservations,
      excluded: new Set([c.server.serverIp, c.server.router].flatMap((a) => (a ? [parseIpv4(a) as number] : []))),
    },
    store.leases(),
  );
  const socket = await deps.udp.bind({ address: '0.0.0.0', port: 67, device: c.interface, broadcast: true, reuseAddr: true, recvBufferBytes: 4 << 20 });
  const pxeSocket = proxy ? await deps.udp.bind({ address: '0.0.0.0', port: 4011, device: c.interface, reuseAddr: true }) : undefined;
  const server = new DhcpServer({
    socket,
    ...(pxeSocket ? { pxeSocket } : {}),
    clock: deps.clock,
    leases,
    store,
    hosts: { isKnown: (mac) => reservations.has(mac) },
    log,
    config: c.server,
  });
  log.info({ interface: c.interface, mode: proxy ? 'proxy' : 'full', server: c.server.serverIp, range: proxy ? null : `${c.rangeStart}-${c.rangeEnd}`, leases: leases.size, unknownHosts: c.server.unknownHosts, state: store.file }, 'dhcp listening');
  return server;
}
