/**
 * One write per moment: every caller in the same turn of the event loop gets
 * the same promise, which resolves once the write that includes their change
 * is done. Writes never overlap; a change made while one runs goes into the
 * next. Shared by the lease store (an ACK waits for it) and the host store.
 */
export class MomentWriter {
  private next: Promise<void> | null = null;
  private current: Promise<void> = Promise.resolve();

  /** `write` runs after this moment's other changes joined; it reads the state at that time. */
  constructor(private readonly write: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.next) return this.next;
    const run = async (): Promise<void> => {
      await this.current.catch(() => {});
      await new Promise<void>((r) => setImmediate(r)); // let this moment's other changes join
      this.next = null; // changes from here on go into the following write
      const w = this.write();
      this.current = w;
      await w;
    };
    this.next = run();
    return this.next;
  }

  /** Resolves when nothing is pending or being written. */
  async settled(): Promise<void> {
    await (this.next ?? this.current).catch(() => {});
  }
}
