/**
 * The control-socket requests for build machines (`bootd machines list |
 * open | close`): validation of what the CLI sends and the change it asks
 * for, through the reconciler.
 */
import path from 'node:path';
import { ControlError, type Route } from '../control/socket.js';
import { HOST_DEFAULTS, HOST_NAME_RE } from '../hosts/schema.js';
import type { Clock } from '../net/clock.js';
import { usageBytes } from '../uploads/host-dirs.js';
import { freePort, type Machine } from './registry.js';
import type { MachineReconciler } from './reconciler.js';

export interface MachineRoutesDeps {
  readonly reconciler: MachineReconciler;
  /** Where each machine's uploads go (<dir>/<name>/). */
  readonly dir: string;
  readonly range: { readonly first: number; readonly last: number };
  readonly clock: Clock;
  /** A host of hosts/*.yaml by name: its MACs, address and build settings. */
  readonly host: (name: string) => { readonly file: string; readonly macs: readonly string[]; readonly ip?: string | undefined; readonly build?: { readonly quotaBytes: number } | null | undefined } | undefined;
  /** The address a machine's owner has now. */
  readonly ownerAddress: (m: Machine) => string | undefined;
  /** Is a machine's port listening, and why not. */
  readonly listening: (name: string) => boolean;
  readonly failure: (name: string) => string | undefined;
}

interface OpenBody {
  readonly name?: unknown;
  readonly ttlSeconds?: unknown;
  readonly quotaBytes?: unknown;
  readonly overwrite?: unknown;
  readonly ip?: unknown;
  readonly mac?: unknown;
}

export function machineRoutes(d: MachineRoutesDeps): Record<string, Route> {
  const { reconciler: rec, range } = d;
  const view = async (m: Machine) => ({
    ...m,
    dir: path.join(d.dir, m.name),
    usageBytes: await usageBytes(path.join(d.dir, m.name)),
    ownerAddress: d.ownerAddress(m) ?? null,
    listening: d.listening(m.name),
    error: d.failure(m.name) ?? null,
  });
  return {
    'GET /machines': async () => Promise.all(rec.machines.map(view)),
    'POST /machines/open': async (body) => {
      const b = (body ?? {}) as OpenBody;
      const name = String(b.name ?? '');
      if (!HOST_NAME_RE.test(name)) throw new ControlError(400, `${JSON.stringify(name)} is not a machine name (letters, digits, ".", "_", "-")`);
      const host = d.host(name);
      if (host?.build) throw new ControlError(409, `${name} is a build machine in ${host.file} (build:); its port is always open`);
      const owner = {
        ...(typeof b.mac === 'string' ? { mac: b.mac.toLowerCase() } : host?.macs[0] !== undefined ? { mac: host.macs[0] } : {}),
        ...(typeof b.ip === 'string' ? { ip: b.ip } : host?.ip !== undefined ? { ip: host.ip } : {}),
      };
      if (owner.mac === undefined && owner.ip === undefined) throw new ControlError(400, `${name} is not in hosts/; give its address (--address) or MAC (--mac)`);
      const now = new Date(d.clock.wallNow());
      const ttl = typeof b.ttlSeconds === 'number' && b.ttlSeconds > 0 ? b.ttlSeconds : null;
      let port: number | null = null;
      await rec.reconcile((ms) => {
        const prev = ms.find((m) => m.name === name);
        port = prev?.port ?? freePort(range, new Set(ms.map((m) => m.port)));
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
      if (port === null) throw new ControlError(503, `no free port in ${range.first}-${range.last}`);
      const m = rec.machines.find((x) => x.name === name);
      if (!m) throw new ControlError(500, `${name} was not opened`);
      return view(m);
    },
    'POST /machines/close': async (body) => {
      const name = String((body as { name?: unknown } | null)?.name ?? '');
      const m = rec.machines.find((x) => x.name === name);
      if (!m) throw new ControlError(404, `no open machine ${name}`);
      if (m.source === 'hosts') throw new ControlError(409, `${name} is a build machine in hosts/ (build:); remove build: from its file to close its port`);
      await rec.reconcile((ms) => ms.filter((x) => x.name !== name));
      return { closed: name, port: m.port };
    },
  };
}
