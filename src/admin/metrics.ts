/**
 * /metrics: bootd in the Prometheus text format, through prom-client.
 *
 * Names follow Kea's exporter (`kea_dhcp4_packets_received_total{operation}`
 * becomes `bootd_dhcp4_packets_received_total{operation}`) and Prometheus's
 * own rules (counters end in `_total`, units in the name, base units:
 * seconds and bytes). Two kinds of source:
 * - the servers' counters and gauges (src/stats/registry.ts), read when
 *   scraped: nothing on the hot path changes because someone scrapes;
 * - the event bus, for what only events carry (a transfer's outcome and
 *   duration, a boot's phases, smoke results, image builds): one subscriber,
 *   so a slow scrape never slows a server.
 * Every counter in the registry that no named metric below takes is still
 * exported, as `bootd_<prefix>_<name>_total` (or without `_total` for a
 * gauge), so a new counter is never invisible. Reference: docs/metrics.md.
 */
import { Counter, Gauge, Histogram as PromHistogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BootEvent, Stamp } from '../events/types.js';
import type { Histogram } from '../stats/histogram.js';
import type { Metric } from '../stats/registry.js';

export interface SubnetUsage {
  readonly subnet: string;
  readonly total: number;
  readonly assigned: number;
  readonly declined: number;
}

export interface MetricSources {
  /** Every server's counters and gauges now (the StatsRegistry). */
  readonly stats: () => readonly Metric[];
  /** DHCP reply latency, filled by the server (absent: no DHCP). */
  readonly dhcpReplyLatency?: Histogram;
  /** Address usage per subnet (absent or empty: no DHCP, or proxy mode). */
  readonly subnets?: () => readonly SubnetUsage[];
  /** Hosts per phase of their last boot. */
  readonly hostsByPhase?: () => Readonly<Record<string, number>>;
  readonly version: string;
}

type Labels = Record<string, string>;
interface Value {
  readonly labels?: Labels;
  readonly value: number;
  readonly metricName?: string;
}

/** Metrics read from the registry by name: name -> how it is exported. */
const FROM_STATS: readonly { readonly metric: string; readonly help: string; readonly type: 'counter' | 'gauge'; readonly map: readonly [stat: string, labels: Labels][] }[] = [
  {
    metric: 'bootd_dhcp4_packets_received_total',
    help: 'DHCPv4 packets received, by message type (RFC 2132 option 53).',
    type: 'counter',
    map: [['dhcp.discovers', { operation: 'discover' }], ['dhcp.requests', { operation: 'request' }], ['dhcp.declines', { operation: 'decline' }], ['dhcp.releases', { operation: 'release' }], ['dhcp.informs', { operation: 'inform' }]],
  },
  { metric: 'bootd_dhcp4_packets_sent_total', help: 'DHCPv4 packets sent, by message type.', type: 'counter', map: [['dhcp.offers', { operation: 'offer' }], ['dhcp.acks', { operation: 'ack' }], ['dhcp.naks', { operation: 'nak' }]] },
  { metric: 'bootd_dhcp4_packets_parse_failed_total', help: 'DHCPv4 datagrams that did not parse (dropped).', type: 'counter', map: [['dhcp.malformed', {}]] },
  {
    metric: 'bootd_dhcp4_packets_dropped_total',
    help: 'DHCPv4 requests dropped unanswered, by reason.',
    type: 'counter',
    map: [['dhcp.ignored', { reason: 'not-served' }], ['dhcp.foreignDeclines', { reason: 'foreign-decline' }], ['dhcp.foreignReleases', { reason: 'foreign-release' }], ['dhcp.unknownInitReboot', { reason: 'unknown-init-reboot' }], ['dhcp.badClientValues', { reason: 'bad-client-value' }], ['dhcp.standby', { reason: 'standby' }]],
  },
  {
    metric: 'bootd_dhcp4_allocation_failures_total',
    help: 'DHCPv4 requests that got no address, by reason.',
    type: 'counter',
    map: [['dhcp.poolExhausted', { reason: 'pool-exhausted' }], ['dhcp.replyTooBig', { reason: 'reply-too-big' }], ['dhcp.storeFailures', { reason: 'store-failure' }]],
  },
  { metric: 'bootd_dhcp4_leases', help: 'Leases in the lease table (expired and released included until reused).', type: 'gauge', map: [['leases.active', {}]] },
  {
    metric: 'bootd_transfers_active',
    help: 'Transfers in flight, by protocol.',
    type: 'gauge',
    map: [['tftp.active', { protocol: 'tftp' }], ['http.active', { protocol: 'http' }], ['uploads.active', { protocol: 'upload' }]],
  },
  {
    metric: 'bootd_tftp_requests_total',
    help: 'TFTP read and write requests received on the main port.',
    type: 'counter',
    map: [['tftp.requests', {}]],
  },
  { metric: 'bootd_machine_ports_open', help: 'Build machines whose write-enabled TFTP port is open.', type: 'gauge', map: [['machines.open', {}]] },
  { metric: 'bootd_machine_ports_failed', help: 'Build machines whose port could not be bound.', type: 'gauge', map: [['machines.failed', {}]] },
  { metric: 'bootd_admin_unauthorized_total', help: 'Admin requests refused for a missing or wrong token (401).', type: 'counter', map: [['admin.unauthorized', {}]] },
  { metric: 'bootd_admin_forbidden_total', help: 'Admin requests refused as cross-site or with a bad CSRF token (403).', type: 'counter', map: [['admin.forbidden', {}]] },
];

/** TFTP refusals from the server's counters; HTTP ones come from events (their status). */
const TFTP_REFUSALS: readonly [string, string][] = [
  ['tftp.notFound', 'not-found'],
  ['tftp.denied', 'access'],
  ['tftp.refusedWrite', 'access'],
  ['tftp.refusedBusy', 'busy'],
  ['tftp.refusedClientBusy', 'busy'],
  ['tftp.rateLimited', 'rate-limited'],
];

const TRANSFER_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const PHASE_BUCKETS = [1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800];
const BUILD_BUCKETS = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

/** Phase reached -> the duration it ends (from the boot's DHCP offer). */
const PHASE_STEP: Readonly<Record<string, string>> = { kernel: 'kernel', 'os-dhcp': 'userland', up: 'ssh', 'smoke-passed': 'smoke', 'smoke-failed': 'smoke' };
const HTTP_REFUSAL: Readonly<Record<number, string>> = { 404: 'not-found', 403: 'access', 503: 'busy' };

export class BootdMetrics {
  readonly registry = new Registry();
  private readonly transfers: Counter<'protocol' | 'outcome'>;
  private readonly transferSeconds: PromHistogram<'protocol'>;
  private readonly boots: Counter<'image' | 'result'>;
  private readonly phaseSeconds: PromHistogram<'step'>;
  private readonly smoke: Counter<'result'>;
  private readonly smokeSeconds: PromHistogram;
  private readonly inventory: Counter<'result'>;
  private readonly reloads: Counter<'result'>;
  private readonly filesInError: Gauge;
  private readonly hostsServed: Gauge;
  private readonly builds: Counter<'image' | 'result'>;
  private readonly buildSeconds: PromHistogram<'image'>;
  private readonly httpRefusals = new Map<string, number>();
  /** Bytes through build machines' ports (their servers come and go; events keep the total). */
  private readonly machineBytes = new Map<string, number>();
  private readonly buildsRunning = new Set<string>();
  /** Boot id -> when its DHCP phase began and its image, until the boot ends (bounded). */
  private readonly bootStarts = new Map<string, { at: number; image: string }>();

  constructor(private readonly src: MetricSources) {
    const reg = this.registry;
    collectDefaultMetrics({ register: reg, prefix: 'bootd_' });
    // gauges named *_total break Prometheus's naming rules (promtool check metrics): left out
    for (const n of ['bootd_nodejs_active_handles_total', 'bootd_nodejs_active_requests_total', 'bootd_nodejs_active_resources_total']) reg.removeSingleMetric(n);
    this.custom('bootd_build_info', 'bootd version (always 1).', 'gauge', () => [{ labels: { version: src.version }, value: 1 }]);
    const consumed = new Set<string>(['dhcp.received']);
    for (const m of FROM_STATS) {
      for (const [stat] of m.map) consumed.add(stat);
      this.custom(m.metric, m.help, m.type, (stats) =>
        m.map.flatMap(([stat, labels]) => {
          const v = stats.get(stat);
          return v === undefined ? [] : [{ labels, value: v }];
        }),
      );
    }
    for (const [stat] of TFTP_REFUSALS) consumed.add(stat);
    consumed.add('http.refused');
    consumed.add('http.refusedConnections');
    this.custom('bootd_transfer_refusals_total', 'File requests refused, by protocol and reason (not-found, access, busy, rate-limited).', 'counter', (stats) => {
      const sum = new Map<string, number>();
      for (const [stat, reason] of TFTP_REFUSALS) {
        const v = stats.get(stat);
        if (v !== undefined) sum.set(`tftp ${reason}`, (sum.get(`tftp ${reason}`) ?? 0) + v);
      }
      for (const [reason, n] of this.httpRefusals) sum.set(`http ${reason}`, n);
      const conn = stats.get('http.refusedConnections');
      if (conn !== undefined) sum.set('http busy', (sum.get('http busy') ?? 0) + conn);
      return [...sum].map(([k, value]) => {
        const [protocol, reason] = k.split(' ') as [string, string];
        return { labels: { protocol, reason }, value };
      });
    });
    // bytes: the servers' own totals (a transfer cut short still moved bytes)
    for (const s of ['tftp.bytesSent', 'tftp.bytesReceived', 'http.bytesSent', 'uploads.bytesReceived', 'uploads.bytesSent']) consumed.add(s);
    this.custom('bootd_transfer_bytes_total', 'Bytes moved by file transfers, by protocol and direction (read: served, write: uploaded).', 'counter', (stats) => {
      const out: Value[] = [];
      const add = (stat: string, protocol: string, direction: string): void => {
        const v = stats.get(stat);
        if (v !== undefined) out.push({ labels: { protocol, direction }, value: v });
      };
      add('tftp.bytesSent', 'tftp', 'read');
      add('tftp.bytesReceived', 'tftp', 'write');
      add('http.bytesSent', 'http', 'read');
      add('uploads.bytesReceived', 'upload', 'write');
      for (const [direction, value] of this.machineBytes) out.push({ labels: { protocol: 'machine', direction }, value });
      return out;
    });
    if (src.dhcpReplyLatency) {
      const h = src.dhcpReplyLatency;
      this.custom('bootd_dhcp4_reply_duration_seconds', 'Time from a DHCPv4 request\'s arrival to its reply leaving (an ACK waits for its lease to be durable).', 'histogram', () => {
        const r = h.read();
        const name = 'bootd_dhcp4_reply_duration_seconds';
        return [
          ...r.buckets.map((b) => ({ metricName: `${name}_bucket`, labels: { le: b.le === Infinity ? '+Inf' : String(b.le) }, value: b.count })),
          { metricName: `${name}_sum`, value: r.sum },
          { metricName: `${name}_count`, value: r.count },
        ];
      });
    }
    if (src.subnets) {
      const subnets = src.subnets;
      this.custom('bootd_dhcp4_addresses_pool', 'Addresses in the dynamic range, per subnet.', 'gauge', () => subnets().map((s) => ({ labels: { subnet: s.subnet }, value: s.total })));
      this.custom('bootd_dhcp4_addresses_assigned', 'Addresses of the range held by an unexpired lease, per subnet.', 'gauge', () => subnets().map((s) => ({ labels: { subnet: s.subnet }, value: s.assigned })));
      this.custom('bootd_dhcp4_addresses_declined', 'Addresses of the range declined by a client and held back, per subnet.', 'gauge', () => subnets().map((s) => ({ labels: { subnet: s.subnet }, value: s.declined })));
    }
    if (src.hostsByPhase) {
      const phases = src.hostsByPhase;
      this.custom('bootd_hosts_by_phase', 'Hosts by the phase of their last boot (none: never booted).', 'gauge', () => Object.entries(phases()).map(([phase, value]) => ({ labels: { phase }, value })));
    }
    this.custom('bootd_image_builds_running', 'Image builds in progress.', 'gauge', () => [{ value: this.buildsRunning.size }]);
    this.transfers = new Counter({ name: 'bootd_transfers_total', help: 'File transfers that ended, by protocol (tftp, http, upload, machine) and outcome (complete, aborted, timeout, refused, ...).', labelNames: ['protocol', 'outcome'], registers: [reg] });
    this.transferSeconds = new PromHistogram({ name: 'bootd_transfer_duration_seconds', help: 'Duration of complete file transfers, by protocol.', labelNames: ['protocol'], buckets: TRANSFER_BUCKETS, registers: [reg] });
    this.boots = new Counter({ name: 'bootd_boots_total', help: 'Boots that reached a result (dhcp: started, kernel, os-dhcp, up, smoke-passed, smoke-failed), by image; a boot counts once per result it reaches.', labelNames: ['image', 'result'], registers: [reg] });
    this.phaseSeconds = new PromHistogram({ name: 'bootd_boot_phase_seconds', help: 'Time from a boot\'s DHCP offer to each step: kernel (kernel and initrd sent), userland (the OS\'s own DHCP), ssh (SSH answers), smoke (smoke result).', labelNames: ['step'], buckets: PHASE_BUCKETS, registers: [reg] });
    this.smoke = new Counter({ name: 'bootd_smoke_tests_total', help: 'Smoke tests run, by result (passed, failed).', labelNames: ['result'], registers: [reg] });
    this.smokeSeconds = new PromHistogram({ name: 'bootd_smoke_duration_seconds', help: 'Duration of smoke tests.', buckets: [1, 5, 10, 30, 60, 120, 300, 600], registers: [reg] });
    this.inventory = new Counter({ name: 'bootd_inventory_reports_total', help: 'Audit reports received, by result (stored, rejected).', labelNames: ['result'], registers: [reg] });
    this.reloads = new Counter({ name: 'bootd_hosts_reloads_total', help: 'Reloads of hosts/*.yaml, by result (ok, error).', labelNames: ['result'], registers: [reg] });
    this.filesInError = new Gauge({ name: 'bootd_hosts_files_in_error', help: 'Hosts files in error at the last reload (they keep serving their last good hosts).', registers: [reg] });
    this.hostsServed = new Gauge({ name: 'bootd_hosts_served', help: 'Hosts served from hosts/*.yaml.', registers: [reg] });
    this.builds = new Counter({ name: 'bootd_image_builds_total', help: 'Image builds that ended, by image and result (finished, failed).', labelNames: ['image', 'result'], registers: [reg] });
    this.buildSeconds = new PromHistogram({ name: 'bootd_image_build_duration_seconds', help: 'Duration of image builds, by image.', labelNames: ['image'], buckets: BUILD_BUCKETS, registers: [reg] });
    this.consumed = consumed;
    this.rest();
  }

  private readonly consumed: ReadonlySet<string>;

  /** Every registry number no named metric took: `bootd_<prefix>_<name>` (counters with _total); sources registered later join at the next scrape. */
  private rest(stats: readonly Metric[] = this.src.stats()): void {
    for (const m of stats) {
      if (this.consumed.has(m.name)) continue;
      const metric = `bootd_${snake(m.name)}${m.kind === 'counter' ? '_total' : ''}`;
      if (this.registry.getSingleMetric(metric)) continue;
      this.custom(metric, `bootd ${m.kind} ${m.name} (docs/metrics.md).`, m.kind, (stats) => {
        const v = stats.get(m.name);
        return v === undefined ? [] : [{ value: v }];
      });
    }
  }

  /** The registry's numbers of the scrape in progress (read once per scrape). */
  private scrapeStats: Map<string, number> | null = null;

  /** A metric computed when scraped. */
  private custom(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: (stats: ReadonlyMap<string, number>) => Value[]): void {
    this.registry.registerMetric({
      name,
      help,
      type,
      aggregator: 'sum',
      get: async () => ({ name, help, type, aggregator: 'sum', values: values(this.scrapeStats ?? new Map(this.src.stats().map((m) => [m.name, m.value]))) }),
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The exposition, Prometheus text format 0.0.4. */
  async exposition(): Promise<string> {
    const stats = this.src.stats();
    this.rest(stats);
    this.scrapeStats = new Map(stats.map((m) => [m.name, m.value]));
    try {
      return await this.registry.metrics();
    } finally {
      this.scrapeStats = null;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A bus subscriber. */
  onEvent(e: BootEvent, stamp: Stamp): void {
    switch (e.type) {
      case 'transfer.finished': {
        this.transfers.inc({ protocol: e.protocol, outcome: e.outcome });
        if (e.outcome === 'complete') this.transferSeconds.observe({ protocol: e.protocol }, e.durationMs / 1000);
        if (e.protocol === 'machine') this.machineBytes.set(e.direction, (this.machineBytes.get(e.direction) ?? 0) + e.bytes);
        const status = e.http?.status;
        if (e.protocol === 'http' && e.outcome === 'refused' && status !== undefined) {
          const reason = HTTP_REFUSAL[status] ?? 'other';
          this.httpRefusals.set(reason, (this.httpRefusals.get(reason) ?? 0) + 1);
        }
        return;
      }
      case 'host.phase':
        return this.phase(e.boot, e.phase, e.image, stamp.at);
      case 'smoke.finished':
        this.smoke.inc({ result: e.ok ? 'passed' : 'failed' });
        this.smokeSeconds.observe(e.durationMs / 1000);
        return;
      case 'inventory.stored':
        this.inventory.inc({ result: 'stored' });
        return;
      case 'inventory.rejected':
        this.inventory.inc({ result: 'rejected' });
        return;
      case 'hosts.reload':
        this.reloads.inc({ result: e.ok ? 'ok' : 'error' });
        if (e.error === undefined) this.filesInError.set(e.filesInError);
        this.hostsServed.set(e.hosts);
        return;
      case 'image.build':
        if (e.state === 'started') this.buildsRunning.add(e.image);
        if (e.state === 'finished' || e.state === 'failed') {
          this.buildsRunning.delete(e.image);
          this.builds.inc({ image: e.image, result: e.state });
          if (e.durationMs !== undefined) this.buildSeconds.observe({ image: e.image }, e.durationMs / 1000);
        }
        return;
      default:
        return;
    }
  }

  private phase(boot: string, phase: string, image: string | null, at: number): void {
    const img = imageName(image);
    if (phase === 'dhcp') {
      this.bootStarts.set(boot, { at, image: img });
      while (this.bootStarts.size > 100_000) this.bootStarts.delete(this.bootStarts.keys().next().value as string);
    }
    const start = this.bootStarts.get(boot);
    const name = img !== 'unknown' ? img : (start?.image ?? 'unknown');
    if (start && name !== 'unknown') start.image = name;
    this.boots.inc({ image: name, result: phase });
    const step = PHASE_STEP[phase];
    if (step && start) this.phaseSeconds.observe({ step }, Math.max(0, (at - start.at) / 1000));
    if (phase === 'smoke-passed' || phase === 'smoke-failed') this.bootStarts.delete(boot);
  }
}

/** The image's name without its version (bounded label values: one per image, not per build). */
function imageName(image: string | null): string {
  if (!image) return 'unknown';
  const at = image.indexOf('@');
  return at < 0 ? image : image.slice(0, at);
}

/** `tftp.bytesSent` -> `tftp_bytes_sent`. */
function snake(dotted: string): string {
  return dotted.replaceAll('.', '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}
