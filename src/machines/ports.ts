/**
 * One write-enabled TFTP server per open build machine, each on the port its
 * assignment names and rooted at <dir>/<name>/. `apply()` makes the running
 * servers match a list of machines: closes the ones that went away (their
 * transfers end with an ERROR), opens the new ones.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { Clock } from '../net/clock.js';
import type { MtuLookup } from '../net/mtu.js';
import type { UdpSocketFactory } from '../net/udp.js';
import { TftpServer } from '../tftp/server.js';
import type { TimingConfig } from '../tftp/session.js';
import { FileCache } from '../files/source.js';
import type { EventSink } from '../events/types.js';
import { MachineDir } from './machine-dir.js';
import type { Machine } from './registry.js';

export interface MachinePortsDeps {
  readonly udp: UdpSocketFactory;
  readonly clock: Clock;
  readonly mtu: MtuLookup;
  readonly log: Logger;
  readonly listen: string;
  readonly dir: string;
  readonly maxBlksize: number;
  readonly maxWindowsize: number;
  readonly timing: TimingConfig;
  readonly ownerAddress: (m: Machine) => string | undefined;
  /** Where the machines' transfers are published (protocol `machine`). */
  readonly events?: EventSink;
}

interface Open {
  readonly m: Machine;
  readonly server: TftpServer;
}

function same(a: Machine, b: Machine): boolean {
  return a.port === b.port && a.quotaBytes === b.quotaBytes && a.overwrite === b.overwrite && a.owner.mac === b.owner.mac && a.owner.ip === b.owner.ip;
}

export class MachinePorts {
  private readonly open = new Map<string, Open>();
  /** Machines whose port could not be bound, with why. */
  readonly failed = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly d: MachinePortsDeps) {}

  /** The machines being served now, with their port. */
  list(): Machine[] {
    return [...this.open.values()].map((o) => o.m);
  }

  apply(machines: readonly Machine[]): Promise<void> {
    const run = this.chain.then(() => this.applyNow(machines));
    this.chain = run.catch(() => {});
    return run;
  }

  private async applyNow(machines: readonly Machine[]): Promise<void> {
    const want = new Map(machines.map((m) => [m.name, m]));
    for (const [name, o] of [...this.open]) {
      const w = want.get(name);
      if (w && same(w, o.m)) {
        this.open.set(name, { m: w, server: o.server }); // expiry and the like may change in place
        continue;
      }
      this.open.delete(name);
      await o.server.close();
      this.d.log.info({ svc: 'machines', machine: name, port: o.m.port }, 'machine port closed');
    }
    this.failed.clear();
    for (const m of machines) {
      if (this.open.has(m.name)) continue;
      const dir = new MachineDir(this.d.dir, { name: m.name, ownerAddress: () => this.d.ownerAddress(m), quotaBytes: m.quotaBytes, overwrite: m.overwrite });
      await fs.mkdir(dir.dir, { recursive: true, mode: 0o755 });
      let listener;
      try {
        listener = await this.d.udp.bind({ address: this.d.listen, port: m.port });
      } catch (err) {
        this.failed.set(m.name, (err as Error).message);
        this.d.log.error({ svc: 'machines', machine: m.name, port: m.port, err: (err as Error).message }, 'cannot open machine port');
        continue;
      }
      const server = new TftpServer({
        listener,
        udp: this.d.udp,
        clock: this.d.clock,
        root: dir,
        cache: new FileCache(0),
        mtu: this.d.mtu,
        log: this.d.log.child({ svc: 'machines', machine: m.name }),
        writes: dir,
        ...(this.d.events ? { events: { sink: this.d.events, protocol: 'machine' as const, storedAt: (file: string) => path.join(this.d.dir, file) } } : {}),
        config: { maxTransfers: 16, maxBlksize: this.d.maxBlksize, maxWindowsize: this.d.maxWindowsize, timing: this.d.timing, transferAddress: this.d.listen },
      });
      this.open.set(m.name, { m, server });
      this.d.log.info({ svc: 'machines', machine: m.name, port: server.address.port, dir: dir.dir, owner: m.owner, quotaBytes: m.quotaBytes, expiresAt: m.expiresAt }, 'machine port open');
    }
  }

  async close(): Promise<void> {
    await this.chain;
    await Promise.all([...this.open.values()].map((o) => o.server.close()));
    this.open.clear();
  }
}
