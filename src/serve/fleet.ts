/**
 * Wiring of this instance's row in a database shared with other instances
 * (src/state/pg/instances.ts): what it serves, whether it leads its segment,
 * the digest of its host set. Only wiring.
 */
import os from 'node:os';
import type { HostDirectory } from '../hosts/loader.js';
import type { Logger } from '../log.js';
import type { Clock } from '../net/clock.js';
import type { InstancesView } from '../admin/api.js';
import { InstanceRegistry, hostSetAgreement } from '../state/pg/instances.js';
import type { StatsRegistry } from '../stats/registry.js';

export interface FleetWiring {
  readonly url: string;
  readonly instance: string;
  readonly segment: string | null;
  readonly serverIp: string | null;
  /** How often the row is refreshed (default 5 s). */
  readonly beatMs?: number;
}

export interface FleetDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly stats: StatsRegistry;
  readonly version: string;
}

export async function startFleet(c: FleetWiring, deps: FleetDeps, hosts: HostDirectory | null, leading: () => boolean): Promise<InstanceRegistry> {
  const registry = await InstanceRegistry.open(
    c.url,
    { id: c.instance, hostname: os.hostname(), segment: c.segment, serverIp: c.serverIp, version: deps.version },
    () => ({ hostsDigest: hosts ? hosts.current.digest() : null, hostsCount: hosts ? hosts.current.size : null, leading: leading() }),
    deps.clock,
    c.beatMs,
  );
  deps.stats.register('instances', () => {
    const live = registry.instances.filter((r) => r.alive);
    return { live: live.length, hostSets: new Set(live.map((r) => r.hostsDigest)).size, beats: registry.counters.beats, beatFailures: registry.counters.beatFailures };
  }, ['live', 'hostSets']);
  deps.log.info({ svc: 'fleet', instance: c.instance, segment: c.segment, instances: registry.instances.filter((r) => r.alive).map((r) => r.id) }, 'fleet: instance registered');
  return registry;
}

/** The server addresses of the other instances on a segment, alive or not (one that died may have made offers). */
export async function peerAddresses(registry: InstanceRegistry, self: string | undefined, segment: string | undefined): Promise<ReadonlySet<string>> {
  const rows = await registry.list();
  return new Set(rows.filter((r) => r.id !== self && r.segment === segment && r.serverIp !== null).map((r) => r.serverIp as string));
}

/** The dashboard's view of the instances (as of the last beat; live ones only). */
export function instancesView(registry: InstanceRegistry, self: string): () => InstancesView {
  return () => {
    const live = registry.instances.filter((r) => r.alive);
    return { self, instances: live, ...hostSetAgreement(live) };
  };
}
