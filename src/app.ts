/**
 * The composition root: builds every server from one configuration, starts
 * them under one AbortSignal, and stops them all when it is aborted or when
 * one of them fails, at start-up or later (a listener lost while running
 * stops bootd with a clear log line; `App.failure` then says which, and the
 * command exits non-zero). Nothing else in bootd constructs sockets or
 * servers; the parts are wired in src/serve/, decided in their own folders.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { AfterBoot } from './afterboot/tracker.js';
import { BootFiles, type BootFilesDeps } from './bootconfig/files.js';
import { BootTemplates } from './bootconfig/render.js';
import { formatIssue } from './config/yaml-config.js';
import type { DhcpServer } from './dhcp/server.js';
import type { LeaseTable } from './dhcp/leases.js';
import { EventBus } from './events/bus.js';
import { FileCache } from './files/source.js';
import { FileRoot, VirtualFileTable } from './files/root.js';
import { EfiDisks } from './bootconfig/efi-disk.js';
import { HostSet } from './hosts/directory.js';
import { HostLocator } from './hosts/locate.js';
import { HostDirectory } from './hosts/loader.js';
import type { ImageRef } from './hosts/types.js';
import type { HttpFileServer } from './http/server.js';
import { MissingImageBuilder } from './images/auto-build.js';
import { ImageCatalog } from './images/catalog.js';
import type { Logger } from './log.js';
import { RepeatLimiter } from './log-limit.js';
import { MountedDirs } from './machines/mounts.js';
import type { MachinePorts } from './machines/ports.js';
import type { Clock } from './net/clock.js';
import type { MtuLookup } from './net/mtu.js';
import type { UdpSocketFactory } from './net/udp.js';
import type { AdminServer } from './admin/server.js';
import { startAdmin, type AdminWiring } from './serve/admin.js';
import type { SubnetUsage } from './admin/metrics.js';
import { startDhcp, type DhcpWiring } from './serve/dhcp.js';
import { startOrigin, type OriginWiring } from './serve/images.js';
import { instancesView, peerAddresses, startFleet } from './serve/fleet.js';
import type { InstanceRegistry } from './state/pg/instances.js';
import { startHttp, startTftp, startUploads, type TftpWiring } from './serve/files.js';
import { startState, type StateWiring } from './serve/state.js';
import { processStats } from './stats/process.js';
import { StatsRegistry } from './stats/registry.js';
import type { TftpServer } from './tftp/server.js';

export interface AppConfig {
  readonly tftp: TftpWiring;
  /** The file tree over HTTP too (iPXE, UEFI HTTP boot); absent: no HTTP. */
  readonly http?: { readonly listen: string; readonly port: number };
  /**
   * The write-enabled TFTP port (bee.report= uploads): each host writes only
   * into `<dir>/<host>/`, known by its address. Absent: no uploads.
   */
  readonly uploads?: { readonly port: number; readonly dir: string; readonly quotaBytes: number };
  /** hosts/*.yaml; absent: no host directory (only --reserve hosts are known). */
  readonly hosts?: { readonly dir: string };
  /** The image catalog (recipes and built versions); default `images` in the working directory. */
  readonly images?: {
    readonly dir: string;
    /** Build images that hosts reference but that were never built (--build-missing). */
    readonly buildMissing?: { readonly stateDir: string; readonly authorizedKeys?: string };
    /** Versions this instance lacks come from here, verified, into a bounded cache (--image-origin). */
    readonly origin?: OriginWiring;
  };
  /** What goes into generated boot configs; default: the listen address, nothing extra. */
  readonly boot?: {
    /** bootd's address as clients reach it. */
    readonly serverAddress: string;
    readonly kernelArgs: readonly string[];
    readonly reportTftpPort?: number;
    /** What unknown machines boot (with unknownHosts: boot); absent: their disk. */
    readonly unknownImage?: ImageRef;
    /** The iPXE script name handed to iPXE clients (DHCP option 67). */
    readonly ipxeBootFile: string;
  };
  /**
   * The state directory's after-boot features: per-host timelines and smoke
   * tests, inventory, build-machine ports, the control socket and the
   * read-only `logs/`, `machines/`, `uploads/` views on the main port.
   * Absent: none of them (plain TFTP use).
   */
  readonly state?: StateWiring;
  /** Absent: no DHCP at all (TFTP-only use). */
  readonly dhcp?: DhcpWiring;
  /** The admin listener: /metrics, the dashboard and its API. Absent: none. */
  readonly admin?: AdminWiring;
  /**
   * A database shared with other instances (--state-url): this instance's
   * row in it, with its host-set digest. Absent: bootd alone on its files.
   */
  readonly fleet?: { readonly url: string; readonly instance: string; readonly segment: string | null; readonly serverIp: string | null };
}

/** What the fleet view reads when there is no hosts directory (one object: its row cache keys on it). */
const NO_HOSTS = { current: HostSet.empty } as const;

/** bootd's version, as `bootd --version` and the metrics (bootd_build_info) say it. */
export const BOOTD_VERSION = '0.1.0';

export interface AppDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly udp: UdpSocketFactory;
  readonly mtu: MtuLookup;
}

export interface App {
  readonly tftp: TftpServer;
  readonly dhcp: DhcpServer | null;
  readonly http: HttpFileServer | null;
  readonly uploads: TftpServer | null;
  /** Extra generated files served over TFTP (tests and future modules register here). */
  readonly virtualFiles: VirtualFileTable;
  readonly hosts: HostDirectory | null;
  readonly catalog: ImageCatalog;
  readonly afterBoot: AfterBoot | null;
  readonly machines: MachinePorts | null;
  readonly admin: AdminServer | null;
  /** The instances sharing this one's database (--state-url); null without one. */
  readonly instances: InstanceRegistry | null;
  /** Everything that happens, for subscribers (src/events/types.ts). */
  readonly events: EventBus;
  /** Every server's counters and gauges, live. */
  readonly stats: StatsRegistry;
  /** Resolves when every server has stopped. */
  readonly stopped: Promise<void>;
  /** Why bootd stopped by itself (a listener failed while running); null while running or when stopped by the signal. */
  failure(): Error | null;
}

/** The parts started so far, for stopping them in order (servers first, then what records their events). */
interface Started {
  tftp: TftpServer | null;
  uploads: TftpServer | null;
  http: HttpFileServer | null;
  dhcp: DhcpServer | null;
  stopDhcpStore: () => Promise<void>;
  stopState: () => Promise<void>;
  stopAdmin: () => Promise<void>;
  stopFleet: () => Promise<void>;
  stopOrigin: () => Promise<void>;
}

export async function startApp(cfg: AppConfig, deps: AppDeps, signal: AbortSignal): Promise<App> {
  const log = deps.log;
  const bus = new EventBus({ wallNow: () => deps.clock.wallNow(), onFailure: busFailureLog(log, deps.clock) });
  const stats = new StatsRegistry();
  stats.register('process', processStats, ['rssBytes', 'heapUsedBytes', 'maxRssBytes', 'uptimeSeconds']);
  stats.register('events', () => bus.totals(), ['queued']);
  const catalog = new ImageCatalog(cfg.images?.dir ?? 'images');
  const parts: Started = { tftp: null, uploads: null, http: null, dhcp: null, stopDhcpStore: async () => {}, stopState: async () => {}, stopAdmin: async () => {}, stopFleet: async () => {}, stopOrigin: async () => {} };
  const stopAll = async (): Promise<void> => {
    await parts.stopAdmin();
    parts.dhcp?.close();
    await Promise.all([parts.tftp?.close(), parts.uploads?.close(), parts.http?.close()]);
    await parts.stopDhcpStore();
    await parts.stopState();
    await parts.stopFleet();
    await parts.stopOrigin();
  };
  // a listener that fails while running stops everything (decided in docs/architecture.md: a boot
  // server with one protocol gone boots nothing right; a supervisor restarts the whole process)
  let failure: Error | null = null;
  const halt = new AbortController();
  const onFatal = (server: string) => (err: Error): void => {
    if (failure !== null || signal.aborted) return;
    failure = new Error(`${server} failed while running: ${err.message}`, { cause: err });
    log.error({ svc: server, err: err.message }, `${server} listener failed while running; stopping bootd`);
    bus.publish({ type: 'server', server, state: 'failed', error: err.message });
    halt.abort();
  };
  try {
    const hostsHalf = await openHosts(cfg, log, deps.clock, catalog, bus, signal);
    const hosts = hostsHalf.dir;
    const virtualFiles = new VirtualFileTable();
    const origin = cfg.images?.origin ? startOrigin(cfg.images.origin, { log, clock: deps.clock, events: bus, stats }, catalog, hosts, unknownImageOf(cfg)) : null;
    if (origin) {
      parts.stopOrigin = origin.stop;
      hostsHalf.onChanged(origin.sync);
    }
    const root = await openRoot(cfg, hosts, origin?.resolver ?? catalog, virtualFiles, bus);
    let leases: LeaseTable | null = null;
    let dhcpUsage: (() => readonly SubnetUsage[]) | null = null;
    const locator = new HostLocator({ hosts: () => hosts?.current, macAt: (ip) => leases?.macOf(ip, deps.clock.wallNow()) });
    const cache = new FileCache(cfg.tftp.cacheBytes);
    stats.register('cache', () => cache.stats(), ['bytes', 'entries']);
    const fileDeps = { log, clock: deps.clock, udp: deps.udp, mtu: deps.mtu, events: bus, onFatal };
    // each server, once listening: its counters in the registry, and a `server started` event
    const listening = <T>(name: string, counters: () => { readonly [K in keyof T]: number }, gauges: readonly (keyof T & string)[], listen: string): void => {
      stats.register(name, counters, gauges);
      bus.publish({ type: 'server', server: name, state: 'started', listen });
    };
    const at = (a: { address: string; port: number }): string => `${a.address}:${a.port}`;
    const tftp = await startTftp(cfg.tftp, fileDeps, root, cache, locator);
    parts.tftp = tftp;
    listening('tftp', () => tftp.counters, ['active'], at(tftp.address));
    if (cfg.uploads) {
      const uploads = await startUploads(cfg.uploads, cfg.tftp, fileDeps, locator, () => hosts?.current);
      parts.uploads = uploads;
      listening('uploads', () => uploads.counters, ['active'], at(uploads.address));
    }
    if (cfg.http) {
      const http = await startHttp(cfg.http, fileDeps, root, cache);
      parts.http = http;
      listening('http', () => http.counters, ['active'], at(http.address));
    }
    let leading = false;
    const instances = cfg.fleet ? await startFleet(cfg.fleet, { log, clock: deps.clock, stats, version: BOOTD_VERSION }, hosts, () => leading) : null;
    if (instances) {
      parts.stopFleet = () => instances.close();
      hostsHalf.onChanged(() => void instances.changed());
    }
    if (cfg.dhcp) {
      const dhcpWiring: DhcpWiring = instances ? { ...cfg.dhcp, peerAddresses: () => peerAddresses(instances, cfg.fleet?.instance, cfg.dhcp?.segment) } : cfg.dhcp;
      const onLeading = (on: boolean): void => {
        leading = on;
        void instances?.changed();
      };
      const d = await startDhcp(dhcpWiring, { log, clock: deps.clock, udp: deps.udp, events: bus, onFatal: onFatal('dhcp') }, hosts, onLeading);
      parts.dhcp = d.server;
      parts.stopDhcpStore = d.stop;
      leases = d.leases;
      dhcpUsage = d.usage;
      hostsHalf.onChanged(d.onHostsChanged);
      stats.register('leases', () => ({ active: d.leases.size }), ['active']);
      listening('dhcp', () => d.server.counters, [], cfg.dhcp.interface);
    }
    const st = cfg.state
      ? await startState(cfg.state, { log, clock: deps.clock, udp: deps.udp, mtu: deps.mtu, bus, stats }, {
          hosts,
          hostsDir: cfg.hosts?.dir,
          catalog,
          locator,
          lease: (mac) => leases?.latestForMac(mac)?.ip,
          unknownImage: unknownImageOf(cfg)?.name,
          tftp: cfg.tftp,
        })
      : null;
    if (st) {
      parts.stopState = st.stop;
      hostsHalf.onChanged(st.onHostsChanged);
    }
    let admin: AdminServer | null = null;
    if (cfg.admin) {
      const dhcp = parts.dhcp;
      const usage = dhcpUsage;
      const a = await startAdmin(cfg.admin, { log, clock: deps.clock, bus, stats, version: BOOTD_VERSION }, {
        hosts: () => (hosts ?? NO_HOSTS).current.hosts,
        isKnown: (mac) => cfg.dhcp?.reservations.has(mac) === true || hosts?.current.byMac(mac) !== undefined,
        leaseOf: (mac) => leases?.latestForMac(mac)?.ip,
        currentVersion: (image) => catalog.current(image),
        records: st?.records ?? null,
        stateDir: cfg.state?.dir ?? null,
        uploadsDir: cfg.uploads?.dir ?? null,
        images: catalog,
        smoke: st ? { knows: (name) => st.after.knows(name), run: (name) => st.after.smoke(name) } : null,
        machines: st?.routes ?? null,
        dhcp: dhcp && usage ? { latency: dhcp.replyLatency, usage } : null,
        instances: instances && cfg.fleet ? instancesView(instances, cfg.fleet.instance) : null,
      });
      if (a) {
        parts.stopAdmin = a.stop;
        admin = a.server;
        bus.publish({ type: 'server', server: 'admin', state: 'started', listen: at(admin.address) });
        log.info({ svc: 'admin', url: admin.url, token: admin.tokenRequired }, 'admin listening');
      }
    }
    const stopped = stopOn(AbortSignal.any([signal, halt.signal]), async () => {
      log.info({ active: tftp.counters.active }, 'stopping');
      await stopAll();
      for (const server of ['dhcp', 'tftp', 'uploads', 'http'] as const) if (parts[server]) bus.publish({ type: 'server', server, state: 'stopped' });
      // peak resident memory and every counter, for boot-storm measurements (docs/performance.md)
      log.info({ stats: stats.snapshot(), maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }, 'stopped');
    });
    return { tftp, dhcp: parts.dhcp, http: parts.http, uploads: parts.uploads, virtualFiles, hosts, catalog, afterBoot: st?.after ?? null, machines: st?.machines ?? null, admin, instances, events: bus, stats, stopped, failure: () => failure };
  } catch (err) {
    // the first fatal error at start-up stops what had started
    await stopAll().catch(() => {});
    throw err;
  }
}

/** Runs `stop` once `signal` aborts (at once if it has); resolves when it is done. */
function stopOn(signal: AbortSignal, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const run = (): void => void stop().then(resolve, resolve);
    if (signal.aborted) run();
    else signal.addEventListener('abort', run, { once: true });
  });
}

function unknownImageOf(cfg: AppConfig): ImageRef | undefined {
  return cfg.dhcp?.server.unknownHosts === 'boot' ? cfg.boot?.unknownImage : undefined;
}

const ISSUES_LOGGED = 100;
const NAMES_LOGGED = 20;

/** `added: [first 20 names]`, and `addedCount` when there are more (the first load of 100,000 hosts is one short line). */
function namesOf(key: string, names: readonly string[]): Record<string, unknown> {
  return names.length > NAMES_LOGGED ? { [key]: names.slice(0, NAMES_LOGGED), [`${key}Count`]: names.length } : { [key]: names };
}

/** hosts/*.yaml, watched; reloads are logged, published, and handed to whoever registered (DHCP reservations, machine ports, image builds). */
async function openHosts(cfg: AppConfig, log: Logger, clock: Clock, catalog: ImageCatalog, bus: EventBus, signal: AbortSignal): Promise<{ dir: HostDirectory | null; onChanged: (fn: () => void) => void }> {
  const listeners: (() => void)[] = [];
  if (!cfg.hosts) return { dir: null, onChanged: () => {} };
  const bm = cfg.images?.buildMissing;
  const autoBuild = bm ? new MissingImageBuilder(catalog, { stateDir: bm.stateDir, ...(bm.authorizedKeys ? { authorizedKeys: bm.authorizedKeys } : {}) }, log, undefined, bus) : null;
  const unknownImage = cfg.boot?.unknownImage;
  let failure = '';
  const dir = new HostDirectory(cfg.hosts.dir, {
    clock,
    // with an image origin, an image this catalog lacks is fetched when a host needs it: not an error in the host file
    ...(cfg.images?.origin ? {} : { images: catalog }),
    onReload: (a, changed) => {
      autoBuild?.request([...a.set.hosts.filter((h) => h.netboot).map((h) => h.image.name), ...(unknownImage ? [unknownImage.name] : [])]);
      // a fleet's worth of broken files is a few lines, not 100,000 (bootd hosts check lists them all)
      for (const i of a.issues.slice(0, ISSUES_LOGGED)) log.warn({ svc: 'hosts', file: i.file, line: i.line, col: i.col, key: i.path }, formatIssue(i));
      if (a.issues.length > ISSUES_LOGGED) log.warn({ svc: 'hosts', more: a.issues.length - ISSUES_LOGGED }, `and ${a.issues.length - ISSUES_LOGGED} more issues in hosts files (bootd hosts check lists them all)`);
      const stale = a.files.filter((f) => f.stale).map((f) => f.file);
      log.info(
        { svc: 'hosts', hosts: a.set.size, errors: a.issues.length, stale: stale.slice(0, NAMES_LOGGED), ms: changed.ms, ...namesOf('added', changed.added), ...namesOf('removed', changed.removed), ...namesOf('updated', changed.updated) },
        'hosts loaded',
      );
      bus.publish({ type: 'hosts.reload', ok: a.issues.length === 0, hosts: a.set.size, issues: a.issues.slice(0, ISSUES_LOGGED).map(formatIssue), filesInError: new Set(a.issues.map((i) => i.file)).size });
      for (const fn of listeners) fn();
      failure = '';
    },
    onReloadFailed: (err, serving) => {
      // once per streak of the same failure: the folder is retried every few seconds
      if (err.message === failure) return;
      failure = err.message;
      log.error({ svc: 'hosts', dir: cfg.hosts?.dir, err: err.message, serving }, 'hosts folder cannot be read; the last good hosts keep serving, retrying');
      bus.publish({ type: 'hosts.reload', ok: false, hosts: serving, issues: [], filesInError: 0, error: err.message });
    },
  });
  await dir.reload();
  dir.watch(signal);
  return { dir, onChanged: (fn) => listeners.push(fn) };
}

/** The file tree: generated boot configs, the state directory's read-only views, then the TFTP root. */
async function openRoot(cfg: AppConfig, hosts: HostDirectory | null, catalog: BootFilesDeps['images'], virtualFiles: VirtualFileTable, bus: EventBus): Promise<FileRoot> {
  const boot = cfg.boot ?? { serverAddress: cfg.tftp.listen, kernelArgs: [], ipxeBootFile: 'boot.ipxe' };
  const unknownImage = unknownImageOf(cfg);
  const bootPolicy = {
    serverIp: boot.serverAddress,
    kernelArgs: boot.kernelArgs,
    ...(boot.reportTftpPort !== undefined ? { reportTftpPort: boot.reportTftpPort } : {}),
    ...(unknownImage !== undefined ? { unknownImage } : {}),
    imageBase: cfg.http ? `http://${boot.serverAddress}:${cfg.http.port}` : `tftp://${boot.serverAddress}${cfg.tftp.port === 69 ? '' : `:${cfg.tftp.port}`}`,
  };
  const bootFiles = new BootFiles({
    hosts: () => hosts?.current ?? HostSet.empty,
    images: catalog,
    templates: BootTemplates.load(),
    policy: () => bootPolicy,
    ipxeBootFile: boot.ipxeBootFile,
    hasRootFile: (rel) => fs.stat(path.join(cfg.tftp.root, rel)).then((st) => st.isFile(), () => false),
    ...(cfg.http ? { httpBase: `http://${boot.serverAddress}:${cfg.http.port}` } : {}),
    onWait: (host, mac, reason) => bus.publish({ type: 'host.wait', host, mac: mac ?? null, reason }),
    efiDisks: new EfiDisks({ root: cfg.tftp.root, serverIp: () => boot.serverAddress }),
  });
  const st = cfg.state?.dir;
  const mounts = st === undefined ? [] : [new MountedDirs(new Map([['logs', path.join(st, 'logs')], ['machines', path.join(st, 'machines')], ...(cfg.uploads ? [['uploads', cfg.uploads.dir] as [string, string]] : [])]))];
  return FileRoot.open(cfg.tftp.root, [virtualFiles, bootFiles, ...mounts]);
}

/** A subscriber that throws: one line per subscriber and kind of failure per minute, with a count. */
function busFailureLog(log: Logger, clock: Clock): (subscriber: string, err: unknown) => void {
  const limiter = new RepeatLimiter(log, clock);
  return (subscriber, err) => limiter.warn(`subscriber-${subscriber}`, { svc: 'events', subscriber, err: String(err) }, 'event subscriber failed');
}
