/**
 * Shared quota for uploads into one directory. Each upload holds a
 * reservation from the moment its WRQ is accepted; the bytes it writes grow
 * it, and growth beyond the quota (disk usage plus every reservation of the
 * directory) fails that upload's write. So concurrent uploads together never
 * exceed the quota, whatever each was told at its start. A commit turns the
 * reservation into disk usage; a discard gives it back. Pure bookkeeping.
 */

interface Account {
  /** Bytes of whole files on disk (measured at each new upload, moved by commits since). */
  disk: number;
  readonly reservations: Set<Reservation>;
}

export class QuotaLedger {
  private readonly accounts = new Map<string, Account>();

  /**
   * A reservation in `key`'s directory for an upload that may replace a file
   * of `credit` bytes (freed by its rename), with the disk usage just
   * measured; null when nothing is free. `free` is what it may write now.
   */
  open(key: string, quota: number, measuredDisk: number, credit: number): { reservation: Reservation; free: number } | null {
    let a = this.accounts.get(key);
    if (!a) this.accounts.set(key, (a = { disk: measuredDisk, reservations: new Set() }));
    a.disk = measuredDisk;
    const free = quota - a.disk - this.reserved(a) + credit;
    if (free <= 0) return null;
    const r = new Reservation(quota, credit, a, (x) => this.close(key, x));
    a.reservations.add(r);
    return { reservation: r, free };
  }

  private reserved(a: Account): number {
    let n = 0;
    for (const r of a.reservations) n += r.bytes;
    return n;
  }

  /** Bytes reserved in `key` now (for tests and status). */
  reservedIn(key: string): number {
    const a = this.accounts.get(key);
    return a ? this.reserved(a) : 0;
  }

  private close(key: string, r: Reservation): void {
    const a = this.accounts.get(key);
    if (!a) return;
    a.reservations.delete(r);
    if (a.reservations.size === 0) this.accounts.delete(key);
  }
}

export class Reservation {
  bytes = 0;
  private done = false;

  constructor(
    private readonly quota: number,
    private readonly credit: number,
    private readonly account: Account,
    private readonly onClose: (r: Reservation) => void,
  ) {}

  /** The upload now holds `total` bytes; false (and no change) when that would pass the quota. */
  grow(total: number): boolean {
    if (this.done || total <= this.bytes) return !this.done;
    let others = 0;
    for (const r of this.account.reservations) if (r !== this) others += r.bytes;
    if (this.account.disk + others + total - this.credit > this.quota) return false;
    this.bytes = total;
    return true;
  }

  /** The upload is on disk under its name: its bytes count as disk usage now. */
  commit(): void {
    if (this.done) return;
    this.done = true;
    this.account.disk += this.bytes - this.credit;
    this.onClose(this);
  }

  release(): void {
    if (this.done) return;
    this.done = true;
    this.onClose(this);
  }
}
