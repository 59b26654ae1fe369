/**
 * The event bus: servers publish, subscribers subscribe.
 *
 * Publishing only stamps the event and queues it; delivery happens later
 * (injected `schedule`; in bootd a 1 ms timer, so that a burst of packets
 * is delivered in one batch rather than one event-loop turn per packet),
 * so a DHCP or TFTP reply path never waits for a subscriber. Each
 * subscriber has its own queue and gets events in publish order; one that
 * returns a promise gets the next event when that settles, so a slow
 * subscriber falls behind alone. A subscriber that throws or rejects is
 * counted and reported (`onFailure`) and keeps getting events; one that
 * falls more than `maxQueue` events behind loses the newest ones, counted
 * as dropped, instead of growing memory without bound.
 */
import type { BootEvent, BootEventType, EventSink, Stamp } from './types.js';

/** A subscriber gets the event as published and its stamp (number and time); the event is shared with the other subscribers: read only. */
export type Subscriber = (e: BootEvent, stamp: Stamp) => void | Promise<void>;

/**
 * An event with its stamp, one small object of one shape: publishing wraps
 * the publisher's object instead of copying its fields (a spread of a dozen
 * fields per DHCP packet cost 4 us, docs/performance.md session 14).
 */
class Envelope implements Stamp {
  constructor(
    readonly seq: number,
    readonly at: number,
    readonly event: BootEvent,
  ) {}
}

export interface SubscriberStats {
  readonly name: string;
  readonly delivered: number;
  readonly failed: number;
  readonly dropped: number;
  readonly queued: number;
}

export interface BusDeps {
  /** Wall-clock ms for the `at` stamp. */
  readonly wallNow: () => number;
  /** Runs `fn` later (default: a 1 ms timer, gathering a burst into one delivery). */
  readonly schedule?: (fn: () => void) => void;
  /** A subscriber threw or rejected. */
  readonly onFailure?: (subscriber: string, err: unknown) => void;
  /** Events a subscriber may fall behind before newer ones are dropped for it (default 100,000). */
  readonly maxQueue?: number;
}

class Sub {
  queue: Envelope[] = [];
  head = 0;
  busy = false;
  delivered = 0;
  failed = 0;
  dropped = 0;
  constructor(
    readonly name: string,
    readonly fn: Subscriber,
    readonly types: ReadonlySet<BootEventType> | null,
  ) {}
  get queued(): number {
    return this.queue.length - this.head;
  }
}

export class EventBus implements EventSink {
  private subs: Sub[] = [];
  private seq = 0;
  private scheduled = false;
  private readonly schedule: (fn: () => void) => void;
  private readonly maxQueue: number;
  private idleWaiters: (() => void)[] = [];
  published = 0;

  constructor(private readonly d: BusDeps) {
    this.schedule = d.schedule ?? ((fn) => void setTimeout(fn, 1));
    this.maxQueue = d.maxQueue ?? 100_000;
  }

  /** Adds a subscriber (optionally for some event types only); returns its unsubscribe. */
  subscribe(name: string, fn: Subscriber, types?: readonly BootEventType[]): () => void {
    const s = new Sub(name, fn, types ? new Set(types) : null);
    this.subs = [...this.subs, s];
    return () => {
      this.subs = this.subs.filter((x) => x !== s);
      s.queue = [];
      s.head = 0;
      this.checkIdle();
    };
  }

  publish(e: BootEvent): void {
    this.published++;
    const subs = this.subs;
    if (subs.length === 0) return;
    const stamped = new Envelope(++this.seq, this.d.wallNow(), e);
    for (const s of subs) {
      if (s.types !== null && !s.types.has(e.type)) continue;
      if (s.queued >= this.maxQueue) {
        s.dropped++;
        continue;
      }
      s.queue.push(stamped);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.deliver());
    }
  }

  private deliver(): void {
    this.scheduled = false;
    for (const s of this.subs) this.pump(s);
    this.checkIdle();
  }

  private pump(s: Sub): void {
    while (!s.busy && s.head < s.queue.length) {
      const env = s.queue[s.head++] as Envelope;
      if (s.head === s.queue.length) {
        s.queue = [];
        s.head = 0;
      }
      let r: void | Promise<void>;
      try {
        r = s.fn(env.event, env);
      } catch (err) {
        this.failed(s, err);
        continue;
      }
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        s.busy = true;
        (r as Promise<void>).then(
          () => {
            s.delivered++;
          },
          (err: unknown) => this.failed(s, err),
        ).finally(() => {
          s.busy = false;
          this.pump(s);
          this.checkIdle();
        });
        return;
      }
      s.delivered++;
    }
  }

  private failed(s: Sub, err: unknown): void {
    s.failed++;
    try {
      this.d.onFailure?.(s.name, err);
    } catch {
      // a failing failure report must not stop delivery either
    }
  }

  private get idle(): boolean {
    return !this.scheduled && this.subs.every((s) => !s.busy && s.queued === 0);
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.idle) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const fn of w) fn();
  }

  /** Resolves once every event published so far has been handed to every subscriber (and their promises settled). */
  drained(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** All subscribers together, for the stats registry (`events.*`). */
  totals(): { published: number; delivered: number; failed: number; dropped: number; queued: number } {
    const t = { published: this.published, delivered: 0, failed: 0, dropped: 0, queued: 0 };
    for (const s of this.subs) {
      t.delivered += s.delivered;
      t.failed += s.failed;
      t.dropped += s.dropped;
      t.queued += s.queued;
    }
    return t;
  }

  stats(): { published: number; subscribers: SubscriberStats[] } {
    return { published: this.published, subscribers: this.subs.map((s) => ({ name: s.name, delivered: s.delivered, failed: s.failed, dropped: s.dropped, queued: s.queued })) };
  }
}
