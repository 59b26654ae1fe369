/**
 * A fixed-bucket histogram a server fills on its hot path: one comparison
 * loop over a dozen bounds and two additions, no allocation. The metrics
 * exporter reads it when scraped (cumulative buckets, Prometheus style).
 */
export class Histogram {
  /** Count per bucket (not cumulative); the last one is +Inf. */
  private readonly counts: Float64Array;
  private sum = 0;
  private n = 0;

  /** `bounds`: upper bounds in seconds, ascending. */
  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) if (!((bounds[i] as number) > (bounds[i - 1] as number))) throw new Error('histogram bounds must ascend');
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > (b[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += seconds;
    this.n++;
  }

  /** Cumulative counts per bound (then +Inf), the sum and the count, as Prometheus exposes them. */
  read(): { readonly buckets: readonly { readonly le: number; readonly count: number }[]; readonly sum: number; readonly count: number } {
    let acc = 0;
    const buckets = this.bounds.map((le, i) => ({ le, count: (acc += this.counts[i] as number) }));
    buckets.push({ le: Infinity, count: this.n });
    return { buckets, sum: this.sum, count: this.n };
  }
}

/** DHCP reply latency: from the datagram's arrival to the reply's send (50 us to 1 s). */
export const REPLY_BOUNDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
