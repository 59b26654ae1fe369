/**
 * The dashboard's read model of the fleet: one row per host (from hosts/*.yaml
 * and from the host records), kept in memory and refreshed per host when an
 * event says that host changed, so a page of 10,000 hosts is filtered and
 * sliced without touching the store. Machines that asked to boot but are in
 * no hosts file are kept apart as pending (bounded, newest kept).
 */
import type { HostRecordReader } from '../afterboot/host-records.js';
import type { InventoryEntry } from '../afterboot/inventory.js';
import type { BootRecord, HostRecord } from '../afterboot/record.js';
import type { BootEvent, Stamp } from '../events/types.js';

/** A host as hosts/*.yaml names it (what the fleet view needs of src/hosts/types.ts Host). */
export interface ConfiguredHost {
  readonly name: string;
  readonly file: string;
  readonly macs: readonly string[];
  readonly ip?: string | undefined;
  readonly image: { readonly name: string; readonly version?: string | undefined };
  readonly netboot: boolean;
}

export interface FleetDeps {
  readonly records: HostRecordReader;
  /** The hosts of hosts/*.yaml now. */
  readonly hosts: () => readonly ConfiguredHost[];
  /** Is this MAC a host bootd knows (hosts/*.yaml or --reserve)? */
  readonly isKnown: (mac: string) => boolean;
  /** The address a MAC holds a lease on now. */
  readonly leaseOf: (mac: string) => string | undefined;
  /** The version an image serves now (its `current`), for hosts that name none and have not booted it yet. */
  readonly currentVersion?: (image: string) => string | null;
  readonly wallNow: () => number;
  /** A boot still under way with nothing heard for this long is stale (default 15 minutes). */
  readonly staleAfterMs?: number;
  /** Most pending machines kept (default 1,000; the oldest seen go first). */
  readonly maxPending?: number;
}

/** What the fleet page shows of a host's state. */
export type HostStatus = 'never' | 'booting' | 'up' | 'smoke-passed' | 'smoke-failed' | 'stale';

export interface Hardware {
  readonly cpu: string | null;
  readonly threads: number | null;
  readonly memoryMiB: number | null;
  readonly disks: number;
  readonly diskBytes: number;
  readonly gpus: readonly string[];
}

export interface FleetRow {
  readonly name: string;
  readonly mac: string | null;
  readonly ip: string | null;
  /** name@version as the last boot ran it, else as hosts/*.yaml names it. */
  readonly image: string | null;
  readonly status: HostStatus;
  /** The last boot's phase (dhcp, loading, kernel, os-dhcp, up, smoke-*), null if it never booted. */
  readonly phase: string | null;
  readonly bootStartedAt: string | null;
  /** From the boot's start to its last step. */
  readonly bootDurationMs: number | null;
  readonly updatedAt: string | null;
  readonly boots: number;
  readonly smoke: { readonly ok: boolean; readonly passed: number; readonly failed: number } | null;
  readonly hardware: Hardware | null;
  /** In hosts/*.yaml (false: a record only, e.g. an unknown machine booted with --unknown-hosts boot). */
  readonly configured: boolean;
  readonly file: string | null;
}

export interface PendingMachine {
  readonly mac: string;
  readonly arch: number | null;
  readonly vendorClass: string | null;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly requests: number;
  /** A hosts file to copy, `hosts/<name>.yaml`. */
  readonly snippet: string;
  readonly suggestedName: string;
}

export interface FleetQuery {
  /** Matches name, MAC, IP, image, CPU or GPU (case-insensitive substring). */
  readonly q?: string;
  readonly status?: HostStatus;
  readonly offset?: number;
  readonly limit?: number;
}

export interface FleetPage {
  readonly items: readonly FleetRow[];
  readonly total: number;
  readonly offset: number;
  /** Hosts per status over the whole filtered set (before paging): for grouping. */
  readonly byStatus: Readonly<Record<string, number>>;
  readonly all: number;
}

const BOOTING = new Set(['dhcp', 'loading', 'kernel', 'os-dhcp']);
const MAX_LIMIT = 1000;

interface Recorded {
  readonly last: BootRecord | null;
  readonly boots: number;
  readonly inventory: InventoryEntry | null;
}

export class FleetView {
  private readonly recorded = new Map<string, Recorded>();
  private readonly pending = new Map<string, Pending>();
  private readonly staleAfterMs: number;
  private readonly maxPending: number;
  /** Hosts whose refresh is under way, and whether another was asked for meanwhile. */
  private readonly refreshing = new Map<string, Promise<void>>();

  constructor(private readonly d: FleetDeps) {
    this.staleAfterMs = d.staleAfterMs ?? 15 * 60_000;
    this.maxPending = d.maxPending ?? 1000;
  }

  /** Reads every host record once (at start); later changes come through onEvent. */
  async load(): Promise<void> {
    for (let offset = 0; ; ) {
      const page = await this.d.records.list({ offset, limit: 1000 });
      for (const s of page.items) this.recorded.set(s.name, { last: s.last, boots: s.boots, inventory: s.inventory });
      offset += page.items.length;
      if (page.items.length === 0 || offset >= page.total) break;
    }
  }

  /** A bus subscriber: host changes re-read that host; DISCOVERs from unknown MACs are pending machines. */
  onEvent(e: BootEvent, stamp?: Stamp): Promise<void> | void {
    switch (e.type) {
      case 'host.phase':
      case 'host.remote':
      case 'smoke.finished':
      case 'inventory.stored':
      case 'inventory.rejected':
        return this.refresh(e.host, stamp?.at ?? this.d.wallNow());
      case 'dhcp':
        // a boot ROM or iPXE asking to boot: its DISCOVER (an OS renewing its lease is not asking to boot;
        // one look per exchange, not three)
        if (e.message === 'discover' && (e.pxe || e.userClassIpxe)) this.sawMac(e.mac, e.arch, e.vendorClass);
        return;
      default:
        return;
    }
  }

  /**
   * Watchers get a host's new row once it has been re-read (`at`: when the
   * event that changed it was published), and each new pending machine.
   */
  watch(onRow: (row: FleetRow, at: number) => void, onPending: (mac: string) => void): () => void {
    const w = { onRow, onPending };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  private readonly watchers = new Set<{ onRow: (row: FleetRow, at: number) => void; onPending: (mac: string) => void }>();

  /** Re-reads one host's record and inventory (one read at a time per host). */
  refresh(name: string, at = this.d.wallNow()): Promise<void> {
    const prev = this.refreshing.get(name) ?? Promise.resolve();
    const next = prev.then(async () => {
      const [rec, inv] = await Promise.all([this.d.records.get(name), this.d.records.inventory(name)]);
      this.setRecord(name, rec, inv);
      if (this.watchers.size === 0) return;
      const row = this.rowOf(name);
      if (row) for (const w of this.watchers) w.onRow(row, at);
    });
    const tail = next.catch(() => {});
    this.refreshing.set(name, tail);
    void tail.then(() => {
      if (this.refreshing.get(name) === tail) this.refreshing.delete(name);
    });
    return next;
  }

  private setRecord(name: string, rec: HostRecord | undefined, inv: InventoryEntry | undefined): void {
    if (!rec) return;
    this.cache = null;
    this.recorded.set(name, { last: rec.boots[rec.boots.length - 1] ?? null, boots: rec.boots.length, inventory: inv ?? null });
  }

  private sawMac(mac: string, arch: number | null, vendorClass: string | null): void {
    if (this.d.isKnown(mac)) {
      this.pending.delete(mac);
      return;
    }
    const now = this.d.wallNow();
    const p = this.pending.get(mac);
    if (p) {
      this.pending.delete(mac); // re-inserted: the map's order is last-seen order
      this.pending.set(mac, { ...p, lastSeen: now, requests: p.requests + 1, arch: arch ?? p.arch, vendorClass: vendorClass ?? p.vendorClass });
      return;
    }
    this.pending.set(mac, { mac, arch, vendorClass, firstSeen: now, lastSeen: now, requests: 1 });
    while (this.pending.size > this.maxPending) this.pending.delete(this.pending.keys().next().value as string);
    for (const w of this.watchers) w.onPending(mac);
  }

  /** These MACs as pending machines (those still pending), in the order given. */
  pendingOf(macs: readonly string[]): PendingMachine[] {
    return macs.flatMap((m) => {
      const p = this.pending.get(m);
      return p && !this.d.isKnown(m) ? [pendingView(p)] : [];
    });
  }

  /** One host's row now (configured or recorded), undefined if neither. */
  rowOf(name: string): FleetRow | undefined {
    const h = this.d.hosts().find((x) => x.name === name);
    const r = this.recorded.get(name);
    return h || r ? this.row(name, h, r) : undefined;
  }

  /** Machines that asked to boot and are in no hosts file, newest first. */
  pendingMachines(): PendingMachine[] {
    const out: PendingMachine[] = [];
    for (const p of this.pending.values()) {
      if (this.d.isKnown(p.mac)) continue; // added to hosts/ since
      out.push(pendingView(p));
    }
    return out.reverse();
  }

  /**
   * Every host's row, by name. Built once and kept until a host changes, the
   * hosts files change or a second passes (a boot turns stale with time):
   * 10,000 rows cost ~40 ms to build, and pages, searches and scrapes come
   * more often than that.
   */
  rows(): readonly FleetRow[] {
    const configured = this.d.hosts();
    const now = this.d.wallNow();
    const c = this.cache;
    if (c && c.hosts === configured && now - c.builtAt < 1000 && now >= c.builtAt) return c.rows;
    const rows = this.buildRows(configured);
    this.cache = { rows, hosts: configured, builtAt: now };
    return rows;
  }

  private cache: { rows: readonly FleetRow[]; hosts: readonly ConfiguredHost[]; builtAt: number } | null = null;

  private buildRows(configured: readonly ConfiguredHost[]): FleetRow[] {
    const names = new Set<string>();
    const out: FleetRow[] = [];
    for (const h of configured) {
      names.add(h.name);
      out.push(this.row(h.name, h, this.recorded.get(h.name)));
    }
    for (const [name, r] of this.recorded) if (!names.has(name)) out.push(this.row(name, undefined, r));
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  query(q: FleetQuery = {}): FleetPage {
    const all = this.rows();
    const needle = q.q?.trim().toLowerCase() ?? '';
    const matched = needle === '' ? all : all.filter((r) => haystack(r).includes(needle));
    const byStatus: Record<string, number> = {};
    for (const r of matched) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    const filtered = q.status ? matched.filter((r) => r.status === q.status) : matched;
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.min(MAX_LIMIT, Math.max(1, Math.floor(q.limit ?? 100)));
    return { items: filtered.slice(offset, offset + limit), total: filtered.length, offset, byStatus, all: all.length };
  }

  /** Hosts per phase of their last boot (never-booted hosts under "none"), for the metrics. */
  hostsByPhase(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.rows()) {
      const k = r.phase ?? 'none';
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  private row(name: string, h: ConfiguredHost | undefined, r: Recorded | undefined): FleetRow {
    const last = r?.last ?? null;
    const mac = last?.mac ?? h?.macs[0] ?? null;
    const ip = last?.ip ?? h?.ip ?? (mac ? this.d.leaseOf(mac) : undefined) ?? null;
    const image = last?.image ?? (h ? `${h.image.name}${versionSuffix(h.image.version ?? this.d.currentVersion?.(h.image.name) ?? null)}` : null);
    const started = last ? Date.parse(last.startedAt) : NaN;
    const updated = last ? Date.parse(last.updatedAt) : NaN;
    const inv = r?.inventory?.summary;
    return {
      name,
      mac,
      ip,
      image,
      status: this.statusOf(last, updated),
      phase: last?.phase ?? null,
      bootStartedAt: last?.startedAt ?? null,
      bootDurationMs: Number.isFinite(started) && Number.isFinite(updated) ? updated - started : null,
      updatedAt: last?.updatedAt ?? null,
      boots: r?.boots ?? 0,
      smoke: last?.smoke ? { ok: last.smoke.ok, passed: last.smoke.passed, failed: last.smoke.failed.length } : null,
      hardware: inv
        ? {
            cpu: inv.cpu.model,
            threads: inv.cpu.threads,
            memoryMiB: inv.memoryMiB,
            disks: inv.disks.length,
            diskBytes: inv.disks.reduce((n, d) => n + (d.sizeBytes ?? 0), 0),
            gpus: inv.gpus,
          }
        : null,
      configured: h !== undefined,
      file: h?.file ?? null,
    };
  }

  private statusOf(last: BootRecord | null, updatedMs: number): HostStatus {
    if (!last) return 'never';
    if (BOOTING.has(last.phase)) return this.d.wallNow() - updatedMs > this.staleAfterMs ? 'stale' : 'booting';
    return last.phase as HostStatus;
  }
}

interface Pending {
  readonly mac: string;
  readonly arch: number | null;
  readonly vendorClass: string | null;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly requests: number;
}

function pendingView(p: Pending): PendingMachine {
  const name = `host-${p.mac.replaceAll(':', '')}`;
  return {
    mac: p.mac,
    arch: p.arch,
    vendorClass: p.vendorClass,
    firstSeen: new Date(p.firstSeen).toISOString(),
    lastSeen: new Date(p.lastSeen).toISOString(),
    requests: p.requests,
    suggestedName: name,
    snippet: `# hosts/${name}.yaml\nmac: ${p.mac}\nimage: bee\n`,
  };
}

function versionSuffix(v: string | null): string {
  return v === null ? '' : `@${v}`;
}

function haystack(r: FleetRow): string {
  return [r.name, r.mac, r.ip, r.image, r.hardware?.cpu, ...(r.hardware?.gpus ?? [])].filter((x) => x).join(' ').toLowerCase();
}
