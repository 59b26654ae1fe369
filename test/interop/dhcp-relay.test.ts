/**
 * A client behind a real relay agent (dnsmasq --dhcp-relay, in a middle
 * namespace) gets an address from the relay's subnet, chosen by giaddr, with
 * that subnet's router. The client's segment has no path to bootd but the relay.
 */
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED dhcp relay test: ${skip}`);

describe.skipIf(skip !== null)('DHCP through a relay agent', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;

  beforeAll(async () => {
    dir = await makeWorkDir('relay');
    await writeFile(path.join(dir, 'udhcpc.sh'), `#!/bin/sh\necho "$1 ip=$ip subnet=$subnet router=$router serverid=$serverid" >> "${dir}/events"\n`);
    await chmod(path.join(dir, 'udhcpc.sh'), 0o755);
    // server 198.18.0.1 and relay 198.18.0.2 share a segment; the client sits behind the relay on 198.18.5.0/24
    net = await TestNet.create({ hosts: ['server', 'relay'] });
    await net.addHostBehind('client', 'relay', 'eth1', '198.18.5.1/24');
    // replies go to giaddr 198.18.5.1: the server reaches it through the relay (inside our namespaces only)
    expect((await net.run('server', ['ip', 'route', 'add', '198.18.5.0/24', 'via', '198.18.0.2'])).exitCode).toBe(0);
    const relay = net.spawn('relay', ['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root', `--pid-file=${dir}/relay.pid`, '--dhcp-relay=198.18.5.1,198.18.0.1', '--interface=eth1', '--interface=eth0', '--log-dhcp']);
    relay.stderr?.resume();
    bootd = await startBootd(
      net,
      'server',
      ['--tftp-root', path.join(dir, 'root'), '--listen', '198.18.0.1', '--interface', 'eth0', '--dhcp-range', '198.18.0.100-198.18.0.150',
        '--relay-subnet', '198.18.5.0/24=198.18.5.100-198.18.5.150@198.18.5.1', '--unknown-hosts', 'lease', '--state', path.join(dir, 'state'), '--dhcp-probe-ms', '300'],
      'dhcp listening',
    );
  });

  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives the client an address from the relay subnet, with that subnet\'s router', async () => {
    const r = await net.run('client', ['busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '5', '-T', '2', '-s', path.join(dir, 'udhcpc.sh')], { timeoutMs: 40_000 });
    expect(r.exitCode, `${r.stderr}\n${JSON.stringify(bootd.logs.slice(-5))}`).toBe(0);
    const events = await readFile(path.join(dir, 'events'), 'utf8');
    expect(events).toMatch(/bound ip=198\.18\.5\.1\d\d subnet=255\.255\.255\.0 router=198\.18\.5\.1 serverid=198\.18\.0\.1/);
    expect(bootd.logs.some((l) => l.msg === 'dhcp ack' && String(l.ip).startsWith('198.18.5.'))).toBe(true);
  });
});
