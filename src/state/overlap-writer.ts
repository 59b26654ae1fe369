/**
 * Moments written side by side: like MomentWriter (every caller of one turn
 * of the event loop shares one write), but a moment's write need not wait
 * for the previous one to finish, only for earlier writes that touch one of
 * the same keys (a key written twice is written in order) and for a free
 * slot (at most `maxInFlight`). A storm's ACKs of one moment then wait for
 * their own commit, not for the commit before it as well: the p99 of a
 * database round trip, not of two.
 *
 * `take()` runs once per moment, when the moment closes, and returns the
 * keys it will write; `write(taken)` writes them.
 */
export class OverlapWriter<T> {
  private pending: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;
  /** Unfinished writes, oldest first. */
  private readonly unfinished: { keys: ReadonlySet<string>; done: Promise<void> }[] = [];

  constructor(
    private readonly take: () => { keys: ReadonlySet<string>; value: T } | null,
    private readonly write: (value: T) => Promise<void>,
    private readonly maxInFlight = 3,
  ) {}

  request(): Promise<void> {
    if (this.pending) return this.pending.promise;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.pending = { promise, resolve, reject };
    setImmediate(() => this.launch());
    return promise;
  }

  private launch(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    let taken: { keys: ReadonlySet<string>; value: T } | null;
    try {
      taken = this.take();
    } catch (err) {
      p.reject(err);
      return;
    }
    if (taken === null) {
      p.resolve();
      return;
    }
    const { keys, value } = taken;
    // what this write must follow: earlier unfinished writes of a key it writes too
    const before = this.unfinished.filter((w) => [...keys].some((k) => w.keys.has(k))).map((w) => w.done);
    const entry: { keys: ReadonlySet<string>; done: Promise<void> } = { keys, done: Promise.resolve() };
    entry.done = (async () => {
      try {
        await Promise.all(before.map((d) => d.catch(() => {})));
        // a slot: at most maxInFlight unfinished writes ahead of this one (each leaves the list as it settles)
        for (let at = this.unfinished.indexOf(entry); at >= this.maxInFlight; at = this.unfinished.indexOf(entry)) {
          await Promise.race(this.unfinished.slice(0, at).map((w) => w.done.catch(() => {})));
        }
        await this.write(value);
      } finally {
        const i = this.unfinished.indexOf(entry);
        if (i >= 0) this.unfinished.splice(i, 1);
      }
    })();
    this.unfinished.push(entry);
    entry.done.then(p.resolve, p.reject);
  }

  /** Resolves when nothing is pending or being written. */
  async settled(): Promise<void> {
    while (this.pending || this.unfinished.length > 0) {
      await (this.pending?.promise ?? Promise.resolve()).catch(() => {});
      await Promise.all(this.unfinished.map((w) => w.done.catch(() => {})));
    }
  }
}
