/**
 * Wiring of the after-boot half: host records and timelines, smoke tests,
 * inventory, build-machine ports, the control socket. Only wiring: the
 * decisions are in src/afterboot/, src/machines/ and src/hosts/locate.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { runSmoke, tcpAnswers } from '../afterboot/smoke.js';
import { smokePlanner } from '../afterboot/smoke-plan.js';
import type { HostRecordReader, HostRecordStore } from '../afterboot/host-records.js';
import { AfterBoot } from '../afterboot/tracker.js';
import { ControlError, startControl, type Route } from '../control/socket.js';
import type { EventBus } from '../events/bus.js';
import type { HostLocator } from '../hosts/locate.js';
import type { HostDirectory } from '../hosts/loader.js';
import { HOST_DEFAULTS } from '../hosts/schema.js';
import type { ImageCatalog } from '../images/catalog.js';
import { ensureKeyPair } from '../images/ssh-key.js';
import type { Logger } from '../log.js';
import { machineRoutes } from '../machines/control-routes.js';
import { MachinePorts } from '../machines/ports.js';
import { MachineReconciler } from '../machines/reconciler.js';
import type { Machine } from '../machines/registry.js';
import type { Clock } from '../net/clock.js';
import { cachedMtu, type MtuLookup } from '../net/mtu.js';
import type { UdpSocketFactory } from '../net/udp.js';
import type { StatsRegistry } from '../stats/registry.js';
import { FileHostRecords } from '../state/host-records.js';
import { FileMachineStore } from '../state/machine-store.js';
import { PgHostRecords } from '../state/pg/host-records.js';
import { PgMachineStore } from '../state/pg/machine-store.js';
import type { TimingConfig } from '../tftp/session.js';
import { sweepPartials } from '../uploads/file-sink.js';

export interface StateWiring {
  readonly dir: string;
  /** Run the image's smoke test when a host is up (default true). */
  readonly smoke: boolean;
  readonly machinePorts: { readonly first: number; readonly last: number };
  /** How long to wait for SSH after the OS took its lease. */
  readonly upTimeoutMs?: number;
  /** The appliance's smoke settings, for hosts whose file does not say (then HOST_DEFAULTS). */
  readonly smokeDefaults?: { readonly user?: string; readonly port?: number; readonly identityFile?: string; readonly timeoutSeconds?: number };
  /**
   * Host records, inventory and build machines in a PostgreSQL database
   * shared with other instances (--state-url); this instance's name there.
   * Absent: the state directory's files.
   */
  readonly db?: { readonly url: string; readonly instance: string };
}

export interface StateWiringDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly udp: UdpSocketFactory;
  readonly mtu: MtuLookup;
  readonly bus: EventBus;
  readonly stats: StatsRegistry;
}

export interface StateParts {
  readonly hosts: HostDirectory | null;
  readonly hostsDir: string | undefined;
  readonly catalog: ImageCatalog;
  readonly locator: HostLocator;
  /** The address a MAC holds a lease on now. */
  readonly lease: (mac: string) => string | undefined;
  /** What unknown machines boot (unknown_hosts: boot); undefined: nothing. */
  readonly unknownImage: string | undefined;
  /** TFTP settings the machine ports share with the main port. */
  readonly tftp: { readonly listen: string; readonly maxBlksize: number; readonly maxWindowsize: number; readonly timing: TimingConfig };
}

export interface StateHalf {
  readonly after: AfterBoot;
  /** The host records, for readers (the dashboard). */
  readonly records: HostRecordReader;
  /** The control socket's routes (the dashboard's actions reuse them). */
  readonly routes: Readonly<Record<string, Route>>;
  readonly machines: MachinePorts;
  readonly onHostsChanged: () => void;
  readonly stop: () => Promise<void>;
}

export async function startState(sc: StateWiring, deps: StateWiringDeps, p: StateParts): Promise<StateHalf> {
  const { log, clock } = deps;
  const dir = sc.dir;
  await fs.mkdir(dir, { recursive: true });
  // records another instance changed: the tracker learns the names, the dashboard re-reads them
  let onRemote: (hosts: readonly string[], instance: string) => void = () => {};
  const store: HostRecordStore = sc.db
    ? await PgHostRecords.open(sc.db.url, { instance: sc.db.instance, clock, onRemote: (hosts, from) => onRemote(hosts, from) })
    : await FileHostRecords.open(dir, clock);
  const ad = sc.smokeDefaults ?? {};
  const smokePlan = smokePlanner({
    host: (name) => {
      const h = p.hosts?.current.byName(name);
      return h ? { smoke: h.smoke ?? {}, netboot: h.netboot, image: h.image } : undefined;
    },
    defaults: { user: ad.user ?? HOST_DEFAULTS.smoke.user, port: ad.port ?? HOST_DEFAULTS.smoke.port, timeoutSeconds: ad.timeoutSeconds ?? HOST_DEFAULTS.smoke.timeoutSeconds, identityFile: ad.identityFile },
    scriptsDir: p.hostsDir ?? '.',
    unknownImage: p.unknownImage,
    smokeScript: (image) => p.catalog.smokeScript(image),
    defaultKeyFile: async () => (await ensureKeyPair(dir)).privateKey,
  });
  const after = new AfterBoot({
    stateDir: dir,
    store,
    log,
    now: () => new Date(clock.wallNow()),
    hostOfMac: (mac, netboot) => p.locator.trackedMac(mac, netboot, p.unknownImage),
    nameAt: (address) => p.locator.trackedAt(address),
    smokePlan,
    runSmoke: (params) => runSmoke(params, clock),
    tcpAnswers: (host, port, ms) => tcpAnswers(host, port, ms, clock),
    events: deps.bus,
    sleep: (ms) => new Promise((r) => clock.setTimer(ms, r)),
    smokeAutomatically: sc.smoke,
    ...(sc.upTimeoutMs !== undefined ? { upTimeoutMs: sc.upTimeoutMs } : {}),
  });
  await after.loadKnown();
  onRemote = (hosts, instance) => {
    after.learned(hosts);
    for (const host of hosts) deps.bus.publish({ type: 'host.remote', host, instance });
  };
  const unsubscribe = deps.bus.subscribe('afterboot', (e) => after.onEvent(e), ['dhcp', 'transfer.finished', 'host.wait']);
  deps.stats.register('afterboot', () => after.counters);

  // build machines: hosts with build: plus machines opened from the CLI
  const machinesDir = path.join(dir, 'machines');
  const sweptMachines = await sweepPartials(machinesDir);
  if (sweptMachines > 0) log.info({ svc: 'machines', dir: machinesDir, removed: sweptMachines }, 'removed partial uploads left by a crash');
  const ownerAddress = (m: Machine): string | undefined => m.owner.ip ?? (m.owner.mac ? p.lease(m.owner.mac) : undefined);
  const ports = new MachinePorts({ udp: deps.udp, clock, mtu: cachedMtu(deps.mtu), log, listen: p.tftp.listen, dir: machinesDir, maxBlksize: p.tftp.maxBlksize, maxWindowsize: p.tftp.maxWindowsize, timing: p.tftp.timing, ownerAddress, events: deps.bus });
  const machineStore = sc.db ? await PgMachineStore.open(sc.db.url, sc.db.instance) : await FileMachineStore.open(dir);
  const reconciler = await MachineReconciler.start({
    store: machineStore,
    apply: (ms) => ports.apply(ms),
    buildHosts: () => (p.hosts?.current.hosts ?? []).flatMap((h) => (h.build ? [{ name: h.name, ...(h.macs[0] !== undefined ? { mac: h.macs[0] } : {}), ...(h.ip !== undefined ? { ip: h.ip } : {}), quotaBytes: h.build.quotaBytes, overwrite: h.build.overwrite }] : [])),
    range: sc.machinePorts,
    clock,
    log,
  });
  deps.stats.register('machines', () => ({ open: ports.list().length, failed: ports.failed.size }), ['open', 'failed']);

  const routes: Record<string, Route> = {
    ...machineRoutes({
      reconciler,
      dir: machinesDir,
      range: sc.machinePorts,
      clock,
      host: (name) => p.hosts?.current.byName(name),
      ownerAddress,
      listening: (name) => ports.list().some((o) => o.name === name),
      failure: (name) => ports.failed.get(name),
    }),
    'POST /smoke/:name': async (_b, [name]) => {
      if (name === undefined || !(await after.knows(name))) throw new ControlError(404, `bootd has no record of a host ${name ?? ''}`);
      return after.smoke(name);
    },
    'GET /stats': async () => ({ metrics: deps.stats.read(), events: deps.bus.stats() }),
  };
  const control = await startControl(dir, routes);
  log.info({ svc: 'afterboot', state: dir, control: control.path, machinePorts: `${sc.machinePorts.first}-${sc.machinePorts.last}`, machines: reconciler.machines.length, smoke: sc.smoke }, 'after-boot records on');
  return {
    after,
    records: store,
    routes,
    machines: ports,
    onHostsChanged: () => void reconciler.reconcile().catch(() => {}),
    stop: async () => {
      // events the servers published before they closed reach the tracker first
      await within(clock, deps.bus.drained(), 2000);
      unsubscribe();
      after.close();
      // records in flight reach the disk; a smoke run in flight is not waited for beyond a moment
      await within(clock, after.idle(), 2000);
      await control.close();
      await reconciler.close();
      await ports.close();
      await store.close();
      if (machineStore instanceof PgMachineStore) await machineStore.close();
    },
  };
}

/** Waits for `p`, but no longer than `ms`. */
async function within(clock: Clock, p: Promise<unknown>, ms: number): Promise<void> {
  let timer: { cancel(): void } | undefined;
  await Promise.race([p.catch(() => {}), new Promise<void>((r) => (timer = clock.setTimer(ms, r)))]);
  timer?.cancel();
}
