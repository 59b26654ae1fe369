/**
 * The dashboard's JSON API and its live stream, over the parts bootd
 * already has: the fleet view, the host records, the image catalog, the
 * build machines' control routes, the event bus. Actions are recorded on
 * the bus (`admin.action`), in the log, and in `<state>/admin-actions.jsonl`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { HostRecordReader } from '../afterboot/host-records.js';
import type { BootEvent, BootEventType, EventSink, Stamp } from '../events/types.js';
import { HOST_NAME_RE } from '../hosts/schema.js';
import type { Logger } from '../log.js';
import type { Metric } from '../stats/registry.js';
import type { FleetRow, FleetView, HostStatus } from './fleet.js';
import { HttpError, type AdminRoutes, type ApiRoute, type RouteCall, type StreamRoute } from './server.js';

/** What the API needs of the image catalog (src/images/catalog.ts). */
export interface ImageShelf {
  list(): readonly { readonly name: string; readonly recipe: boolean; readonly current: string | null; readonly versions: readonly { readonly version: string; readonly bytes: number; readonly kernelVersion: string | null; readonly builtAt: string | null; readonly valid: boolean }[] }[];
  setCurrent(name: string, version: string): Promise<void>;
}

/** A control-socket route (src/control/socket.ts Route): the build machines' list, open and close. */
export type ControlRoute = (body: unknown, params: readonly string[]) => Promise<unknown>;

export interface EventSource {
  subscribe(name: string, fn: (e: BootEvent, stamp: Stamp) => void, types?: readonly BootEventType[]): () => void;
}

export interface AdminApiDeps {
  readonly fleet: FleetView;
  readonly records: HostRecordReader | null;
  readonly stateDir: string | null;
  readonly uploadsDir: string | null;
  readonly images: ImageShelf;
  /** Runs a host's smoke test now; null without the after-boot half. */
  readonly smoke: { knows(name: string): Promise<boolean>; run(name: string): Promise<unknown> } | null;
  /** `GET /machines`, `POST /machines/open`, `POST /machines/close` of the control socket; null without a state directory. */
  readonly machines: Readonly<Record<string, ControlRoute>> | null;
  readonly stats: () => readonly Metric[];
  readonly bus: EventSource;
  readonly publish: EventSink;
  readonly log: Logger;
  readonly metrics: () => Promise<{ readonly body: string; readonly contentType: string }>;
  /**
   * The instances sharing this one's database, with whether they serve the
   * same host set (src/state/pg/instances.ts); null when bootd runs alone.
   */
  readonly instances: (() => InstancesView) | null;
}

/** What the dashboard shows of the instances sharing a database. */
export interface InstancesView {
  readonly self: string;
  readonly instances: readonly { readonly id: string; readonly segment: string | null; readonly serverIp: string | null; readonly leading: boolean; readonly hostsCount: number | null; readonly hostsDigest: string | null; readonly seenAt: number; readonly alive: boolean }[];
  readonly agree: boolean;
  readonly groups: readonly { readonly digest: string | null; readonly hosts: number | null; readonly instances: readonly string[] }[];
}

interface Build {
  image: string;
  state: 'running' | 'finished' | 'failed';
  startedAt: number;
  endedAt: number | null;
  step: string | null;
  index: number | null;
  total: number | null;
  version: string | null;
  error: string | null;
}

const STATUSES: readonly HostStatus[] = ['never', 'booting', 'up', 'smoke-passed', 'smoke-failed', 'stale'];
const RECENT = 500;
const EVENTS_PER_BATCH = 100;
const MAX_STREAM_BACKLOG = 1 << 20;
const SMOKE_OUTPUT_MAX = 64 << 10;
const REPORT_MAX = 4 << 20;

/** An event as the dashboard gets it: the bus's stamp and the event. */
export interface StampedEvent {
  readonly seq: number;
  readonly at: number;
  readonly event: BootEvent;
}

/**
 * The newest `size` events in three parallel arrays: keeping one costs no
 * allocation (a storm publishes 20,000 a second), reading them builds the
 * few that are read.
 */
export class EventRing {
  private readonly events: (BootEvent | undefined)[];
  private readonly seqs: Float64Array;
  private readonly ats: Float64Array;
  private next = 0;
  /** Events pushed since the last take(). */
  private pushed = 0;

  constructor(private readonly size: number) {
    this.events = new Array<BootEvent | undefined>(size);
    this.seqs = new Float64Array(size);
    this.ats = new Float64Array(size);
  }

  push(e: BootEvent, stamp: Stamp): void {
    const i = this.next;
    this.events[i] = e;
    this.seqs[i] = stamp.seq;
    this.ats[i] = stamp.at;
    this.next = i + 1 === this.size ? 0 : i + 1;
    this.pushed++;
  }

  /** The newest `n` (at most the ring's size), newest first. */
  newest(n: number): StampedEvent[] {
    const out: StampedEvent[] = [];
    for (let k = 1; k <= Math.min(n, this.size); k++) {
      const i = (this.next - k + this.size) % this.size;
      const event = this.events[i];
      if (event === undefined) break;
      out.push({ seq: this.seqs[i] as number, at: this.ats[i] as number, event });
    }
    return out;
  }

  /** What came since the last take, oldest first (at most the ring's size), and how many more there were. */
  take(): { events: StampedEvent[]; skipped: number } {
    const n = this.pushed;
    this.pushed = 0;
    const events = this.newest(n).reverse();
    return { events, skipped: n - events.length };
  }
}

/** The bus's recent events and the builds it has seen: what the dashboard shows before its stream starts. */
export class AdminMemory {
  private readonly ring = new EventRing(RECENT);
  readonly builds: Build[] = [];

  /** The newest `n` events, newest first. */
  recent(n: number): StampedEvent[] {
    return this.ring.newest(n);
  }

  onEvent(e: BootEvent, stamp: Stamp): void {
    this.ring.push(e, stamp);
    if (e.type !== 'image.build') return;
    let b = this.builds.find((x) => x.image === e.image && x.state === 'running');
    if (e.state === 'started' || !b) {
      b = { image: e.image, state: 'running', startedAt: stamp.at, endedAt: null, step: null, index: null, total: null, version: null, error: null };
      this.builds.push(b);
      if (this.builds.length > 100) this.builds.shift();
    }
    if (e.state === 'step') Object.assign(b, { step: e.step ?? null, index: e.index ?? null, total: e.total ?? null });
    if (e.state === 'finished' || e.state === 'failed') Object.assign(b, { state: e.state, endedAt: stamp.at, version: e.version ?? null, error: e.error ?? null });
  }
}

export function adminRoutes(d: AdminApiDeps, memory: AdminMemory): AdminRoutes {
  const record = async (call: RouteCall, action: string, target: string, run: () => Promise<unknown>): Promise<unknown> => {
    const peer = call.peer;
    try {
      const out = await run();
      d.publish.publish({ type: 'admin.action', action, target, peer, ok: true });
      d.log.info({ svc: 'admin', action, target, peer }, 'admin action');
      await journal(d.stateDir, { at: new Date().toISOString(), action, target, peer, ok: true });
      return out;
    } catch (err) {
      const detail = (err as Error).message;
      d.publish.publish({ type: 'admin.action', action, target, peer, ok: false, detail });
      d.log.warn({ svc: 'admin', action, target, peer, err: detail }, 'admin action failed');
      await journal(d.stateDir, { at: new Date().toISOString(), action, target, peer, ok: false, detail });
      throw err;
    }
  };

  const api: Record<string, ApiRoute> = {
    'GET /api/fleet': async ({ query }) => {
      const status = query.get('status');
      if (status !== null && status !== '' && !(STATUSES as readonly string[]).includes(status)) throw new HttpError(400, `status must be one of ${STATUSES.join(', ')}`);
      return d.fleet.query({
        q: query.get('q') ?? '',
        ...(status ? { status: status as HostStatus } : {}),
        offset: int(query.get('offset'), 0),
        limit: int(query.get('limit'), 100),
      });
    },
    'GET /api/pending': async () => d.fleet.pendingMachines(),
    'GET /api/hosts/:name': async ({ params }) => hostDetail(d, hostName(params[0])),
    'GET /api/images': async () => {
      const rows = d.fleet.rows();
      return {
        images: d.images.list().map((img) => ({
          ...img,
          hosts: hostsUsing(rows, img.name, img.current),
        })),
        builds: [...memory.builds].reverse(),
      };
    },
    'GET /api/machines': async () => (d.machines ? d.machines['GET /machines']?.(null, []) : []),
    'GET /api/events': async ({ query }) => {
      return memory.recent(int(query.get('limit'), 100));
    },
    'GET /api/stats': async () => d.stats(),
    // null when bootd runs alone: the dashboard then shows no instance list
    'GET /api/instances': async () => (d.instances ? d.instances() : null),
    'POST /api/hosts/:name/smoke': async (call) => {
      const name = hostName(call.params[0]);
      if (!d.smoke) throw new HttpError(409, 'bootd runs without a state directory: no smoke tests');
      const smoke = d.smoke;
      return record(call, 'smoke', name, async () => {
        if (!(await smoke.knows(name))) throw new HttpError(404, `bootd has no record of a host ${name}`);
        // the result comes as events (smoke.started, smoke.finished) and in the host's record
        void smoke.run(name).catch((err: unknown) => d.log.warn({ svc: 'admin', host: name, err: String(err) }, 'smoke test from the dashboard failed'));
        return { started: name };
      });
    },
    'POST /api/images/:name/current': async (call) => {
      const name = call.params[0] as string;
      const version = (call.body as { version?: unknown } | null)?.version;
      if (typeof version !== 'string' || version === '') throw new HttpError(400, 'give {"version": "..."}');
      return record(call, 'image.current', `${name}@${version}`, async () => {
        const img = d.images.list().find((i) => i.name === name);
        if (!img) throw new HttpError(404, `no image ${name}`);
        const previous = img.current;
        try {
          await d.images.setCurrent(name, version);
        } catch (err) {
          throw new HttpError(409, (err as Error).message);
        }
        return { image: name, current: version, previous };
      });
    },
    'POST /api/machines/open': async (call) => {
      const m = d.machines?.['POST /machines/open'];
      if (!m) throw new HttpError(409, 'bootd runs without a state directory: no build machines');
      const name = String((call.body as { name?: unknown } | null)?.name ?? '');
      return record(call, 'machine.open', name, () => m(call.body, []));
    },
    'POST /api/machines/:name/close': async (call) => {
      const m = d.machines?.['POST /machines/close'];
      if (!m) throw new HttpError(409, 'bootd runs without a state directory: no build machines');
      const name = call.params[0] as string;
      return record(call, 'machine.close', name, () => m({ name }, []));
    },
  };

  const streams: Record<string, StreamRoute> = {
    // every bus event as it happens, and every fleet row that changed (after the fleet view re-read it)
    'GET /api/live': (_call, out) => {
      let closed = false;
      const send = (kind: string, data: unknown): void => {
        if (closed) return;
        // a client that does not read falls behind alone; past 1 MiB unsent it is dropped (EventSource reconnects and re-reads)
        if (out.writableLength > MAX_STREAM_BACKLOG) {
          closed = true;
          out.end();
          return;
        }
        out.write(`event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      // bus events go out in batches (every 250 ms, the newest 100 of them and how many were left
      // out), and new pending machines likewise: a DHCP storm of 20,000 events a second is a few
      // writes a second, and keeping them costs no allocation per event
      const ring = new EventRing(EVENTS_PER_BATCH);
      const unsubscribe = d.bus.subscribe('dashboard-stream', (event, stamp) => ring.push(event, stamp));
      const pendingMacs = new Set<string>();
      const flush = setInterval(() => {
        if (pendingMacs.size > 0) {
          send('pending', d.fleet.pendingOf([...pendingMacs]));
          pendingMacs.clear();
        }
        const b = ring.take();
        if (b.events.length > 0) send('events', b);
      }, 250);
      flush.unref();
      // a host's new row goes at once: the page's latency is this one
      const unwatch = d.fleet.watch(
        (row, at) => send('host', { at, row }),
        (mac) => {
          pendingMacs.delete(mac);
          pendingMacs.add(mac);
          if (pendingMacs.size > EVENTS_PER_BATCH) pendingMacs.delete(pendingMacs.values().next().value as string);
        },
      );
      const ping = setInterval(() => !closed && out.write(': ping\n\n'), 15_000);
      ping.unref();
      return () => {
        closed = true;
        clearInterval(flush);
        clearInterval(ping);
        unsubscribe();
        unwatch();
      };
    },
  };

  return { api, streams, metrics: d.metrics };
}

function hostsUsing(rows: readonly FleetRow[], image: string, current: string | null): { readonly name: string; readonly version: string | null }[] {
  const out: { name: string; version: string | null }[] = [];
  for (const r of rows) {
    if (!r.image) continue;
    const [name, version] = r.image.split('@') as [string, string | undefined];
    if (name === image) out.push({ name: r.name, version: version ?? current });
  }
  return out;
}

async function hostDetail(d: AdminApiDeps, name: string): Promise<unknown> {
  const row = d.fleet.rowOf(name);
  const rec = d.records ? await d.records.get(name) : undefined;
  if (!row && !rec) throw new HttpError(404, `no host ${name}`);
  const inventory = d.records ? ((await d.records.inventory(name)) ?? null) : null;
  const boots = rec ? [...rec.boots].reverse().slice(0, 20) : [];
  const last = rec?.boots[rec.boots.length - 1];
  const report = inventory && d.stateDir ? await readJson(path.join(d.stateDir, inventory.file), REPORT_MAX) : null;
  const smokeOutput = last?.smoke?.outputFile && d.stateDir ? await readTail(path.join(d.stateDir, last.smoke.outputFile), SMOKE_OUTPUT_MAX) : null;
  const uploads = d.uploadsDir ? await listFiles(path.join(d.uploadsDir, name)) : [];
  return { row: row ?? null, boots, inventory, report, smokeOutput, uploads };
}

async function readJson(file: string, max: number): Promise<unknown> {
  try {
    const st = await fs.stat(file);
    if (st.size > max) return { error: `report too large to show (${st.size} bytes); it is in ${file}` };
    return JSON.parse(await fs.readFile(file, 'utf8')) as unknown;
  } catch {
    return null;
  }
}

async function readTail(file: string, max: number): Promise<string | null> {
  try {
    const fh = await fs.open(file, 'r');
    try {
      const st = await fh.stat();
      const start = Math.max(0, st.size - max);
      const buf = Buffer.alloc(st.size - start);
      await fh.read(buf, 0, buf.length, start);
      return (start > 0 ? '[...]\n' : '') + buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}

/** Files under a host's upload folder (two levels deep, at most 200). */
async function listFiles(dir: string): Promise<{ file: string; bytes: number; modifiedAt: string }[]> {
  const out: { file: string; bytes: number; modifiedAt: string }[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (out.length >= 200) return;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory() && depth < 2) await walk(r, depth + 1);
      else if (e.isFile() && !e.name.startsWith('.')) {
        const st = await fs.stat(path.join(dir, r)).catch(() => null);
        if (st) out.push({ file: r, bytes: st.size, modifiedAt: st.mtime.toISOString() });
      }
    }
  };
  await walk('', 0);
  return out.sort((a, b) => (a.modifiedAt < b.modifiedAt ? 1 : -1));
}

async function journal(stateDir: string | null, entry: object): Promise<void> {
  if (!stateDir) return;
  await fs.appendFile(path.join(stateDir, 'admin-actions.jsonl'), `${JSON.stringify(entry)}\n`, { mode: 0o600 }).catch(() => {});
}

/** A host name as hosts/*.yaml allows it (it becomes a path under the state directory). */
function hostName(v: string | undefined): string {
  if (v === undefined || !HOST_NAME_RE.test(v)) throw new HttpError(400, `${JSON.stringify(v ?? '')} is not a host name`);
  return v;
}

function int(v: string | null, dflt: number): number {
  const n = v === null || v === '' ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 ? n : dflt;
}
