/**
 * A lab boot against two bootd instances on one segment and one database
 * (issue 22): real firmware (SeaBIOS, QEMU's iPXE ROM, PXELINUX: lab mode
 * 1) netboots bee from the leader, which records the boot, the audit and the
 * smoke result in PostgreSQL; the leader is killed with SIGKILL, the standby
 * takes the segment over, and the same VM, powered on again, boots through
 * the new leader with the address it had. The host's record in the database
 * shows both boots, each with one smoke test, run by the instance that
 * served it.
 *
 * Both instances and the VM sit in namespaces of the test's own (two veth
 * hosts and a tap on one bridge, nothing out); the cluster is the test's own
 * (initdb, unix socket). Needs root, QEMU and PostgreSQL 15: CI has them.
 * The image is the lab's bee (built on first use, as test/lab/netboot.test.ts
 * does, with the lab's SSH key).
 */
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeBootLoaders } from '../../src/bootconfig/bootloaders.js';
import { ensureImage } from '../../src/lab/lab.js';
import { QEMU, prepareFirmwareFile, probeAccel, qemuArgs } from '../../src/lab/qemu.js';
import { UP_MARKER } from '../../src/lab/timeline.js';
import { BOOTD_BIN, REPO, startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { postgresUnavailable, startCluster, stopFleet, type TestCluster } from '../helpers/postgres.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable() ?? postgresUnavailable() ?? (process.getuid?.() !== 0 ? 'QEMU taps need root; CI runs as root' : null);
if (skip) console.warn(`SKIPPED fleet lab boot: ${skip}`);

// the lab's image state (test/lab/netboot.test.ts): one build, one SSH key
const STATE = path.join(REPO, '.cache', 'lab-state');
const CACHE = path.join(REPO, '.cache', 'images');
const MAC = '52:54:00:b0:07:21';

interface HostStatus {
  readonly name: string;
  readonly boots: readonly { readonly ip?: string; readonly phase: string; readonly startedAt: string; readonly smoke?: { readonly ok: boolean } | null; readonly events: readonly { readonly kind: string }[] }[];
  readonly inventory: unknown;
}

describe.skipIf(skip !== null)('a lab boot against two instances on one database', () => {
  let net: TestNet;
  let cluster: TestCluster;
  let dir: string;
  let url: string;
  let privateKey: string;
  const running: RunningBootd[] = [];

  const serve = async (host: 's1' | 's2', force: boolean): Promise<RunningBootd> => {
    const b = await startBootd(net, host, [
      '--interface', 'eth0', '--listen', net.host(host).address, '--dhcp-range', '198.18.0.100-198.18.0.150',
      // each instance reads its own copy of hosts/ (a checkout each)
      '--hosts', path.join(dir, `hosts-${host}`), '--images', path.join(REPO, 'images'), '--state', path.join(dir, `state-${host}`),
      '--tftp-root', path.join(dir, 'tftp'), '--http-port', '80', '--report-tftp-port', '1069', '--kernel-args', 'console=ttyS0,115200',
      '--state-url', url, '--segment', 'lab', '--admin-listen', 'off', ...(force ? ['--force'] : ['--dhcp-probe-ms', '1500']),
    ], 'dhcp listening');
    running.push(b);
    return b;
  };

  const hostStatus = async (): Promise<HostStatus | undefined> => {
    const r = await execa(process.execPath, [BOOTD_BIN, 'status', '--json', '--state-url', url, '--state', path.join(dir, 'state-none')], { reject: false, timeout: 30_000 });
    if (r.exitCode !== 0) return undefined;
    return (JSON.parse(r.stdout) as { hosts: HostStatus[] }).hosts.find((h) => h.name === 'vm1');
  };

  /** The boot that started last (whatever order the record keeps them in). */
  const latest = (h: HostStatus | undefined): HostStatus['boots'][number] | undefined => [...(h?.boots ?? [])].sort((a, b) => a.startedAt.localeCompare(b.startedAt)).at(-1);

  /** Powers the VM on (mode 1), waits until the database holds `boots` boots of it with a finished smoke test, powers it off. */
  const bootOnce = async (n: number, accel: 'kvm' | 'tcg'): Promise<void> => {
    const serialLog = path.join(dir, `vm1.serial.${n}.log`);
    const firmwareFile = path.join(dir, 'vm1.sercon-port');
    await prepareFirmwareFile({ firmware: 'bios', firmwareFile });
    await writeFile(serialLog, '');
    const vm = net.spawnOnSwitch([QEMU, ...qemuArgs({ name: 'vm1', mac: MAC, uuid: 'b0070000-0000-4000-8000-525400b00721', tap: 'tap0', firmware: 'bios', rom: 'ipxe', memoryMiB: 1024, accel, serialLog, firmwareFile })]);
    vm.stdout?.resume();
    vm.stderr?.resume();
    try {
      await until(async () => UP_MARKER.test(await readFile(serialLog, 'latin1')), 600_000, `boot ${n}: the BOOTD-UP marker`);
      await until(async () => {
        const h = await hostStatus();
        return (h?.boots.length ?? 0) >= n && latest(h)?.smoke != null;
      }, 240_000, `boot ${n}: its smoke test in the database`);
    } finally {
      vm.kill('SIGKILL');
    }
  };

  beforeAll(async () => {
    dir = await makeWorkDir('fleet-lab');
    const { key } = await ensureImage({ imagesDir: path.join(REPO, 'images'), image: 'bee', stateDir: STATE, cacheDir: CACHE, build: true }, { line: (l) => console.log(l), signal: new AbortController().signal });
    privateKey = key.privateKey;
    const loaders = await placeBootLoaders(path.join(dir, 'tftp'));
    expect(loaders.missing).toEqual([]);
    for (const h of ['s1', 's2']) {
      await mkdir(path.join(dir, `hosts-${h}`), { recursive: true });
      await writeFile(path.join(dir, `hosts-${h}`, 'vm1.yaml'), `mac: ${MAC}\nimage: bee\nloader: pxelinux\nsmoke:\n  identity_file: ${privateKey}\n`);
    }
    cluster = await startCluster();
    url = await cluster.createDb('bootd');
    net = await TestNet.create({ hosts: ['s1', 's2'] });
    await net.addTap('tap0');
    await net.limitedBroadcast('s1');
    await net.limitedBroadcast('s2');
  }, 1_500_000);

  afterAll(() => stopFleet({ running, nets: [net], cluster, dir }));

  it('boots through the leader, and after the leader is killed with SIGKILL through the new leader with the same address; one smoke test per boot', { timeout: 1_600_000 }, async () => {
    const accel = (await probeAccel(dir, 'auto')).accel;
    const s1 = await serve('s1', true);
    const s2 = await serve('s2', false);
    expect(s1.logs.find((l) => l.msg === 'dhcp listening')).toMatchObject({ leading: true });
    expect(s2.logs.find((l) => l.msg === 'dhcp listening')).toMatchObject({ leading: false });

    // boot 1: through s1
    await bootOnce(1, accel);
    const first = await hostStatus();
    const b1 = latest(first);
    expect(b1?.phase, JSON.stringify(b1)).toBe('smoke-passed');
    for (const k of ['dhcp', 'file', 'os-dhcp', 'audit', 'smoke']) expect(b1?.events.map((e) => e.kind)).toContain(k);
    expect(first?.inventory).toBeTruthy();
    const address = b1?.ip ?? '';
    expect(address).toMatch(/^198\.18\.0\.1\d\d$/);
    const acked = (b: RunningBootd): number => b.logs.filter((l) => l.msg === 'dhcp ack' && l.mac === MAC).length;
    expect(acked(s1)).toBeGreaterThanOrEqual(2); // the firmware's and the OS's DHCP
    expect(acked(s2)).toBe(0);
    const smokes = (b: RunningBootd): number => b.logs.filter((l) => l.msg === 'smoke test finished' && l.host === 'vm1').length;
    expect(smokes(s1)).toBe(1);
    expect(smokes(s2)).toBe(0);

    // the leader dies; the standby takes the segment within 5 s
    const killedAt = Date.now();
    await s1.stop('SIGKILL');
    await until(() => s2.logs.some((l) => l.msg === 'dhcp: leading the segment'), 5000, 's2 to lead within 5 s');
    console.log(`takeover ${Date.now() - killedAt} ms after SIGKILL`);

    // boot 2: the same VM through s2, the same address, a second boot record with its own smoke test
    await bootOnce(2, accel);
    const second = await hostStatus();
    expect(second?.boots.length).toBe(2);
    const b2 = latest(second);
    expect(b2?.phase, JSON.stringify(b2)).toBe('smoke-passed');
    expect(b2?.ip).toBe(address);
    expect(b2?.startedAt).not.toBe(b1?.startedAt);
    expect(acked(s2)).toBeGreaterThanOrEqual(2);
    expect(smokes(s2)).toBe(1);
    expect(await cluster.psql('bootd', `SELECT host(address) FROM lease4 WHERE hwaddr = '${MAC}'`)).toBe(address);
  });
});
