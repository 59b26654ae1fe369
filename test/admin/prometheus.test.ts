/**
 * bootd's /metrics scraped by a real Prometheus (Debian's `prometheus`
 * binary, started here with its own config and data folder inside the test's
 * namespace), after real clients (busybox udhcpc, tftp-hpa) used bootd; the
 * admin listener is off loopback, so Prometheus shows the token from a file
 * (`authorization.credentials_file`), as docs/operations.md tells operators.
 * `promtool check metrics` judges the exposition; a request without the
 * token gets 401, counted and logged with the peer.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { PXE_BIOS, udhcpcOnce, udhcpcScript } from '../helpers/udhcpc.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable() ?? (existsSync('/usr/bin/prometheus') ? null : 'needs Debian\'s prometheus package (scripts/setup.sh installs it)');
if (skip) console.warn(`SKIPPED Prometheus scrape test: ${skip}`);

const TOKEN = 'prometheus-test-token-5f1c2a9d8e7b';
const CLIENT_MAC = '52:54:00:9a:00:02';

interface PromVector {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe.skipIf(skip !== null)('Prometheus scrapes bootd (network namespaces)', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;
  let server: string;
  let admin: string;

  const query = async (q: string): Promise<PromVector['data']['result']> => {
    const r = await net.run('server', ['curl', '-s', '--max-time', '3', '--get', '--data-urlencode', `query=${q}`, 'http://127.0.0.1:19090/api/v1/query']);
    if (r.exitCode !== 0) return [];
    // while it starts, Prometheus answers 503 "Service Unavailable" in plain text
    let v: PromVector;
    try {
      v = JSON.parse(r.stdout) as PromVector;
    } catch {
      return [];
    }
    return v.status === 'success' ? v.data.result : [];
  };
  const valueOf = async (q: string): Promise<number> => Number((await query(q))[0]?.value[1] ?? NaN);

  beforeAll(async () => {
    dir = await makeWorkDir('prom');
    net = await TestNet.create({ hosts: ['server', 'client'] });
    server = net.host('server').address;
    admin = `${server}:9267`;
    await writeFile(path.join(dir, 'root', 'pxelinux.0'), Buffer.alloc(40_000, 7));
    await writeFile(path.join(dir, 'token'), `${TOKEN}\n`);
    await chmod(path.join(dir, 'token'), 0o600);
    await udhcpcScript(dir);
    await net.dhcpClient('client', CLIENT_MAC);
    await net.limitedBroadcast('server');
    bootd = await startBootd(
      net,
      'server',
      ['--interface', 'eth0', '--listen', server, '--dhcp-range', '198.18.0.100-198.18.0.150', '--unknown-hosts', 'lease', '--force', '--tftp-root', path.join(dir, 'root'), '--state', path.join(dir, 'state'), '--admin-listen', admin, '--admin-token-file', path.join(dir, 'token')],
      'admin listening',
    );
    // the scrape config shipped in packaging/prometheus.yml, pointed at this test's bootd
    await mkdir(path.join(dir, 'prom'), { recursive: true });
    await writeFile(
      path.join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: bootd\n    authorization:\n      type: Bearer\n      credentials_file: ${path.join(dir, 'token')}\n    static_configs:\n      - targets: ['${admin}']\n`,
    );
    const prom = net.spawn('server', ['prometheus', `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'prom')}`, '--web.listen-address=127.0.0.1:19090', '--log.level=warn']);
    prom.stdout?.resume();
    prom.stderr?.resume();
    await until(async () => (await net.run('server', ['curl', '-sf', '--max-time', '2', 'http://127.0.0.1:19090/-/ready'])).exitCode === 0, 30_000, 'Prometheus to be ready');
  }, 90_000);

  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy(); // ends Prometheus too (started by this net, by PID)
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sees DHCP and TFTP series that real clients caused', async () => {
    const d = await udhcpcOnce(net, 'client', path.join(dir, 'udhcpc.sh'), { vendorClass: PXE_BIOS });
    expect(d.exitCode, d.stderr).toBe(0);
    const got = await net.run('client', ['tftp', server, '-m', 'binary', '-c', 'get', 'pxelinux.0', path.join(dir, 'got')]);
    expect(got.exitCode, got.stderr).toBe(0);
    await net.run('client', ['tftp', server, '-m', 'binary', '-c', 'get', 'no-such-file', path.join(dir, 'none')]);
    await until(async () => (await valueOf('bootd_dhcp4_packets_sent_total{operation="ack"}')) >= 1, 30_000, 'Prometheus to have the ACK');
    expect(await valueOf('bootd_dhcp4_packets_received_total{operation="discover"}')).toBeGreaterThanOrEqual(1);
    expect(await valueOf('bootd_dhcp4_packets_sent_total{operation="offer"}')).toBeGreaterThanOrEqual(1);
    expect(await valueOf('bootd_dhcp4_addresses_assigned{subnet="198.18.0.0/24"}')).toBe(1);
    expect(await valueOf('bootd_dhcp4_addresses_pool{subnet="198.18.0.0/24"}')).toBe(51);
    expect(await valueOf('bootd_dhcp4_reply_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    await until(async () => (await valueOf('bootd_transfers_total{protocol="tftp",outcome="complete"}')) >= 1, 15_000, 'the TFTP transfer in Prometheus');
    expect(await valueOf('bootd_transfer_bytes_total{protocol="tftp",direction="read"}')).toBeGreaterThanOrEqual(40_000);
    await until(async () => (await valueOf('bootd_transfer_refusals_total{protocol="tftp",reason="not-found"}')) >= 1, 15_000, 'the refusal in Prometheus');
    const up = await query('up{job="bootd"}');
    expect(up[0]?.value[1]).toBe('1');
    expect(await valueOf('bootd_process_resident_memory_bytes')).toBeGreaterThan(10 << 20);
  }, 90_000);

  it('has an exposition that promtool check metrics accepts', async () => {
    const r = await net.run('server', ['curl', '-s', '-H', `Authorization: Bearer ${TOKEN}`, `http://${admin}/metrics`]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^bootd_dhcp4_packets_sent_total\{operation="ack"\} \d+$/m);
    // execa strips the last newline; the text format ends with one
    const check = await execa('promtool', ['check', 'metrics'], { input: `${r.stdout}\n`, reject: false });
    expect(check.exitCode, `${check.stdout}\n${check.stderr}`).toBe(0);
  });

  it('has a Grafana dashboard whose every query Prometheus takes, over metrics bootd exports', async () => {
    const dash = JSON.parse(await readFile(path.join(REPO, 'packaging/grafana/bootd-dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(20);
    const exposition = (await net.run('server', ['curl', '-s', '-H', `Authorization: Bearer ${TOKEN}`, `http://${admin}/metrics`])).stdout;
    const exported = new Set([...exposition.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    for (const { panel, expr } of exprs) {
      for (const [name] of expr.matchAll(/bootd_[a-z0-9_]+/g)) expect(exported.has(name.replace(/_(bucket|sum|count)$/, '')) || exported.has(name), `${panel}: ${name}`).toBe(true);
      const q = expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m').replaceAll('$instance', '.*');
      const r = await net.run('server', ['curl', '-s', '--get', '--data-urlencode', `query=${q}`, 'http://127.0.0.1:19090/api/v1/query']);
      expect((JSON.parse(r.stdout) as { status: string }).status, `${panel}: ${q}`).toBe('success');
    }
    const cfg = await execa('promtool', ['check', 'config', path.join(REPO, 'packaging/prometheus/bootd.yml')], { reject: false });
    expect(cfg.exitCode, cfg.stdout + cfg.stderr).toBe(0);
  });

  it('answers a scrape without the token with 401, counted and logged with the peer', async () => {
    const before = await net.run('server', ['curl', '-s', '-H', `Authorization: Bearer ${TOKEN}`, `http://${admin}/metrics`]);
    const count = (t: string): number => Number(/^bootd_admin_unauthorized_total (\d+)$/m.exec(t)?.[1] ?? NaN);
    const n0 = count(before.stdout);
    for (const extra of [[], ['-H', 'Authorization: Bearer wrong-token']]) {
      const r = await net.run('client', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', ...extra, `http://${admin}/metrics`]);
      expect(r.stdout).toBe('401');
    }
    const after = await net.run('server', ['curl', '-s', '-H', `Authorization: Bearer ${TOKEN}`, `http://${admin}/metrics`]);
    expect(count(after.stdout)).toBe(n0 + 2);
    await until(() => bootd.logs.some((l) => l.msg === 'admin request without a valid token' && String(l.peer).startsWith('198.18.0.')), 5000, 'the 401 in the log');
  });
});
