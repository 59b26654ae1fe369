/**
 * Two bootd instances on two segments (two test networks, each its own
 * bridge) sharing one database (a cluster the test starts itself): a boot
 * served by rack A's instance shows in rack B's dashboard API and in
 * `bootd status --state-url` within a second; both list the instances; and
 * when rack B's hosts/ checkout differs from rack A's, the dashboard and
 * `bootd status` warn that the instances serve different host sets.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOTD_BIN, runCli, startBootd, type RunningBootd } from '../helpers/bootd.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { postgresUnavailable, startCluster, stopFleet, type TestCluster } from '../helpers/postgres.js';
import { PXE_BIOS, udhcpcOnce, udhcpcScript } from '../helpers/udhcpc.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable() ?? postgresUnavailable();
if (skip) console.warn(`SKIPPED fleet instance tests: ${skip}`);

const WEB1 = '52:54:00:7c:00:01';

describe.skipIf(skip !== null)('instances on two segments sharing one database (network namespaces, a cluster of the test\'s own)', () => {
  let cluster: TestCluster;
  let url: string;
  let dir: string;
  let rackA: TestNet;
  let rackB: TestNet;
  const running: RunningBootd[] = [];
  const hostsOf = (rack: string): string => path.join(dir, `hosts-${rack}`);

  const serve = async (net: TestNet, rack: string): Promise<RunningBootd> => {
    const b = await startBootd(
      net,
      'server',
      ['--interface', 'eth0', '--listen', net.host('server').address, '--dhcp-range', '198.18.0.100-198.18.0.150', '--force', '--tftp-root', path.join(dir, 'root'), '--hosts', hostsOf(rack), '--images', path.join(dir, 'images'), '--state', path.join(dir, `state-${rack}`), '--state-url', url, '--segment', rack, '--instance', rack, '--admin-listen', '127.0.0.1:9267'],
      'admin listening',
    );
    running.push(b);
    return b;
  };
  const api = async <T,>(net: TestNet, p: string): Promise<T> => {
    const r = await net.run('server', ['curl', '-sf', '--max-time', '3', `http://127.0.0.1:9267${p}`]);
    if (r.exitCode !== 0) throw new Error(`GET ${p}: curl exit ${r.exitCode}`);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    dir = await makeWorkDir('fleet-instances');
    cluster = await startCluster();
    url = await cluster.createDb('bootd');
    await addRecipe(path.join(dir, 'images'), 'bee');
    await addVersion(path.join(dir, 'images'), { name: 'bee', version: '1.0', current: true });
    for (const rack of ['a', 'b']) {
      await mkdir(hostsOf(rack));
      await writeFile(path.join(hostsOf(rack), 'web-1.yaml'), `mac: ${WEB1}\nimage: bee\n`);
    }
    await udhcpcScript(dir);
    rackA = await TestNet.create({ hosts: ['server', 'web1'] });
    rackB = await TestNet.create({ hosts: ['server'] });
    await rackA.dhcpClient('web1', WEB1);
    await rackA.limitedBroadcast('server');
    await rackB.limitedBroadcast('server');
  }, 120_000);

  afterAll(() => stopFleet({ running, nets: [rackA, rackB], cluster, dir }));

  it('a boot served in rack A shows in rack B\'s dashboard and in bootd status within a second; a different host set is warned about', async () => {
    await serve(rackA, 'a');
    const b = await serve(rackB, 'b');
    type Instances = { self: string; agree: boolean; instances: { id: string; segment: string; leading: boolean }[] };
    await until(async () => (await api<Instances>(rackB, '/api/instances')).instances.length === 2, 10_000, 'rack B to see both instances');
    const seen = await api<Instances>(rackB, '/api/instances');
    expect(seen).toMatchObject({ self: 'b', agree: true });
    expect(seen.instances.map((i) => [i.id, i.segment, i.leading])).toEqual([['a', 'a', true], ['b', 'b', true]]);

    // web-1 boots in rack A: its PXE ROM's DHCP, answered by instance a
    const t0 = Date.now();
    const d = await udhcpcOnce(rackA, 'web1', path.join(dir, 'udhcpc.sh'), { vendorClass: PXE_BIOS });
    expect(d.exitCode, d.stderr).toBe(0);
    // the fleet page's row (what the page shows, and what its live stream sends) and the host's page
    type Fleet = { items: { name: string; phase: string | null; boots: number }[] };
    await until(async () => ((await api<Fleet>(rackB, '/api/fleet?q=web-1')).items[0]?.boots ?? 0) > 0, 3000, 'rack B\'s dashboard to show the boot', 25);
    const ms = Date.now() - t0;
    console.log(`a boot served by instance a was in instance b's dashboard API ${ms} ms after the client's lease`);
    expect(ms).toBeLessThan(1000 + 500); // the lease's own exchange is inside this time too
    expect((await api<{ boots: { phase: string }[] }>(rackB, '/api/hosts/web-1')).boots.length).toBe(1);
    expect(b.logs.some((l) => l.msg === 'dhcp ack')).toBe(false); // b served nothing of it

    const status = await runCli(['status', '--state-url', url, '--state', path.join(dir, 'state-b')]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^web-1\s+bee/m);
    expect(status.stdout).toMatch(/^a\s+a\s+198\.18\.0\.1\s+leading/m);
    expect(status.stdout).not.toMatch(/warning/);

    // its log, read on rack B's side from the database: the boot instance a served, in events.log's lines
    const logs = await runCli(['logs', 'web-1', '--state-url', url, '--state', path.join(dir, 'state-b')]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/^\S+ boot \S+ begins \(mac 52:54:00:7c:00:01\)$/m);
    expect(logs.stdout).toMatch(/^\S+ dhcp /m);
    // -f: a later DHCP exchange of web-1 (served by instance a) appears on rack B's follower as it reaches the database
    const follower = spawn(process.execPath, [BOOTD_BIN, 'logs', 'web-1', '-f', '--state-url', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follower.stdout.on('data', (b: Buffer) => {
      followed += b.toString();
    });
    try {
      await until(async () => /^\S+ dhcp /m.test(followed), 10_000, 'the follower to print the boot so far');
      const before = followed.split('\n').filter((l) => / dhcp /.test(l)).length;
      const again = await udhcpcOnce(rackA, 'web1', path.join(dir, 'udhcpc.sh'), { vendorClass: PXE_BIOS });
      expect(again.exitCode, again.stderr).toBe(0);
      await until(async () => followed.split('\n').filter((l) => / dhcp /.test(l)).length > before, 10_000, 'the follower to print the new exchange');
    } finally {
      follower.kill('SIGINT');
      await new Promise((resolve) => follower.once('exit', resolve));
    }
    expect(follower.exitCode === 0 || follower.signalCode === 'SIGINT').toBe(true);

    const none = await runCli(['logs', 'db-0', '--state-url', url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no boots of db-0 in the database/);
    // build machines of every instance (each opens its own ports): one written as instance c would
    await (await import('../../src/state/pg/machine-store.js')).PgMachineStore.open(url, 'c').then(async (st) => {
      await st.save([{ name: 'build-7', port: 1071, owner: { ip: '198.18.0.77' }, quotaBytes: 200 << 20, overwrite: true, openedAt: '2026-12-02T19:00:00Z', expiresAt: null, source: 'cli' }]);
      await st.close();
    });
    const machines = await runCli(['machines', 'list', '--state-url', url]);
    expect(machines.code, machines.stderr).toBe(0);
    expect(machines.stdout).toMatch(/^c\s+build-7\s+1071\s+198\.18\.0\.77\s+200(\.0)? MiB\s+yes\s+never$/m);

    const show = await runCli(['hosts', 'show', 'web-1', '--hosts', hostsOf('b'), '--images', path.join(dir, 'images'), '--state', path.join(dir, 'state-b'), '--state-url', url, '--json']);
    expect(show.code, show.stderr).toBe(0);
    expect((JSON.parse(show.stdout) as { lastBoot: { phase: string } | null }).lastBoot).not.toBeNull();

    // rack B's checkout gains a host rack A's lacks: both warn
    await writeFile(path.join(hostsOf('b'), 'db-9.yaml'), 'mac: 52:54:00:7c:00:09\nimage: bee\n');
    await until(async () => (await api<Instances>(rackB, '/api/instances')).agree === false, 10_000, 'the dashboard API to warn');
    const warned = await runCli(['status', '--state-url', url, '--json']);
    const j = JSON.parse(warned.stdout) as { hostSets: { agree: boolean; groups: { hosts: number; instances: string[] }[] } };
    expect(j.hostSets.agree).toBe(false);
    expect(j.hostSets.groups.map((g) => [g.hosts, g.instances]).sort()).toEqual([[1, ['a']], [2, ['b']]]);
    const text = await runCli(['status', '--state-url', url]);
    expect(text.stdout).toMatch(/warning: the instances serve 2 different host sets/);
  }, 120_000);
});
