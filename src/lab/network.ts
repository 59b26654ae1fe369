/**
 * The lab's network: one namespace of its own with a bridge and one tap per
 * VM, and nothing else. No veth to the root namespace, no route out: bootd's
 * DHCP inside cannot reach any other machine (DEVELOPERS.md, network safety).
 *
 * Names are `bootd-lab-<pid>-<random>`, so a namespace whose creator is dead
 * (kill -9) is recognised and removed by the next run.
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

export const LAB_NS_PREFIX = 'bootd-lab-';
const OURS = /^bootd-lab-(\d+)-[0-9a-f]+$/;

export interface LabAddressing {
  /** First three octets of the lab's /24, e.g. 198.18.77 (RFC 2544 benchmarking space). */
  readonly subnet: string;
  /** A /64 for IPv6 router advertisements (iPXE waits ~13 s for SLAAC without them: WIRE.md). */
  readonly ula: string;
}

export const LAB_ADDRESSING: LabAddressing = { subnet: '198.18.77', ula: 'fd00:b007:77:1' };

async function ip(args: string[]): Promise<void> {
  await execa('ip', args, { timeout: 10_000 });
}

async function nsList(): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list'], { reject: false, timeout: 10_000 });
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every process inside a namespace we created is ours: end them, then the namespace. */
async function removeNamespace(ns: string): Promise<void> {
  const r = await execa('ip', ['netns', 'pids', ns], { reject: false, timeout: 10_000 });
  for (const p of r.stdout.split('\n').map(Number).filter((n) => n > 0)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await execa('ip', ['netns', 'del', ns], { reject: false, timeout: 10_000 });
}

export class LabNetwork {
  readonly bridge = 'br0';
  readonly prefix = 24;
  private destroyed = false;

  private constructor(
    readonly ns: string,
    readonly addressing: LabAddressing,
    readonly taps: readonly string[],
  ) {}

  /** bootd's address inside the lab. */
  get serverIp(): string {
    return `${this.addressing.subnet}.1`;
  }

  get range(): [string, string] {
    return [`${this.addressing.subnet}.100`, `${this.addressing.subnet}.199`];
  }

  /** Namespaces of earlier lab runs whose process is gone. */
  static async removeStale(): Promise<string[]> {
    const removed: string[] = [];
    for (const ns of await nsList()) {
      const m = OURS.exec(ns);
      if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
      await removeNamespace(ns);
      removed.push(ns);
    }
    return removed;
  }

  static async create(vms: number, addressing: LabAddressing = LAB_ADDRESSING, ra = true): Promise<LabNetwork> {
    const ns = `${LAB_NS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
    await ip(['netns', 'add', ns]);
    const taps = Array.from({ length: vms }, (_, i) => `tap${i}`);
    const net = new LabNetwork(ns, addressing, taps);
    try {
      const n = ['-n', ns];
      await ip([...n, 'link', 'set', 'lo', 'up']);
      if (!ra) await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { timeout: 10_000 });
      await ip([...n, 'link', 'add', net.bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
      await ip([...n, 'addr', 'add', `${net.serverIp}/${net.prefix}`, 'dev', net.bridge]);
      if (ra) await ip([...n, 'addr', 'add', `${addressing.ula}::1/64`, 'dev', net.bridge, 'nodad']);
      await ip([...n, 'link', 'set', net.bridge, 'up']);
      for (const t of taps) {
        // created inside the namespace; QEMU opens it by name (ifname=, script=no)
        await ip([...n, 'tuntap', 'add', 'dev', t, 'mode', 'tap']);
        await ip([...n, 'link', 'set', t, 'master', net.bridge]);
        await ip([...n, 'link', 'set', t, 'up']);
      }
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  /** argv that runs `argv` inside the namespace (ip netns exec execs it: the PID is the program's). */
  exec(argv: readonly string[]): string[] {
    return ['ip', 'netns', 'exec', this.ns, ...argv];
  }

  /** Ends whatever still runs inside and deletes the namespace (taps and bridge go with it). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await removeNamespace(this.ns);
  }

  static async exists(ns: string): Promise<boolean> {
    return (await nsList()).includes(ns);
  }
}
