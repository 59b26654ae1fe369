/**
 * Two bootd instances on one segment and one database (a cluster the test
 * starts itself), in test namespaces on one bridge, with real clients
 * (busybox udhcpc): one leads the segment's DHCP, the other stands by and
 * answers nothing; the second starts without --force (the first is a peer
 * in the database, not a foreign server). Killed with SIGKILL, the leader is
 * replaced within 5 s, and a client that keeps running renews through the
 * new leader (RFC 2131 section 4.4.5: REBINDING, broadcast) and keeps its
 * address. dhclient (isc-dhcp-client), bound through the dead leader, starts
 * again after the takeover and asks for its address in INIT-REBOOT (RFC 2131
 * section 4.3.2: a REQUEST with 'requested IP address' and no server
 * identifier): the new leader, which reloaded the leases from the database,
 * acknowledges the same address.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { postgresUnavailable, startCluster, stopFleet, type TestCluster } from '../helpers/postgres.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable() ?? postgresUnavailable();
if (skip) console.warn(`SKIPPED DHCP failover tests: ${skip}`);

const MAC1 = '52:54:00:7b:00:01';
const MAC2 = '52:54:00:7b:00:02';
const MAC3 = '52:54:00:7b:00:03';

describe.skipIf(skip !== null)('two instances on one segment and one database (network namespaces, a cluster of the test\'s own)', () => {
  let net: TestNet;
  let cluster: TestCluster;
  let dir: string;
  let url: string;
  const running: RunningBootd[] = [];
  const serve = async (host: 's1' | 's2', force: boolean): Promise<RunningBootd> => {
    const b = await startBootd(
      net,
      host,
      ['--interface', 'eth0', '--listen', net.host(host).address, '--dhcp-range', '198.18.0.100-198.18.0.150', '--unknown-hosts', 'lease', '--lease-time', '12', ...(force ? ['--force'] : ['--dhcp-probe-ms', '1500']), '--tftp-root', path.join(dir, 'root'), '--state', path.join(dir, `state-${host}`), '--state-url', url, '--segment', 'rack-7', '--admin-listen', 'off'],
      'dhcp listening',
    );
    running.push(b);
    return b;
  };
  const leaderRow = () => cluster.psql('bootd', "SELECT instance || ' ' || epoch FROM dhcp_leader WHERE segment = 'rack-7'");

  beforeAll(async () => {
    dir = await makeWorkDir('dhcp-failover');
    cluster = await startCluster();
    url = await cluster.createDb('bootd');
    net = await TestNet.create({ hosts: ['s1', 's2', 'c1', 'c2', 'c3'] });
    await writeFile(path.join(dir, 'root', 'pxelinux.0'), Buffer.alloc(1000, 3));
    // every state change of the client, with its address, one line each
    await writeFile(path.join(dir, 'udhcpc.sh'), '#!/bin/sh\n[ -n "$EVENTS" ] && echo "$1 $ip $serverid" >> "$EVENTS"\ncase "$1" in bound|renew) ip addr replace "$ip/$subnet" dev "$interface";; esac\n');
    await chmod(path.join(dir, 'udhcpc.sh'), 0o755);
    await writeFile(path.join(dir, 'dhclient.sh'), `#!/bin/sh\necho "$reason $new_ip_address $new_dhcp_server_identifier" >> "${dir}/dhclient.events"\n`);
    await chmod(path.join(dir, 'dhclient.sh'), 0o755);
    await net.dhcpClient('c1', MAC1);
    await net.dhcpClient('c2', MAC2);
    await net.dhcpClient('c3', MAC3);
    await net.limitedBroadcast('s1');
    await net.limitedBroadcast('s2');
  }, 120_000);

  afterAll(() => stopFleet({ running, nets: [net], cluster, dir }));

  it('one leads, the other stands by; the leader killed with SIGKILL is replaced within 5 s and a running client keeps its address', async () => {
    const s1 = await serve('s1', true);
    expect(s1.logs.find((l) => l.msg === 'dhcp listening')).toMatchObject({ segment: 'rack-7', leading: true });
    // without --force: the probe hears s1, a registered instance of this database, and starts anyway
    const s2 = await serve('s2', false);
    expect(s2.logs.find((l) => l.msg === 'dhcp listening')).toMatchObject({ segment: 'rack-7', leading: false });
    expect(await leaderRow()).toBe(`${s1Name()} 1`);

    // a client that keeps running (renews at T1 = 6 s, rebinds at T2 = 10.5 s)
    const events = path.join(dir, 'events-c1');
    const client = net.spawn('c1', ['env', `EVENTS=${events}`, 'busybox', 'udhcpc', '-f', '-i', 'eth0', '-t', '5', '-T', '1', '-s', path.join(dir, 'udhcpc.sh')]);
    client.stdout?.resume();
    client.stderr?.resume();
    let bound = '';
    await until(async () => {
      const t = await readFile(events, 'utf8').catch(() => '');
      bound = /^bound (\S+) (\S+)$/m.exec(t)?.[1] ?? '';
      return bound !== '';
    }, 20_000, 'the client bound');
    expect(await cluster.psql('bootd', `SELECT host(address) FROM lease4 WHERE hwaddr = '${MAC1}'`)).toBe(bound);
    expect(s2.logs.some((l) => l.msg === 'dhcp: leading the segment')).toBe(false);

    // dhclient binds through s1 too, then stops without releasing (-x): its lease file keeps the address
    const dhclient = (flag: string): string[] => ['dhclient', flag, '-sf', path.join(dir, 'dhclient.sh'), '-lf', path.join(dir, 'dhclient.leases'), '-pf', path.join(dir, 'dhclient.pid'), 'eth0'];
    const dhEvents = (): Promise<string> => readFile(path.join(dir, 'dhclient.events'), 'utf8').catch(() => '');
    const d1 = await net.run('c3', dhclient('-1'), { timeoutMs: 60_000 });
    expect(d1.exitCode, d1.stderr).toBe(0);
    const dhBound = /^BOUND (\S+) (\S+)$/m.exec(await dhEvents());
    expect(dhBound?.[2], await dhEvents()).toBe(net.host('s1').address);
    const dhAddress = dhBound?.[1] ?? '';
    expect(dhAddress).not.toBe(bound);
    expect((await net.run('c3', dhclient('-x'), { timeoutMs: 30_000 })).exitCode).toBe(0);

    const killedAt = Date.now();
    await s1.stop('SIGKILL');
    await until(() => s2.logs.some((l) => l.msg === 'dhcp: leading the segment'), 5000, 's2 to lead within 5 s');
    const takeover = Date.now() - killedAt;
    console.log(`takeover ${takeover} ms after SIGKILL`);
    expect(s2.logs.find((l) => l.msg === 'dhcp: leading the segment')).toMatchObject({ segment: 'rack-7', epoch: 2, leases: 2 });
    expect(await leaderRow()).toBe(`${s2Name()} 2`);

    // dhclient starts again while its lease (12 s) is valid: INIT-REBOOT for its address, acknowledged by s2
    const d2 = await net.run('c3', dhclient('-1'), { timeoutMs: 60_000 });
    expect(d2.exitCode, d2.stderr).toBe(0);
    expect(await dhEvents()).toMatch(new RegExp(`^REBOOT ${dhAddress.replaceAll('.', '\\.')} ${net.host('s2').address.replaceAll('.', '\\.')}$`, 'm'));
    expect((await net.run('c3', dhclient('-x'), { timeoutMs: 30_000 })).exitCode).toBe(0);
    // the client's renewal to s1 goes unanswered; it rebinds by broadcast and s2 answers with the same address
    await until(async () => {
      const t = await readFile(events, 'utf8').catch(() => '');
      return new RegExp(`^renew ${bound.replaceAll('.', '\\.')} ${net.host('s2').address.replaceAll('.', '\\.')}$`, 'm').test(t);
    }, 25_000, 'the client to renew through s2');
    client.kill('SIGTERM');
    // a new client leases through s2 too, an address no other client holds
    const r = await net.run('c2', ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', '5', '-T', '1', '-s', path.join(dir, 'udhcpc.sh')], { timeoutMs: 30_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await cluster.psql('bootd', 'SELECT count(*) || \' \' || count(DISTINCT hwaddr) FROM lease4 WHERE state = 0')).toBe('3 3');
  }, 120_000);

  const nameOf = (host: 's1' | 's2'): string => `${hostname()}/${net.host(host).address}`;
  const s1Name = (): string => nameOf('s1');
  const s2Name = (): string => nameOf('s2');
});
