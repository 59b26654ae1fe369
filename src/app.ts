/**
 * The composition root: builds every server from one configuration, starts
 * them under one AbortSignal, and stops them all when it is aborted or when
 * one of them fails. Nothing else in bootd constructs sockets or servers.
 */
import type { Clock } from './net/clock.js';
import { cachedMtu, type MtuLookup } from './net/mtu.js';
import { RoutedSocket, type BindOptions, type UdpSocketFactory } from './net/udp.js';
import type { Logger } from './log.js';
import { probeForDhcpServers } from './dhcp/probe.js';
import { DhcpServer, type DhcpServerConfig, type HostLookup } from './dhcp/server.js';
import { warmUpDhcp } from './dhcp/warmup.js';
import { LeaseTable, type PoolConfig } from './dhcp/leases.js';
import { HostSet } from './hosts/directory.js';
import { parseIpv4 } from './net/ipv4.js';
import { LeaseStore } from './state/lease-store.js';
import type { ClientLimits } from './tftp/client-limits.js';
import { arpInstaller } from './net/arp.js';
import { openFileLimit } from './net/fd-limit.js';
import { FileRoot, VirtualFileTable } from './tftp/fileroot.js';
import { TftpServer } from './tftp/server.js';
import { FileCache } from './tftp/source.js';
import { HttpFileServer, httpLimitsFor } from './http/server.js';
import type { TimingConfig } from './tftp/session.js';
import { BootFiles } from './bootconfig/files.js';
import { BootTemplates, macHyphen } from './bootconfig/render.js';
import { formatIssue } from './config/yaml-config.js';
import { HostDirectory } from './hosts/loader.js';
import type { Host, ImageRef } from './hosts/types.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { HostUploadDirs } from './uploads/host-dirs.js';
import { MissingImageBuilder } from './images/auto-build.js';
import { ImageCatalog } from './images/catalog.js';
import type { Remote } from './net/udp.js';
import { AfterBoot, type SmokePlan } from './afterboot/tracker.js';
import { runSmoke, tcpAnswers } from './afterboot/smoke.js';
import { HostStore } from './state/host-store.js';
import { ensureKeyPair } from './images/ssh-key.js';
import { HOST_DEFAULTS, HOST_NAME_RE } from './hosts/schema.js';
import { MountedDirs } from './machines/mounts.js';
import { MachineFile, plan, freePort, expired, type Machine } from './machines/registry.js';
import { MachinePorts } from './machines/ports.js';
import { usageBytes } from './uploads/host-dirs.js';
import { sweepPartials } from './uploads/file-sink.js';
import { ControlError, startControl } from './control/socket.js';

export interface AppConfig {
  readonly tftp: {
    readonly root: string;
    readonly listen: string;
    readonly port: number;
    readonly maxTransfers: number;
    /** Per client address (TFTP_DEFAULTS.perClient when absent). */
    readonly perClient?: ClientLimits;
    readonly maxBlksize: number;
    readonly maxWindowsize: number;
    readonly timing: TimingConfig;
    readonly cacheBytes: number;
  };
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
  readonly state?: {
    readonly dir: string;
    /** Run the image's smoke test when a host is up (default true). */
    readonly smoke: boolean;
    readonly machinePorts: { readonly first: number; readonly last: number };
    /** How long to wait for SSH after the OS took its lease. */
    readonly upTimeoutMs?: number;
    /** The appliance's smoke settings, for hosts whose file does not say (then HOST_DEFAULTS). */
    readonly smokeDefaults?: { readonly user?: string; readonly port?: number; readonly identityFile?: string; readonly timeoutSeconds?: number };
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
  readonly http: HttpFileServer | null;
  readonly uploads: TftpServer | null;
  /** Extra generated files served over TFTP (tests and future modules register here). */
  readonly virtualFiles: VirtualFileTable;
  readonly hosts: HostDirectory | null;
  readonly catalog: ImageCatalog;
  readonly afterBoot: AfterBoot | null;
  readonly machines: MachinePorts | null;
  /** Resolves when every server has stopped. */
  readonly stopped: Promise<void>;
}

export async function startApp(cfg: AppConfig, deps: AppDeps, signal: AbortSignal): Promise<App> {
  const log = deps.log;
  const virtualFiles = new VirtualFileTable();
  const catalog = new ImageCatalog(cfg.images?.dir ?? 'images');
  const boot = cfg.boot ?? { serverAddress: cfg.tftp.listen, kernelArgs: [], ipxeBootFile: 'boot.ipxe' };
  /** Set once DHCP runs: pushes reservations into the lease table after each reload. */
  let onHostsChanged = (): void => {};
  /** Set once build-machine ports run: opens and closes them after each reload. */
  let onBuildHostsChanged = (): void => {};
  const bm = cfg.images?.buildMissing;
  const autoBuild = bm ? new MissingImageBuilder(catalog, { stateDir: bm.stateDir, ...(bm.authorizedKeys ? { authorizedKeys: bm.authorizedKeys } : {}) }, log) : null;
  let hostsFailure = '';
  const hosts = cfg.hosts ? new HostDirectory(cfg.hosts.dir, { clock: deps.clock, images: catalog, onReload: (a, changed) => {
    autoBuild?.request([...a.set.hosts.filter((h) => h.netboot).map((h) => h.image.name), ...(cfg.boot?.unknownImage ? [cfg.boot.unknownImage.name] : [])]);
    for (const i of a.issues) log.warn({ svc: 'hosts', file: i.file, line: i.line, col: i.col, key: i.path }, formatIssue(i));
    log.info({ svc: 'hosts', hosts: a.set.size, errors: a.issues.length, stale: a.files.filter((f) => f.stale).map((f) => f.file), ...changed }, 'hosts loaded');
    onHostsChanged();
    onBuildHostsChanged();
    hostsFailure = '';
  }, onReloadFailed: (err, serving) => {
    // once per streak of the same failure: the folder is retried every few seconds
    if (err.message === hostsFailure) return;
    hostsFailure = err.message;
    log.error({ svc: 'hosts', dir: cfg.hosts?.dir, err: err.message, serving }, 'hosts folder cannot be read; the last good hosts keep serving, retrying');
  } }) : null;
  if (hosts) {
    await hosts.reload();
    hosts.watch(signal);
  }
  const templates = BootTemplates.load();
  const bootPolicy = {
    serverIp: boot.serverAddress,
    kernelArgs: boot.kernelArgs,
    ...(boot.reportTftpPort !== undefined ? { reportTftpPort: boot.reportTftpPort } : {}),
    ...(boot.unknownImage !== undefined && cfg.dhcp?.server.unknownHosts === 'boot' ? { unknownImage: boot.unknownImage } : {}),
  };
  const bootFiles = new BootFiles({
    hosts: () => hosts?.current ?? HostSet.empty,
    images: catalog,
    templates,
    policy: () => bootPolicy,
    ipxeBootFile: boot.ipxeBootFile,
    hasRootFile: (rel) => fs.stat(path.join(cfg.tftp.root, rel)).then((st) => st.isFile(), () => false),
    ...(cfg.http ? { httpBase: `http://${boot.serverAddress}:${cfg.http.port}` } : {}),
  });
  const st = cfg.state?.dir;
  const mounts = st === undefined ? [] : [new MountedDirs(new Map([['logs', path.join(st, 'logs')], ['machines', path.join(st, 'machines')], ...(cfg.uploads ? [['uploads', cfg.uploads.dir] as [string, string]] : [])]))];
  const root = await FileRoot.open(cfg.tftp.root, [virtualFiles, bootFiles, ...mounts]);
  let leasesRef: LeaseTable | null = null;
  /** The host at an address: by its reserved IP, else by the MAC its lease belongs to. */
  const hostAt = (address: string): { host?: Host; mac?: string } => {
    const set = hosts?.current;
    const reserved = set?.byIp(address);
    if (reserved) return { host: reserved };
    const ip = parseIpv4(address);
    const mac = ip === null || !leasesRef ? undefined : leasesRef.macOf(ip, deps.clock.wallNow());
    if (!mac) return {};
    const host = set?.byMac(mac);
    return host ? { host, mac } : { mac };
  };
  /** Firmware quirks of the host at `peer` (known by its reserved IP or its lease). */
  const limitsFor = (peer: Remote) => {
    const q = hostAt(peer.address).host?.quirks;
    if (!q) return undefined;
    return { ...(q.tftpMaxBlksize !== undefined ? { maxBlksize: q.tftpMaxBlksize } : {}), ...(q.tftpNoWindowsize ? { maxWindowsize: 1 } : {}) };
  };
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
    limitsFor,
    config: {
      maxTransfers: cfg.tftp.maxTransfers,
      maxBlksize: cfg.tftp.maxBlksize,
      maxWindowsize: cfg.tftp.maxWindowsize,
      timing: cfg.tftp.timing,
      transferAddress: cfg.tftp.listen,
      ...(cfg.tftp.perClient ? { perClient: cfg.tftp.perClient } : {}),
    },
  });
  const addr = tftp.address;
  log.info({ svc: 'tftp', listen: `${addr.address}:${addr.port}`, root: root.realRoot }, 'tftp listening');

  let uploads: TftpServer | null = null;
  if (cfg.uploads) {
    const u = cfg.uploads;
    await fs.mkdir(u.dir, { recursive: true });
    // partial uploads a crash left behind: never completed, never counted, gone before the port opens
    const swept = await sweepPartials(u.dir);
    if (swept > 0) log.info({ svc: 'uploads', dir: u.dir, removed: swept }, 'removed partial uploads left by a crash');
    const policy = new HostUploadDirs(u.dir, {
      // the same names bee.report= carries (render.ts): the host's name, or the MAC of an unknown machine
      whoIs: (address) => {
        const at = hostAt(address);
        return at.host?.name ?? (at.mac ? macHyphen(at.mac) : undefined);
      },
      quotaBytes: (name) => hosts?.current.byName(name)?.build?.quotaBytes ?? u.quotaBytes,
    });
    uploads = new TftpServer({
      listener: await deps.udp.bind({ address: cfg.tftp.listen, port: u.port }),
      udp: deps.udp,
      clock: deps.clock,
      root: policy,
      cache: new FileCache(0),
      mtu: cachedMtu(deps.mtu),
      log: log.child({ svc: 'uploads' }),
      writes: policy,
      config: { maxTransfers: 64, maxBlksize: cfg.tftp.maxBlksize, maxWindowsize: cfg.tftp.maxWindowsize, timing: cfg.tftp.timing, transferAddress: cfg.tftp.listen },
    });
    log.info({ svc: 'uploads', listen: `${uploads.address.address}:${uploads.address.port}`, dir: u.dir }, 'tftp uploads listening');
  }

  let http: HttpFileServer | null = null;
  if (cfg.http) {
    try {
      http = await HttpFileServer.start({ root, cache, clock: deps.clock, log: log.child({ svc: 'http' }), limits: httpLimitsFor(openFileLimit()) }, cfg.http.listen, cfg.http.port);
    } catch (err) {
      await Promise.all([tftp.close(), uploads?.close()]);
      throw new Error(`cannot listen for HTTP on ${cfg.http.listen}:${cfg.http.port}: ${(err as Error).message}`);
    }
    const ha = http.address;
    const warmStart = deps.clock.now();
    await http.warmUp();
    log.info({ svc: 'http', listen: `${ha.address}:${ha.port}`, warmUpMs: Math.round(deps.clock.now() - warmStart) }, 'http listening');
  }

  let dhcp: DhcpServer | null = null;
  if (cfg.dhcp) {
    try {
      const started = await startDhcp(cfg.dhcp, deps, hosts);
      dhcp = started.server;
      leasesRef = started.leases;
      onHostsChanged = started.onHostsChanged;
    } catch (err) {
      await Promise.all([tftp.close(), uploads?.close(), http?.close()]);
      throw err;
    }
  }

  let after: AfterBoot | null = null;
  let machines: MachinePorts | null = null;
  let stopState = async (): Promise<void> => {};
  if (cfg.state) {
    try {
      const started = await startState(cfg, cfg.state, deps, { hosts, catalog, tftp, http, uploads, dhcp, hostAt, lease: (mac) => leasesRef?.latestForMac(mac)?.ip, unknownImage: cfg.dhcp?.server.unknownHosts === 'boot' ? boot.unknownImage?.name : undefined });
      after = started.after;
      machines = started.machines;
      onBuildHostsChanged = started.onHostsChanged;
      stopState = started.stop;
    } catch (err) {
      dhcp?.close();
      await Promise.all([tftp.close(), uploads?.close(), http?.close()]);
      throw err;
    }
  }

  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      log.info({ active: tftp.counters.active }, 'stopping');
      dhcp?.close();
      void Promise.all([tftp.close(), uploads?.close(), http?.close(), stopState()]).then(() => {
        // peak resident memory, for boot-storm measurements (docs/performance.md)
        log.info({ stats: tftp.counters, dhcp: dhcp?.counters, http: http?.counters, uploads: uploads?.counters, afterBoot: after?.counters, cache: cache.stats(), maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), cpuSeconds: cpuSeconds() }, 'stopped');
        resolve();
      });
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  return { tftp, dhcp, http, uploads, virtualFiles, hosts, catalog, afterBoot: after, machines, stopped };
}

interface StateParts {
  readonly hosts: HostDirectory | null;
  readonly catalog: ImageCatalog;
  readonly tftp: TftpServer;
  readonly http: HttpFileServer | null;
  readonly uploads: TftpServer | null;
  readonly dhcp: DhcpServer | null;
  readonly hostAt: (address: string) => { host?: Host; mac?: string };
  /** The address a MAC holds a lease on now. */
  readonly lease: (mac: string) => string | undefined;
  readonly unknownImage: string | undefined;
}

/** The after-boot half: timelines, smoke tests, inventory, machine ports, control socket. */
async function startState(cfg: AppConfig, sc: NonNullable<AppConfig['state']>, deps: AppDeps, p: StateParts): Promise<{ after: AfterBoot; machines: MachinePorts; onHostsChanged: () => void; stop: () => Promise<void> }> {
  // the tracker tags its own lines svc: afterboot
  const log = deps.log;
  const dir = sc.dir;
  await fs.mkdir(dir, { recursive: true });
  const store = await HostStore.open(dir);
  // records are kept for hosts in hosts/, and for unknown machines bootd boots (unknown_hosts: boot);
  // an unknown machine that has a record stays tracked (its OS's DHCP, its uploads)
  const nameAt = (address: string): string | undefined => {
    const at = p.hostAt(address);
    if (at.host) return at.host.name;
    const name = at.mac ? macHyphen(at.mac) : undefined;
    return name !== undefined && store.data.hosts[name] ? name : undefined;
  };
  const smokePlan = async (name: string): Promise<SmokePlan> => {
    const host = p.hosts?.current.byName(name);
    const hs = host?.smoke ?? {};
    const ad = sc.smokeDefaults ?? {};
    const s = {
      user: hs.user ?? ad.user ?? HOST_DEFAULTS.smoke.user,
      port: hs.port ?? ad.port ?? HOST_DEFAULTS.smoke.port,
      timeoutSeconds: hs.timeoutSeconds ?? ad.timeoutSeconds ?? HOST_DEFAULTS.smoke.timeoutSeconds,
      identityFile: hs.identityFile ?? ad.identityFile,
      script: hs.script,
    };
    if (hs.enabled === false) return { ok: false, reason: `the smoke test is off for ${name} (smoke: enabled: false)`, port: s.port };
    let script: string | null = null;
    let from: string;
    if (s.script !== undefined) {
      from = path.resolve(cfg.hosts?.dir ?? '.', s.script);
      script = await fs.readFile(from, 'utf8').catch(() => null);
      if (script === null) return { ok: false, reason: `cannot read the smoke script ${from}`, port: s.port };
    } else {
      const image = host ? host.image : p.unknownImage !== undefined ? { name: p.unknownImage } : undefined;
      if (!image || (host !== undefined && !host.netboot)) return { ok: false, reason: `${name} netboots no image`, port: s.port };
      const got = await p.catalog.smokeScript(image);
      if (got === null) return { ok: false, reason: `image ${image.name} has no smoke test (recipe key smoke_test)`, port: s.port };
      script = got.script;
    }
    const keyFile = s.identityFile ?? (await ensureKeyPair(dir)).privateKey;
    const privateKey = await fs.readFile(keyFile).catch(() => null);
    if (privateKey === null) return { ok: false, reason: `cannot read the SSH key ${keyFile}`, port: s.port };
    return { ok: true, user: s.user, port: s.port, privateKey, script, timeoutMs: s.timeoutSeconds * 1000 };
  };
  const after = new AfterBoot({
    stateDir: dir,
    store,
    log,
    now: () => new Date(deps.clock.wallNow()),
    hostOfMac: (mac, e) => {
      const h = p.hosts?.current.byMac(mac);
      if (h) return { name: h.name, ...(h.netboot ? { image: h.image.name } : {}) };
      const name = macHyphen(mac);
      const enlisting = p.unknownImage !== undefined && (e.pxe || e.userClassIpxe);
      if (!enlisting && !store.data.hosts[name]) return undefined;
      return { name, ...(p.unknownImage !== undefined ? { image: p.unknownImage } : {}) };
    },
    nameAt,
    smokePlan,
    runSmoke,
    tcpAnswers,
    smokeAutomatically: sc.smoke,
    ...(sc.upTimeoutMs !== undefined ? { upTimeoutMs: sc.upTimeoutMs } : {}),
  });
  p.dhcp?.onEvent((e) => after.onDhcp(e));
  p.tftp.onTransfer((r) => after.onFile(r.peer.address, 'tftp', r.file, r.bytes, r.durationMs, r.outcome));
  p.http?.onTransfer((t) => {
    if (t.outcome !== 'refused' && t.method === 'GET') after.onFile(t.peer.address, 'http', t.file, t.bytes, t.durationMs, t.outcome);
  });
  const uploadDir = cfg.uploads?.dir;
  p.uploads?.onTransfer((r) => {
    if (r.direction === 'write' && uploadDir !== undefined) after.onUpload(r.peer.address, r.file, r.bytes, r.outcome, path.join(uploadDir, r.file));
  });

  // build machines: hosts with build: plus machines opened from the CLI
  const mfile = await MachineFile.open(dir);
  const machinesDir = path.join(dir, 'machines');
  const sweptMachines = await sweepPartials(machinesDir);
  if (sweptMachines > 0) log.info({ svc: 'machines', dir: machinesDir, removed: sweptMachines }, 'removed partial uploads left by a crash');
  const ownerAddress = (m: Machine): string | undefined => m.owner.ip ?? (m.owner.mac ? p.lease(m.owner.mac) : undefined);
  const ports = new MachinePorts({
    udp: deps.udp,
    clock: deps.clock,
    mtu: cachedMtu(deps.mtu),
    log: deps.log,
    listen: cfg.tftp.listen,
    dir: machinesDir,
    maxBlksize: cfg.tftp.maxBlksize,
    maxWindowsize: cfg.tftp.maxWindowsize,
    timing: cfg.tftp.timing,
    ownerAddress,
    onTransfer: (_m, r, stored) => {
      if (r.direction === 'write') after.onUpload(r.peer.address, r.file, r.bytes, r.outcome, stored);
      else after.onFile(r.peer.address, 'tftp', r.file, r.bytes, r.durationMs, r.outcome);
    },
  });
  let chain: Promise<void> = Promise.resolve();
  const reconcile = (change?: (ms: Machine[]) => Machine[]): Promise<void> => {
    const run = chain.then(async () => {
      const buildHosts = (p.hosts?.current.hosts ?? []).flatMap((h) => (h.build ? [{ name: h.name, ...(h.macs[0] !== undefined ? { mac: h.macs[0] } : {}), ...(h.ip !== undefined ? { ip: h.ip } : {}), quotaBytes: h.build.quotaBytes, overwrite: h.build.overwrite }] : []));
      const base = change ? change([...mfile.machines]) : [...mfile.machines];
      const r = plan(base, buildHosts, sc.machinePorts, new Date(deps.clock.wallNow()));
      for (const n of r.noPort) deps.log.error({ svc: 'machines', machine: n, range: `${sc.machinePorts.first}-${sc.machinePorts.last}` }, 'no free machine port');
      // ports first, then the record: `machines list` (the record) must not drop an expired
      // machine while its port still takes uploads. Nothing is acknowledged before both are done.
      await ports.apply(r.machines);
      if (JSON.stringify(r.machines) !== JSON.stringify(mfile.machines)) await mfile.set(r.machines);
    });
    chain = run.catch((err: unknown) => deps.log.error({ svc: 'machines', err: String(err) }, 'machine ports update failed'));
    return run;
  };
  await reconcile();
  const expiry = setInterval(() => {
    if (mfile.machines.some((m) => expired(m, new Date(deps.clock.wallNow())))) void reconcile();
  }, 2000);
  expiry.unref();

  const view = async (m: Machine) => ({ ...m, dir: path.join(machinesDir, m.name), usageBytes: await usageBytes(path.join(machinesDir, m.name)), ownerAddress: ownerAddress(m) ?? null, listening: ports.list().some((o) => o.name === m.name), error: ports.failed.get(m.name) ?? null });
  const control = await startControl(dir, {
    'GET /machines': async () => Promise.all(mfile.machines.map(view)),
    'POST /machines/open': async (body) => {
      const b = (body ?? {}) as { name?: unknown; ttlSeconds?: unknown; quotaBytes?: unknown; overwrite?: unknown; ip?: unknown; mac?: unknown };
      const name = String(b.name ?? '');
      if (!HOST_NAME_RE.test(name)) throw new ControlError(400, `${JSON.stringify(name)} is not a machine name (letters, digits, ".", "_", "-")`);
      const host = p.hosts?.current.byName(name);
      if (host?.build) throw new ControlError(409, `${name} is a build machine in ${host.file} (build:); its port is always open`);
      const owner = { ...(typeof b.mac === 'string' ? { mac: b.mac.toLowerCase() } : host?.macs[0] !== undefined ? { mac: host.macs[0] } : {}), ...(typeof b.ip === 'string' ? { ip: b.ip } : host?.ip !== undefined ? { ip: host.ip } : {}) };
      if (owner.mac === undefined && owner.ip === undefined) throw new ControlError(400, `${name} is not in hosts/; give its address (--address) or MAC (--mac)`);
      const now = new Date(deps.clock.wallNow());
      const ttl = typeof b.ttlSeconds === 'number' && b.ttlSeconds > 0 ? b.ttlSeconds : null;
      let port: number | null = null;
      await reconcile((ms) => {
        const prev = ms.find((m) => m.name === name);
        port = prev?.port ?? freePort(sc.machinePorts, new Set(ms.map((m) => m.port)));
        if (port === null) return ms;
        const m: Machine = {
          name,
          port,
          owner,
          quotaBytes: typeof b.quotaBytes === 'number' ? b.quotaBytes : (host?.build?.quotaBytes ?? HOST_DEFAULTS.buildQuotaBytes),
          overwrite: b.overwrite !== false,
          openedAt: prev?.openedAt ?? now.toISOString(),
          expiresAt: ttl === null ? null : new Date(now.getTime() + ttl * 1000).toISOString(),
          source: 'cli',
        };
        return [...ms.filter((x) => x.name !== name), m];
      });
      if (port === null) throw new ControlError(503, `no free port in ${sc.machinePorts.first}-${sc.machinePorts.last}`);
      const m = mfile.machines.find((x) => x.name === name);
      if (!m) throw new ControlError(500, `${name} was not opened`);
      return view(m);
    },
    'POST /machines/close': async (body) => {
      const name = String((body as { name?: unknown } | null)?.name ?? '');
      const m = mfile.machines.find((x) => x.name === name);
      if (!m) throw new ControlError(404, `no open machine ${name}`);
      if (m.source === 'hosts') throw new ControlError(409, `${name} is a build machine in hosts/ (build:); remove build: from its file to close its port`);
      await reconcile((ms) => ms.filter((x) => x.name !== name));
      return { closed: name, port: m.port };
    },
    'POST /smoke/:name': async (_b, [name]) => {
      if (name === undefined || !store.data.hosts[name]) throw new ControlError(404, `bootd has no record of a host ${name ?? ''}`);
      return after.smoke(name);
    },
  });
  deps.log.info({ svc: 'afterboot', state: dir, control: control.path, machinePorts: `${sc.machinePorts.first}-${sc.machinePorts.last}`, machines: mfile.machines.length, smoke: sc.smoke }, 'after-boot records on');
  return {
    after,
    machines: ports,
    onHostsChanged: () => void reconcile(),
    stop: async () => {
      clearInterval(expiry);
      after.close();
      // records in flight reach the disk; a smoke run in flight is not waited for beyond a moment
      await Promise.race([after.idle(), new Promise((r) => setTimeout(r, 2000).unref())]);
      await control.close();
      await chain;
      await ports.close();
      await store.close();
    },
  };
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

export async function warmUp(deps: Pick<AppDeps, 'clock' | 'udp' | 'log'>, hosts: HostLookup, config: DhcpServerConfig, pool: PoolConfig, bindLike: Omit<BindOptions, 'address' | 'port'>, tmp = os.tmpdir()): Promise<number> {
  let dir: string | null = null;
  try {
    await sweepStaleWarmUps(tmp);
    dir = await fs.mkdtemp(path.join(tmp, `${WARM_UP_PREFIX}${process.pid}-`));
    const base = dir;
    let n = 0;
    const openStore = (): Promise<LeaseStore> => LeaseStore.open(path.join(base, String(n++)), undefined, { sync: false });
    // a sibling of the real DHCP logger (same parent, level given explicitly): one shape for both
    return await warmUpDhcp({ clock: deps.clock, hosts, config }, { udp: deps.udp, openStore, pool, bindLike, log: deps.log.child({ svc: 'dhcp' }, { level: 'silent' }) });
  } catch (err) {
    deps.log.warn({ svc: 'dhcp', err: String(err) }, 'dhcp warm-up failed; serving without it (the first clients are answered more slowly)');
    return 0;
  } finally {
    if (dir) await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

async function startDhcp(c: NonNullable<AppConfig['dhcp']>, deps: AppDeps, hosts: HostDirectory | null): Promise<{ server: DhcpServer; leases: LeaseTable; onHostsChanged: () => void }> {
  // the level given explicitly, as for the warm-up's silent sibling: pino then gives both the same shape
  const log = deps.log.child({ svc: 'dhcp' }, { level: deps.log.level });
  const proxy = c.server.mode === 'proxy';
  // proxyDHCP exists to run beside another server; full mode must not
  if (!c.force && !proxy) {
    const probe = await probeForDhcpServers(deps.udp, c.interface, c.probeMs);
    if (probe.servers.length > 0) {
      throw new Error(`another DHCP server answers on ${c.interface} (${probe.servers.join(', ')}); bootd will not serve DHCP beside it. Use --dhcp-mode proxy, or --force if you are sure`);
    }
  }
  const store = await LeaseStore.open(c.stateDir);
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
  const leases = new LeaseTable(pool, store.leases());
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
  const warmStart = performance.now();
  const bindOpts = { device: c.interface, broadcast: true, reuseAddr: true, recvBufferBytes: 4 << 20 } as const;
  const warmed = proxy ? 0 : await warmUp(deps, lookup, c.server, pool, bindOpts);
  const warmMs = Math.round(performance.now() - warmStart);
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
  });
  log.info({ interface: c.interface, mode: proxy ? 'proxy' : 'full', server: c.server.serverIp, range: proxy ? null : `${c.rangeStart}-${c.rangeEnd}`, leases: leases.size, unknownHosts: c.server.unknownHosts, state: store.file, warmUp: { exchanges: warmed, ms: warmMs } }, 'dhcp listening');
  return { server, leases, onHostsChanged: () => leases.setReservations(reservationsNow()) };
}

/** CPU time the process used since it started (user, system), for the stop record. */
function cpuSeconds(): { user: number; system: number } {
  const u = process.cpuUsage();
  return { user: Math.round(u.user / 1000) / 1000, system: Math.round(u.system / 1000) / 1000 };
}
