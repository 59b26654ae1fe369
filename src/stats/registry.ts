/**
 * Every server's counters and gauges in one place, readable at any moment.
 *
 * A server keeps its counters as a plain object it increments on its hot
 * path (no lookup, no call); it registers that object's reader here under a
 * stable prefix, and the registry reads it live when asked. Names are
 * `<prefix>.<counter>` (`dhcp.acks`, `tftp.bytesSent`); a counter only goes
 * up while bootd runs, a gauge (named at registration) goes up and down
 * (`tftp.active`). `bootd status` shows them through the control socket;
 * the metrics exporter will read them the same way.
 */

export type MetricKind = 'counter' | 'gauge';

export interface Metric {
  readonly name: string;
  readonly kind: MetricKind;
  readonly value: number;
}

/** What a server offers the registry: its numbers now (an object whose members are all numbers). */
export type StatsSource<T> = () => { readonly [K in keyof T]: number };

interface Entry {
  readonly prefix: string;
  readonly read: () => object;
  readonly gauges: ReadonlySet<string>;
}

const PREFIX_RE = /^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)*$/;

export class StatsRegistry {
  private readonly entries = new Map<string, Entry>();

  /** Registers a source; `gauges` names its members that are gauges (the rest are counters). */
  register<T>(prefix: string, read: StatsSource<T>, gauges: readonly (keyof T & string)[] = []): void {
    if (!PREFIX_RE.test(prefix)) throw new Error(`stats prefix ${JSON.stringify(prefix)} is not a dotted name`);
    if (this.entries.has(prefix)) throw new Error(`stats prefix ${prefix} is registered twice`);
    this.entries.set(prefix, { prefix, read, gauges: new Set(gauges) });
  }

  unregister(prefix: string): void {
    this.entries.delete(prefix);
  }

  /** Every metric now, sorted by name; a source that throws is left out (and named under `stats.failedSources`). */
  read(): Metric[] {
    const out: Metric[] = [];
    let failed = 0;
    for (const e of this.entries.values()) {
      let values: object;
      try {
        values = e.read();
      } catch {
        failed++;
        continue;
      }
      for (const [k, v] of Object.entries(values) as [string, unknown][]) {
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        out.push({ name: `${e.prefix}.${k}`, kind: e.gauges.has(k) ? 'gauge' : 'counter', value: v });
      }
    }
    if (failed > 0) out.push({ name: 'stats.failedSources', kind: 'gauge', value: failed });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The metrics as one flat object, name -> value. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.read().map((m) => [m.name, m.value]));
  }
}
