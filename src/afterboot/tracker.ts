/**
 * After boot: ties what the servers see (DHCP offers and acks, files served,
 * uploads) to hosts, keeps each host's boot timeline in the store and in
 * `<state>/logs/<host>/events.log`, notices when a host is up (the OS took
 * its lease and its SSH port answers), runs the image's smoke test over SSH
 * and stores the audit report as the host's inventory.
 *
 * Everything that touches the network or the clock comes in through deps,
 * so tests drive it with fakes.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { NO_EVENTS, type BootEvent, type EventSink } from '../events/types.js';
import { MAX_PAGE, type HostRecordStore } from './host-records.js';
import { MAX_REPORT_BYTES, parseAuditReport, type InventoryEntry } from './inventory.js';
import { observe, phaseAtLeast, type BootRecord, type DhcpSeen, type HostRecord, type TimelineEvent, type Observation, type SmokeResult } from './record.js';
import type { SmokeParams, SmokeRun } from './smoke.js';

/** How to smoke-test one host, or why not. */
export type SmokePlan =
  | { readonly ok: true; readonly user: string; readonly port: number; readonly privateKey: Buffer | string; readonly script: string; readonly timeoutMs: number }
  | { readonly ok: false; readonly reason: string; readonly port: number };

/** A host an event may belong to; `ifRecorded`: only when bootd already keeps a record of it (an unknown machine it booted earlier). */
export interface HostCandidate {
  readonly name: string;
  readonly image?: string;
  readonly ifRecorded?: boolean;
}

export interface AfterBootDeps {
  readonly stateDir: string;
  readonly store: HostRecordStore;
  readonly log: Logger;
  readonly now: () => Date;
  /**
   * The host a DHCP exchange belongs to (its hosts/ file name, else the MAC
   * with hyphens) and its image; undefined: not a host bootd keeps records
   * of (a plain DHCP client on a shared segment, a PXE client bootd does not boot).
   * `netboot`: the exchange came from a PXE stack or iPXE.
   */
  readonly hostOfMac: (mac: string, netboot: boolean) => HostCandidate | undefined;
  /** The host behind an address (reservation or lease), if any. */
  readonly nameAt: (address: string) => string | HostCandidate | undefined;
  /** Where phase changes, SSH, smoke runs and inventories are published; default nowhere. */
  readonly events?: EventSink;
  /** Waits between SSH probes (tests: a fake); default setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Random bytes for boot ids; default node:crypto. */
  readonly randomBytes?: (n: number) => Buffer;
  readonly smokePlan: (name: string) => Promise<SmokePlan>;
  readonly runSmoke: (p: SmokeParams) => Promise<SmokeRun>;
  readonly tcpAnswers: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
  /** Pause between SSH port probes; tests shorten it. */
  readonly probeEveryMs?: number;
  /** How long to wait for SSH after the OS took its lease. */
  readonly upTimeoutMs?: number;
  readonly smokeAutomatically?: boolean;
}

/** The report file bee uploads (bee.report=, images/bee/overlay/usr/sbin/bee-report). */
export const AUDIT_FILE = /(^|\/)bee-audit\.json$/;

/** events.log's line for a boot's start (also `bootd logs --state-url`, from the record). */
export function bootLine(boot: Pick<BootRecord, 'id' | 'mac'>, at: string): string {
  return `${at} boot ${boot.id} begins (mac ${boot.mac})\n`;
}

/** events.log's line for one timeline event. */
export function eventLine(e: Pick<TimelineEvent, 'at' | 'kind' | 'text'>): string {
  return `${e.at} ${e.kind} ${e.text}\n`;
}

/** A host's record as events.log has it: every boot it keeps, oldest first, each with its events. */
export function recordLog(rec: Pick<HostRecord, 'boots'>): string {
  let out = '';
  for (const b of rec.boots) {
    const first = b.events[0];
    out += bootLine(b, first?.at ?? b.startedAt);
    for (const e of b.events) out += eventLine(e);
  }
  return out;
}

export class AfterBoot {
  private readonly watching = new Set<string>();
  private readonly running = new Map<string, Promise<SmokeResult>>();
  /** Every record, SSH watch and smoke run in flight. */
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;
  /** Hosts whose log directory exists already. */
  private readonly made = new Set<string>();
  /**
   * Every host the store has a record of, once `loadKnown()` ran: then an
   * event with `ifRecorded` for any other name (a plain DHCP client bootd
   * does not boot) is dropped without a store query; a boot storm of them
   * costs nothing here (before, one record chain per client cost ~10 us of
   * each lease, session 14). Only this tracker creates records here and it
   * adds each name it records; a store shared by several instances tells it
   * of records made elsewhere (`learned`). Before `loadKnown()`, every
   * such event asks the store.
   */
  private known: Set<string> | null = null;
  /** Per host: the change in progress; a host's changes run one after another. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly events: EventSink;
  private readonly sleep: (ms: number) => Promise<void>;
  readonly counters = { events: 0, smokeRuns: 0, smokePassed: 0, smokeFailed: 0, reports: 0, reportsRejected: 0 };

  constructor(private readonly d: AfterBootDeps) {
    this.events = d.events ?? NO_EVENTS;
    this.sleep = d.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /**
   * The bus subscriber (src/events/): OFFERs and ACKs with an address, files
   * read over TFTP, HTTP (GET) and machine ports, uploads and machine writes.
   */
  onEvent(e: BootEvent): void {
    if (e.type === 'dhcp') {
      if ((e.message === 'offer' || e.message === 'ack') && e.ip !== null) {
        // the host first: most DHCP traffic belongs to no host with a record, and costs no more
        const h = this.d.hostOfMac(e.mac, e.pxe || e.userClassIpxe);
        if (this.skip(h)) return;
        this.observeDhcp(h, { type: e.message, mac: e.mac, ip: e.ip, vendorClass: e.vendorClass, arch: e.arch, pxe: e.pxe, userClassIpxe: e.userClassIpxe, bootFile: e.bootFile });
      }
    } else if (e.type === 'host.wait') {
      void this.track(this.record(e.host, { kind: 'wait', text: e.reason })).catch((err: unknown) => this.fail('wait', err));
    } else if (e.type === 'transfer.finished') {
      if (e.direction === 'write') {
        if (e.protocol === 'upload' || e.protocol === 'machine') this.onUpload(e.peer, e.file, e.bytes, e.outcome, e.stored);
      } else if (e.protocol === 'http') {
        if (e.outcome !== 'refused' && e.http?.method === 'GET') this.onFile(e.peer, 'http', e.file, e.bytes, e.durationMs, e.outcome);
      } else if (e.protocol === 'tftp' || e.protocol === 'machine') this.onFile(e.peer, 'tftp', e.file, e.bytes, e.durationMs, e.outcome);
    }
  }

  /** Runs `fn` after the host's earlier changes (get, change, put never interleave for one host). */
  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(name) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(fn);
    const tail = run.catch(() => {});
    this.chains.set(name, tail);
    void tail.then(() => {
      if (this.chains.get(name) === tail) this.chains.delete(name);
    });
    return run;
  }

  /** Does bootd keep a record of this host? */
  async knows(name: string): Promise<boolean> {
    return (await this.d.store.get(name)) !== undefined;
  }

  close(): void {
    this.closed = true;
  }

  /** Resolves once everything in flight (records, SSH watches, smoke runs) has finished and been stored. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending].map((p) => p.catch(() => {})));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.catch(() => {}).finally(() => this.pending.delete(p));
    return p;
  }

  private newId(): string {
    return `${this.d.now().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${(this.d.randomBytes ?? randomBytes)(2).toString('hex')}`;
  }

  logDir(name: string): string {
    return path.join(this.d.stateDir, 'logs', name);
  }

  /** Folds an observation in, writes the event line and stores it; returns the boot it went into. */
  private record(who: string | HostCandidate, o: Observation): Promise<BootRecord | null> {
    const c = typeof who === 'string' ? { name: who } : who;
    return this.serial(c.name, () => this.recordNow(c, o));
  }

  /** Reads the names of every recorded host, so that events of hosts without a record are dropped at once. */
  async loadKnown(): Promise<void> {
    const names = new Set<string>();
    for (let offset = 0; ; ) {
      const page = await this.d.store.list({ offset, limit: MAX_PAGE });
      for (const h of page.items) names.add(h.name);
      offset += page.items.length;
      if (page.items.length === 0 || offset >= page.total) break;
    }
    this.known = names;
  }

  /** Records made elsewhere (another instance on a shared store): their events are this tracker's too from now on. */
  learned(names: Iterable<string>): void {
    if (this.known) for (const n of names) this.known.add(n);
  }

  /** An event for a host that has no record and gets none from it: nothing to do. */
  private skip(c: string | HostCandidate | undefined): c is undefined {
    if (c === undefined) return true;
    if (typeof c === 'string' || c.ifRecorded !== true) return false;
    return this.known !== null && !this.known.has(c.name);
  }

  private async recordNow(c: HostCandidate, o: Observation): Promise<BootRecord | null> {
    const name = c.name;
    const stored = await this.d.store.get(name);
    if (stored === undefined && c.ifRecorded === true) return null;
    this.known?.add(name);
    const rec = stored ?? { name, boots: [] };
    const before = rec.boots[rec.boots.length - 1];
    const beforeId = before?.id;
    const beforePhase = before?.phase;
    const boot = observe(rec, o, this.d.now(), () => this.newId());
    if (!boot) return null;
    const phase = boot.phase;
    const changed = phase !== beforePhase || boot.id !== beforeId;
    if (changed) {
      this.d.log.info({ svc: 'afterboot', host: name, boot: boot.id, phase, ip: boot.ip }, 'host phase');
    }
    this.counters.events++;
    const e = boot.events[boot.events.length - 1];
    if (e) {
      if (!this.made.has(name)) {
        await fs.mkdir(this.logDir(name), { recursive: true });
        this.made.add(name);
      }
      const newBoot = boot.id !== beforeId ? bootLine(boot, e.at) : '';
      await fs.appendFile(path.join(this.logDir(name), 'events.log'), `${newBoot}${eventLine(e)}`);
    }
    // a result someone reads back (smoke, inventory) is durable before we go on; events may gather
    const durable = o.kind === 'smoke' || o.kind === 'audit';
    const put = this.d.store.put(rec, durable);
    // published once the store holds the change, so a subscriber that reads the store (the dashboard) sees it
    if (changed) this.events.publish({ type: 'host.phase', host: name, boot: boot.id, phase, ip: boot.ip ?? null, image: boot.image ?? null });
    if (durable) await put;
    else void put.catch((err: unknown) => this.fail('store', err));
    if (changed && phase === 'os-dhcp' && boot.ip !== undefined) this.watchForSsh(name, boot.id, boot.ip);
    return boot;
  }

  onDhcp(e: DhcpSeen): void {
    const h = this.d.hostOfMac(e.mac, e.pxe || e.userClassIpxe);
    if (this.skip(h)) return;
    this.observeDhcp(h, e);
  }

  private observeDhcp(h: HostCandidate, e: DhcpSeen): void {
    void this.track(this.record(h, { ...e, kind: 'dhcp', ...(h.image !== undefined ? { image: h.image } : {}) })).catch((err: unknown) => this.fail('dhcp', err));
  }

  onFile(peer: string, via: 'tftp' | 'http', file: string, bytes: number, durationMs: number, outcome: string): void {
    const who = this.d.nameAt(peer);
    if (this.skip(who)) return;
    void this.track(this.record(who, { kind: 'file', via, file, bytes, durationMs, outcome })).catch((err: unknown) => this.fail('file', err));
  }

  /** A write transfer ended; `stored` is where a complete upload now is. */
  onUpload(peer: string, file: string, bytes: number, outcome: string, stored?: string): void {
    const who = this.d.nameAt(peer);
    if (this.skip(who)) return;
    const name = typeof who === 'string' ? who : who.name;
    void this.track(
      (async () => {
        const boot = await this.record(who, { kind: 'upload', file, bytes, outcome });
        if (boot !== null && outcome === 'complete' && stored !== undefined && AUDIT_FILE.test(file)) await this.ingestReport(name, stored);
      })(),
    ).catch((err: unknown) => this.fail('upload', err));
  }

  private fail(what: string, err: unknown): void {
    this.d.log.error({ svc: 'afterboot', what, err: String(err) }, 'after-boot record failed');
  }

  /**
   * Validates an uploaded audit report and keeps it as the host's inventory
   * (<state>/inventory/<host>.json). A bad one is moved to
   * <state>/inventory/rejected/ with the reason; the last good one stays.
   */
  async ingestReport(name: string, file: string): Promise<InventoryEntry | { error: string }> {
    const dir = path.join(this.d.stateDir, 'inventory');
    await fs.mkdir(path.join(dir, 'rejected'), { recursive: true });
    const st = await fs.stat(file);
    const r = st.size > MAX_REPORT_BYTES ? ({ ok: false, error: `report is ${st.size} bytes, larger than ${MAX_REPORT_BYTES}` } as const) : parseAuditReport(await fs.readFile(file, 'utf8'));
    const at = this.d.now().toISOString();
    if (!r.ok) {
      this.counters.reportsRejected++;
      const kept = path.join(dir, 'rejected', `${name}-${at.replace(/[:.]/g, '')}.json`);
      await fs.copyFile(file, kept);
      const prev = await this.d.store.inventory(name);
      if (prev) await this.d.store.putInventory(name, { ...prev, rejected: { at, file: path.relative(this.d.stateDir, kept), error: r.error } });
      this.events.publish({ type: 'inventory.rejected', host: name, bytes: st.size, error: r.error });
      await this.record(name, { kind: 'audit', ok: false, text: `audit report refused: ${r.error} (kept as ${path.relative(this.d.stateDir, kept)})` });
      this.d.log.warn({ svc: 'afterboot', host: name, file, error: r.error, kept }, 'audit report refused');
      return { error: r.error };
    }
    this.counters.reports++;
    const target = path.join(dir, `${name}.json`);
    const tmp = `${target}.${process.pid}.tmp`;
    await fs.copyFile(file, tmp);
    const fh = await fs.open(tmp, 'r+');
    await fh.sync().finally(() => fh.close());
    await fs.rename(tmp, target);
    const entry: InventoryEntry = { receivedAt: at, bytes: st.size, file: path.relative(this.d.stateDir, target), collectedAt: r.collectedAt, summary: r.summary };
    await this.d.store.putInventory(name, entry);
    this.events.publish({ type: 'inventory.stored', host: name, bytes: st.size });
    const s = r.summary;
    const summary = `${s.cpu.model ?? 'cpu ?'}, ${s.memoryMiB ?? '?'} MiB, ${s.disks.length} disk(s), ${s.pcieDevices ?? '?'} PCIe device(s)`;
    await this.record(name, { kind: 'audit', ok: true, text: `audit report stored: ${summary}` });
    this.d.log.info({ svc: 'afterboot', host: name, file: target, bytes: st.size, summary }, 'audit report stored');
    return entry;
  }

  /** Probes the host's SSH port until it answers (or time runs out), then smoke-tests it. */
  private watchForSsh(name: string, bootId: string, ip: string): void {
    const key = `${name}/${bootId}`;
    if (this.watching.has(key)) return;
    this.watching.add(key);
    void this.track((async () => {
      const plan = await this.d.smokePlan(name);
      const started = this.d.now().getTime();
      const deadline = started + (this.d.upTimeoutMs ?? 600_000);
      while (!this.closed && this.d.now().getTime() < deadline) {
        const cur = await this.current(name);
        if (cur?.id !== bootId) return; // the host rebooted meanwhile
        if (await this.d.tcpAnswers(ip, plan.port, 1000)) {
          const afterMs = this.d.now().getTime() - started;
          await this.record(name, { kind: 'ssh', port: plan.port, afterMs });
          this.events.publish({ type: 'host.ssh', host: name, boot: bootId, port: plan.port, afterMs });
          if (this.d.smokeAutomatically !== false && plan.ok) await this.smoke(name);
          else if (!plan.ok) this.d.log.info({ svc: 'afterboot', host: name, reason: plan.reason }, 'no smoke test');
          return;
        }
        await this.sleep(this.d.probeEveryMs ?? 1000);
      }
    })())
      .catch((err: unknown) => this.fail('ssh watch', err))
      .finally(() => this.watching.delete(key));
  }

  async current(name: string): Promise<BootRecord | undefined> {
    const b = (await this.d.store.get(name))?.boots;
    return b?.[b.length - 1];
  }

  /**
   * Runs the smoke test against the host's current boot and records it; one
   * run per host at a time (a second call joins the first).
   */
  smoke(name: string): Promise<SmokeResult> {
    const running = this.running.get(name);
    if (running) return running;
    const p = this.track(this.runSmokeNow(name).finally(() => this.running.delete(name)));
    this.running.set(name, p);
    return p;
  }

  private async runSmokeNow(name: string): Promise<SmokeResult> {
    const boot = await this.current(name);
    const startedAt = this.d.now();
    const plan = await this.d.smokePlan(name);
    const base = { startedAt: startedAt.toISOString(), attempts: 0, passed: 0, failed: [] as string[], exitCode: null };
    let result: SmokeResult;
    if (!boot?.ip) result = { ...base, ok: false, durationMs: 0, error: `bootd has no address for ${name} (no boot recorded)` };
    else if (!plan.ok) result = { ...base, ok: false, durationMs: 0, error: plan.reason };
    else {
      this.counters.smokeRuns++;
      this.events.publish({ type: 'smoke.started', host: name, boot: boot.id });
      this.d.log.info({ svc: 'afterboot', host: name, ip: boot.ip, user: plan.user, port: plan.port }, 'smoke test starting');
      const run = await this.d.runSmoke({ host: boot.ip, port: plan.port, user: plan.user, privateKey: plan.privateKey, script: plan.script, timeoutMs: plan.timeoutMs });
      const out = path.join(this.logDir(name), `smoke-${boot.id}.log`);
      await fs.mkdir(this.logDir(name), { recursive: true });
      await fs.writeFile(out, run.output + (run.error ? `\n# ${run.error}\n` : ''));
      result = {
        ok: run.ok,
        exitCode: run.exitCode,
        startedAt: startedAt.toISOString(),
        durationMs: run.durationMs,
        attempts: run.attempts,
        passed: run.passed,
        failed: run.failed,
        ...(run.error ? { error: run.error } : {}),
        outputFile: path.relative(this.d.stateDir, out),
      };
    }
    if (result.ok) this.counters.smokePassed++;
    else this.counters.smokeFailed++;
    this.events.publish({ type: 'smoke.finished', host: name, boot: boot?.id ?? null, ok: result.ok, passed: result.passed, failed: result.failed.length, durationMs: result.durationMs, ...(result.error !== undefined ? { error: result.error } : {}) });
    this.d.log[result.ok ? 'info' : 'warn']({ svc: 'afterboot', host: name, ok: result.ok, passed: result.passed, failed: result.failed, error: result.error, exitCode: result.exitCode }, 'smoke test finished');
    if (boot && phaseAtLeast(boot.phase, 'dhcp')) await this.record(name, { kind: 'smoke', result });
    return result;
  }
}
