/**
 * Keeps the open machine ports, and the stored assignment, equal to what
 * they should be: the build hosts of hosts/*.yaml plus the machines opened
 * from the CLI that have not expired (`plan()`). Changes run one at a time;
 * the ports are changed first, then the record, so `machines list` never
 * drops an expired machine while its port still takes uploads, and nothing
 * is acknowledged before both are done. Expiry is checked every two
 * seconds on the injected clock.
 */
import type { Logger } from '../log.js';
import type { Clock, TimerHandle } from '../net/clock.js';
import { expired, plan, type BuildHost, type Machine, type MachineStore } from './registry.js';

export interface ReconcilerDeps {
  readonly store: MachineStore;
  /** Makes the running ports match (MachinePorts.apply). */
  readonly apply: (machines: readonly Machine[]) => Promise<void>;
  /** The build hosts hosts/*.yaml names now. */
  readonly buildHosts: () => readonly BuildHost[];
  readonly range: { readonly first: number; readonly last: number };
  readonly clock: Clock;
  readonly log: Logger;
  /** How often expiry is checked (default 2 s). */
  readonly checkEveryMs?: number;
}

export class MachineReconciler {
  private chain: Promise<void> = Promise.resolve();
  private timer: TimerHandle | null = null;
  private closed = false;

  private constructor(
    private readonly d: ReconcilerDeps,
    private current: readonly Machine[],
  ) {}

  /** Loads the stored assignment, applies it once and starts the expiry checks. */
  static async start(d: ReconcilerDeps): Promise<MachineReconciler> {
    const r = new MachineReconciler(d, await d.store.load());
    await r.reconcile();
    r.schedule();
    return r;
  }

  /** The assignment as last stored. */
  get machines(): readonly Machine[] {
    return this.current;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.d.clock.setTimer(this.d.checkEveryMs ?? 2000, () => {
      const now = new Date(this.d.clock.wallNow());
      if (this.current.some((m) => expired(m, now))) void this.reconcile().catch(() => {});
      this.schedule();
    });
  }

  /** Re-plans (after `change`, if given, to the stored list) and applies; resolves once ports and record are both done. */
  reconcile(change?: (ms: Machine[]) => Machine[]): Promise<void> {
    const run = this.chain.then(async () => {
      const base = change ? change([...this.current]) : [...this.current];
      const r = plan(base, this.d.buildHosts(), this.d.range, new Date(this.d.clock.wallNow()));
      for (const n of r.noPort) this.d.log.error({ svc: 'machines', machine: n, range: `${this.d.range.first}-${this.d.range.last}` }, 'no free machine port');
      await this.d.apply(r.machines);
      if (JSON.stringify(r.machines) !== JSON.stringify(this.current)) {
        await this.d.store.save(r.machines);
        this.current = r.machines;
      }
    });
    this.chain = run.catch((err: unknown) => this.d.log.error({ svc: 'machines', err: String(err) }, 'machine ports update failed'));
    return run;
  }

  /** Stops the expiry checks and waits for the change in progress. */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    await this.chain;
  }
}
