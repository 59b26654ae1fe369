/**
 * Wiring of the admin listener: the fleet view and the metrics as bus
 * subscribers, the API over the stores and the catalog, the HTTP server.
 * Only wiring: the decisions are in src/admin/.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminMemory, adminRoutes, type AdminApiDeps } from '../admin/api.js';
import { FleetView, type ConfiguredHost } from '../admin/fleet.js';
import { BootdMetrics, type SubnetUsage } from '../admin/metrics.js';
import { AdminServer } from '../admin/server.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../log.js';
import type { Clock } from '../net/clock.js';
import type { Histogram } from '../stats/histogram.js';
import type { StatsRegistry } from '../stats/registry.js';
import { MemoryHostRecords } from '../state/memory.js';

/** The dashboard as `npm run build` leaves it (dist/web/), from src/serve/ or dist/serve/ alike. */
export const DEFAULT_ASSETS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/web');

export interface AdminWiring {
  readonly listen: string;
  readonly port: number;
  /** The token (read from --admin-token-file); null: none (loopback only). */
  readonly token: string | null;
  readonly assetsDir?: string;
  /** A boot with nothing heard for this long shows as stale. */
  readonly staleAfterMs?: number;
  /**
   * The listener was not asked for (the default): if its port is taken (a
   * second bootd on this host), bootd warns and runs without it instead of
   * refusing to start. One that was asked for and cannot listen stops bootd.
   */
  readonly optional?: boolean;
}

export interface AdminWiringDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly bus: EventBus;
  readonly stats: StatsRegistry;
  readonly version: string;
}

/** What the API reads (the stores, the catalog, the actions), and what the fleet view and the metrics need. */
export interface AdminParts extends Pick<AdminApiDeps, 'records' | 'stateDir' | 'uploadsDir' | 'images' | 'smoke' | 'machines' | 'instances'> {
  readonly hosts: () => readonly ConfiguredHost[];
  readonly isKnown: (mac: string) => boolean;
  readonly leaseOf: (mac: string) => string | undefined;
  readonly currentVersion: (image: string) => string | null;
  readonly dhcp: { readonly latency: Histogram; readonly usage: () => readonly SubnetUsage[] } | null;
}

export async function startAdmin(c: AdminWiring, deps: AdminWiringDeps, p: AdminParts): Promise<{ server: AdminServer; stop: () => Promise<void> } | null> {
  const { log, clock, bus, stats } = deps;
  const fleet = new FleetView({
    records: p.records ?? new MemoryHostRecords(),
    hosts: p.hosts,
    isKnown: p.isKnown,
    leaseOf: p.leaseOf,
    currentVersion: p.currentVersion,
    wallNow: () => clock.wallNow(),
    ...(c.staleAfterMs !== undefined ? { staleAfterMs: c.staleAfterMs } : {}),
  });
  await fleet.load();
  const metrics = new BootdMetrics({
    stats: () => stats.read(),
    ...(p.dhcp ? { dhcpReplyLatency: p.dhcp.latency, subnets: p.dhcp.usage } : {}),
    hostsByPhase: () => fleet.hostsByPhase(),
    version: deps.version,
  });
  const memory = new AdminMemory();
  // one subscriber for the three (one delivery per event, not three: a storm publishes 20,000 a second);
  // the fleet view's re-reads run on their own, so a slow store read holds up nothing here
  const unsubscribe = [
    bus.subscribe('admin', (e, s) => {
      memory.onEvent(e, s);
      if (e.type !== 'dhcp') metrics.onEvent(e, s);
      void fleet.onEvent(e, s)?.catch((err: unknown) => log.warn({ svc: 'admin', err: String(err) }, 'fleet view: a host could not be re-read'));
    }),
  ];
  const routes = adminRoutes(
    {
      fleet,
      records: p.records,
      instances: p.instances,
      stateDir: p.stateDir,
      uploadsDir: p.uploadsDir,
      images: p.images,
      smoke: p.smoke,
      machines: p.machines,
      stats: () => stats.read(),
      bus,
      publish: bus,
      log,
      metrics: async () => ({ body: await metrics.exposition(), contentType: metrics.contentType }),
    },
    memory,
  );
  let server: AdminServer;
  try {
    server = await AdminServer.start({ listen: c.listen, port: c.port, token: c.token, assetsDir: c.assetsDir ?? DEFAULT_ASSETS_DIR }, routes, log, clock);
  } catch (err) {
    for (const u of unsubscribe) u();
    if (c.optional === true && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      log.warn({ svc: 'admin', listen: `${c.listen}:${c.port}` }, 'admin listener not started: its default address is in use (another bootd?); give --admin-listen ADDR:PORT or off');
      return null;
    }
    throw new Error(`admin listener on ${c.listen}:${c.port}: ${(err as Error).message}`, { cause: err });
  }
  stats.register('admin', () => server.counters, ['streams']);
  return {
    server,
    stop: async () => {
      for (const u of unsubscribe) u();
      await server.close();
    },
  };
}
