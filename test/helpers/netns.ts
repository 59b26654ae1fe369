/**
 * Isolated test networks built from Linux network namespaces.
 *
 * Every network test runs bootd and its clients only inside namespaces made
 * here: named `bootd-t<pid>x<random>-<host>`, joined by veth pairs to a bridge
 * (or to the impairing relay) in a namespace of their own, with addresses in
 * 198.18.0.0/24 (RFC 2544's benchmarking range) that exist nowhere else, no
 * link to the root namespace and no default route. `destroy()` kills what the
 * test started, by PID, and deletes the namespaces; call it from afterAll so
 * it runs when a test fails too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { execa } from 'execa';

export const NS_PREFIX = 'bootd-t';
export const SUBNET = '198.18.0';

/** Why network tests cannot run here, or null when they can (root, ip, /run writable). */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (CI runs as root)';
  if (!existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip') && !existsSync('/usr/bin/ip')) return 'needs iproute2 (scripts/setup.sh installs it)';
  return null;
}

export interface TestHost {
  readonly name: string;
  readonly ns: string;
  readonly ifname: 'eth0';
  readonly address: string;
}

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  readonly timedOut: boolean;
}

export type Link = { readonly kind: 'bridge' } | { readonly kind: 'impaired'; readonly loss: number; readonly delayUs: number; readonly seed: number; readonly relayBinary: string };

export interface TestNetOptions {
  readonly hosts: readonly string[];
  readonly link?: Link;
}

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args, { timeout: 15_000 });
}

export class TestNet {
  readonly id: string;
  readonly hosts: Record<string, TestHost> = {};
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  readonly switchNs: string;

  private constructor() {
    this.id = `${NS_PREFIX}${process.pid}x${randomBytes(3).toString('hex')}`;
    this.switchNs = `${this.id}-sw`;
  }

  static async create(opts: TestNetOptions): Promise<TestNet> {
    const net = new TestNet();
    try {
      await net.build(opts);
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  private async addNs(name: string): Promise<void> {
    await ip('netns', 'add', name);
    this.namespaces.push(name);
    await ip('-n', name, 'link', 'set', 'lo', 'up');
  }

  private async build(opts: TestNetOptions): Promise<void> {
    const link = opts.link ?? { kind: 'bridge' };
    if (link.kind === 'impaired' && opts.hosts.length !== 2) throw new Error('an impaired link joins exactly two hosts');
    await this.addNs(this.switchNs);
    if (link.kind === 'bridge') {
      await ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
      await ip('-n', this.switchNs, 'link', 'set', 'br0', 'up');
    }
    let i = 1;
    for (const name of opts.hosts) {
      const ns = `${this.id}-${name}`;
      await this.addNs(ns);
      const peer = `p${i}`;
      await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', peer, 'netns', this.switchNs);
      const address = `${SUBNET}.${i}`;
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      if (link.kind === 'bridge') await ip('-n', this.switchNs, 'link', 'set', peer, 'master', 'br0');
      else {
        // the relay re-sends frames verbatim, so they must carry complete checksums
        await execa('ip', ['netns', 'exec', ns, 'ethtool', '-K', 'eth0', 'tx', 'off'], { reject: false });
        await execa('ip', ['netns', 'exec', this.switchNs, 'ethtool', '-K', peer, 'tx', 'off'], { reject: false });
      }
      await ip('-n', this.switchNs, 'link', 'set', peer, 'up');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      this.hosts[name] = { name, ns, ifname: 'eth0', address };
      i++;
    }
    if (link.kind === 'impaired') {
      const relay = this.spawnIn(this.switchNs, [link.relayBinary, 'p1', 'p2', String(link.loss), String(link.delayUs), String(link.seed), '600']);
      relay.stderr?.resume();
    }
    // wait until the hosts can reach each other (bridge ports start in "listening")
    const [a, b] = opts.hosts;
    if (a && b) {
      const target = this.host(b).address;
      for (let t = 0; t < 50; t++) {
        const r = await this.run(a, ['ping', '-c', '1', '-W', '1', target], { timeoutMs: 3000 });
        if (r.exitCode === 0) return;
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error(`test network ${this.id}: ${a} cannot reach ${b}`);
    }
  }

  /**
   * Adds a host on a segment of its own, joined by one veth to `via` (which
   * gets `viaIfname` with `viaCidr`): a client behind a relay, say. The new
   * host's eth0 has no address.
   */
  async addHostBehind(name: string, via: string, viaIfname: string, viaCidr: string): Promise<TestHost> {
    const ns = `${this.id}-${name}`;
    await this.addNs(ns);
    await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', viaIfname, 'netns', this.host(via).ns);
    await ip('-n', this.host(via).ns, 'addr', 'add', viaCidr, 'dev', viaIfname);
    await ip('-n', this.host(via).ns, 'link', 'set', viaIfname, 'up');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    const h: TestHost = { name, ns, ifname: 'eth0', address: '' };
    this.hosts[name] = h;
    return h;
  }

  /**
   * A tap on the test bridge, in the switch namespace, for a QEMU VM that
   * `spawnOnSwitch` starts there (it opens the tap by name).
   */
  async addTap(tap: string): Promise<void> {
    await ip('-n', this.switchNs, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
    await ip('-n', this.switchNs, 'link', 'set', tap, 'master', 'br0');
    await ip('-n', this.switchNs, 'link', 'set', tap, 'up');
  }

  /** Starts a long-running process in the switch namespace (a QEMU VM on a tap); destroy() ends it. */
  spawnOnSwitch(argv: readonly string[]): ChildProcess {
    return this.spawnIn(this.switchNs, argv);
  }

  host(name: string): TestHost {
    const h = this.hosts[name];
    if (!h) throw new Error(`no host ${name} in ${this.id}`);
    return h;
  }

  /** Runs a command to completion inside a host's namespace. Never rejects. */
  async run(host: string, argv: readonly string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
    const start = performance.now();
    const r = await execa('ip', ['netns', 'exec', this.host(host).ns, ...argv], {
      reject: false,
      timeout: opts.timeoutMs ?? 120_000,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      stdin: 'ignore',
    });
    return {
      exitCode: r.exitCode ?? -1,
      stdout: String(r.stdout),
      stderr: String(r.stderr),
      durationMs: performance.now() - start,
      timedOut: r.timedOut === true,
    };
  }

  /** Makes a host a DHCP client: no address on eth0, and the given MAC. */
  async dhcpClient(host: string, mac: string): Promise<void> {
    await this.run(host, ['ip', 'addr', 'flush', 'dev', 'eth0']);
    await this.run(host, ['ip', 'link', 'set', 'eth0', 'address', mac]);
  }

  /**
   * Lets a host's sockets send to 255.255.255.255 (a namespace without a
   * default route has no route for the limited broadcast): a host route on
   * the test bridge only, nothing out.
   */
  async limitedBroadcast(host: string): Promise<void> {
    await this.run(host, ['ip', 'route', 'add', '255.255.255.255/32', 'dev', 'eth0']);
  }

  /** Starts a long-running process in a host's namespace; destroy() ends it. */
  spawn(host: string, argv: readonly string[]): ChildProcess {
    return this.spawnIn(this.host(host).ns, argv);
  }

  private spawnIn(ns: string, argv: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Kills every process this net started (SIGTERM, then SIGKILL), then deletes its namespaces. */
  async destroy(): Promise<void> {
    const alive = [...this.children];
    for (const c of alive) c.kill('SIGTERM');
    const deadline = Date.now() + 5000;
    while (this.children.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const c of this.children) c.kill('SIGKILL');
    for (const ns of this.namespaces.reverse()) {
      // anything still inside is ours: it could only have been started in our namespace
      const pids = await execa('ip', ['netns', 'pids', ns], { reject: false });
      for (const pid of String(pids.stdout).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await execa('ip', ['netns', 'del', ns], { reject: false });
    }
    this.namespaces.length = 0;
  }
}

/** Deletes namespaces left by earlier test runs whose process is gone (a crash, a kill -9). */
export async function removeStaleNamespaces(): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  const removed: string[] = [];
  for (const line of String(r.stdout).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^bootd-t(\d+)x[0-9a-f]+-/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) {
      await execa('ip', ['netns', 'del', name], { reject: false });
      removed.push(name);
    }
  }
  return removed;
}
