#!/usr/bin/env node
// dashboard-bench.mjs: the dashboard at fleet scale, in a real browser (docs/performance.md).
//
//   node scripts/dashboard-bench.mjs [HOSTS=10000] [EVENTS=100]     (as root; after npm run build)
//
// Makes two network namespaces of its own (bootd-dbench-<pid>-s, -c; a veth pair, 198.18.0.0/24, no
// route out), seeds HOSTS hosts in hosts/*.yaml with one recorded boot and an audit summary each, starts
// the built bootd in the server namespace (DHCP on the veth, admin on 127.0.0.1:9267 there) and Debian's
// chromium (playwright-core) in the same namespace, then measures:
//   1. the fleet page: navigation to its first rows, 5 loads; a search, a status filter, the next page;
//      and /api/fleet's own time (curl, 20 requests);
//   2. event-to-screen latency: EVENTS phase changes caused by real clients (busybox udhcpc as a PXE
//      ROM, then tftp-hpa fetching the kernel) for hosts on the open page; each is timed from the bus
//      event's stamp to the frame after the row changed (window.__bootdLatencies), p50 and p99.
// Everything it started is ended by PID and the namespaces deleted in `finally`; every loop is bounded.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { FileHostRecords } = await import(path.join(REPO, 'dist/state/host-records.js'));
const HOSTS = Number(process.argv[2] ?? 10000);
const EVENTS = Number(process.argv[3] ?? 100);
const id = `bootd-dbench-${process.pid}`;
const NS_S = `${id}-s`;
const NS_C = `${id}-c`;
const children = [];
const ip = (...a) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (ns, argv, opts = {}) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000, ...opts }).toString();
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const mac = (i) => `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const hostName = (i) => `host${String(i).padStart(5, '0')}`;

const dir = mkdtempSync(path.join(tmpdir(), 'bootd-dbench-'));
chmodSync(dir, 0o755);
let browser;
// a signal still runs the clean-up below (namespaces, processes): it only ends the measuring early
let stopping = false;
const onSignal = () => { stopping = true; };
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
try {
  // the network
  ip('netns', 'add', NS_S);
  ip('netns', 'add', NS_C);
  ip('-n', NS_S, 'link', 'set', 'lo', 'up');
  ip('-n', NS_C, 'link', 'set', 'lo', 'up');
  ip('-n', NS_S, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS_C);
  ip('-n', NS_S, 'addr', 'add', '198.18.0.1/24', 'dev', 'eth0');
  ip('-n', NS_S, 'link', 'set', 'eth0', 'up');
  ip('-n', NS_C, 'link', 'set', 'eth0', 'up');
  ip('-n', NS_S, 'route', 'add', '255.255.255.255/32', 'dev', 'eth0');

  // the fleet: hosts/*.yaml, an image, records with one boot and an audit each
  const hostsDir = path.join(dir, 'hosts');
  mkdirSync(hostsDir);
  for (let i = 0; i < HOSTS; i++) writeFileSync(path.join(hostsDir, `${hostName(i)}.yaml`), `mac: ${mac(i)}\nimage: bee\n`);
  const vdir = path.join(dir, 'images', 'bee', '2026.12.01');
  mkdirSync(vdir, { recursive: true });
  writeFileSync(path.join(dir, 'images', 'bee', 'recipe.yaml'), 'description: bee\n');
  const files = { vmlinuz: Buffer.alloc(64 << 10, 1), 'initrd.img': Buffer.alloc(64 << 10, 2) };
  const listed = {};
  for (const [f, b] of Object.entries(files)) {
    writeFileSync(path.join(vdir, f), b);
    listed[f] = { sha256: createHash('sha256').update(b).digest('hex'), size: b.length };
  }
  writeFileSync(path.join(vdir, 'manifest.json'), JSON.stringify({ name: 'bee', version: '2026.12.01', kernel: 'vmlinuz', initrds: ['initrd.img'], kernel_version: '6.1.0-27-amd64', built_at: '2026-12-01T10:00:00Z', recipe_commit: '0'.repeat(40), files: listed }));
  symlinkSync('2026.12.01', path.join(dir, 'images', 'bee', 'current'));
  // written as one document in the file store's format (src/state/host-records.ts): 10,000 puts through
  // the store would rewrite the whole document for every durable one
  const state = path.join(dir, 'state');
  mkdirSync(state);
  const doc = { version: 1, hosts: {}, inventory: {} };
  const t0 = Date.now() - 3600_000;
  for (let i = 0; i < HOSTS; i++) {
    const start = t0 + i * 300;
    const iso = (ms) => new Date(ms).toISOString();
    doc.hosts[hostName(i)] = { name: hostName(i), boots: [{ id: `${hostName(i)}-1`, startedAt: iso(start), mac: mac(i), ip: `198.18.${1 + (i >> 8)}.${i & 255}`, image: 'bee@2026.12.01', phase: 'smoke-passed', updatedAt: iso(start + 90_000), events: [{ at: iso(start), kind: 'dhcp', text: 'DHCP ack' }, { at: iso(start + 30_000), kind: 'file', text: 'TFTP vmlinuz', data: { file: 'images/bee/2026.12.01/vmlinuz', bytes: 8e6, durationMs: 5000 } }], smoke: { ok: true, exitCode: 0, startedAt: iso(start + 85_000), durationMs: 4000, attempts: 1, passed: 11, failed: [] } }] };
    doc.inventory[hostName(i)] = { receivedAt: iso(start + 80_000), bytes: 150_000, file: `inventory/${hostName(i)}.json`, collectedAt: null, summary: { board: 'X', cpu: { model: 'AMD EPYC 9654 96-Core Processor', threads: 192, sockets: 1 }, memoryMiB: 786432, dimms: 12, disks: [{ name: 'nvme0n1', sizeBytes: 3.84e12, model: 'M' }], pcieDevices: 40, gpus: i % 10 === 0 ? ['NVIDIA H100 80GB HBM3'] : [], collectors: {} } };
  }
  writeFileSync(path.join(state, 'hosts-state.json'), JSON.stringify(doc));
  // the file store reads it back: the seed is in its format
  const check = await FileHostRecords.reader(state);
  if ((await check.list({ limit: 1 })).total !== HOSTS) throw new Error('the seeded host records do not read back');
  writeFileSync(path.join(dir, 'udhcpc.sh'), '#!/bin/sh\ncase "$1" in bound|renew) ip addr replace "$ip/$subnet" dev "$interface";; esac\n');
  chmodSync(path.join(dir, 'udhcpc.sh'), 0o755);

  // bootd
  const startMs = Date.now();
  const bootd = spawn('ip', ['netns', 'exec', NS_S, process.execPath, path.join(REPO, 'bin/bootd'), 'serve', '--log-format', 'json', '--log-level', 'warn', '--interface', 'eth0', '--listen', '198.18.0.1', '--dhcp-range', '198.18.0.100-198.18.0.250', '--force', '--hosts', hostsDir, '--images', path.join(dir, 'images'), '--tftp-root', path.join(dir, 'root'), '--state', state, '--no-smoke', '--admin-listen', '127.0.0.1:9267'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(bootd);
  mkdirSync(path.join(dir, 'root'));
  let up = false;
  for (let i = 0; i < 600 && !up; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      inNs(NS_S, ['curl', '-sf', '-o', '/dev/null', 'http://127.0.0.1:9267/healthz']);
      up = true;
    } catch {}
  }
  if (!up) throw new Error('bootd did not start within 60 s');
  console.log(`bootd with ${HOSTS} hosts and records listening after ${Date.now() - startMs} ms`);

  // /api/fleet on its own
  const api = [];
  for (let i = 0; i < 20; i++) api.push(Number(inNs(NS_S, ['curl', '-s', '-o', '/dev/null', '-w', '%{time_total}', 'http://127.0.0.1:9267/api/fleet?limit=100'])) * 1000);
  const apiQ = [];
  for (let i = 0; i < 20; i++) apiQ.push(Number(inNs(NS_S, ['curl', '-s', '-o', '/dev/null', '-w', '%{time_total}', 'http://127.0.0.1:9267/api/fleet?limit=100&q=h100'])) * 1000);

  // chromium in the server namespace
  const wrapper = path.join(dir, 'chromium-in-ns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${NS_S} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const loads = [];
  for (let i = 0; i < 5; i++) {
    const t = Date.now();
    await page.goto('http://127.0.0.1:9267/');
    await page.waitForSelector('tr[data-host]');
    loads.push(Date.now() - t);
  }
  const rows = await page.locator('tr[data-host]').count();
  const timeIt = async (fn, until) => {
    const t = Date.now();
    await fn();
    await until();
    return Date.now() - t;
  };
  const search = await timeIt(() => page.fill('input[type=search]', 'H100'), () => page.waitForFunction(() => document.querySelectorAll('tr[data-host]').length > 0 && [...document.querySelectorAll('tr[data-host] .hw')].every((e) => e.textContent.includes('GPU'))));
  await page.fill('input[type=search]', '');
  await page.waitForFunction((n) => document.querySelectorAll('tr[data-host]').length === n, rows);
  const next = await timeIt(() => page.click('text=next'), () => page.waitForSelector(`tr[data-host="${hostName(100)}"]`));
  await page.click('text=previous');
  await page.waitForSelector(`tr[data-host="${hostName(0)}"]`);
  await page.waitForSelector('.live.on');

  // live: phase changes of hosts on the page, caused by real clients
  await page.evaluate(() => (window.__bootdLatencies = []));
  const deadline = Date.now() + 10 * 60_000;
  let made = 0;
  for (let i = 0; made < EVENTS && Date.now() < deadline && !stopping; i++) {
    const h = i % 100;
    inNs(NS_C, ['ip', 'addr', 'flush', 'dev', 'eth0']);
    inNs(NS_C, ['ip', 'link', 'set', 'eth0', 'address', mac(h)]);
    inNs(NS_C, ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', '5', '-T', '1', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-s', path.join(dir, 'udhcpc.sh')]);
    made++;
    inNs(NS_C, ['tftp', '198.18.0.1', '-m', 'binary', '-c', 'get', 'images/bee/2026.12.01/vmlinuz', '/dev/null']);
    made++;
  }
  await new Promise((r) => setTimeout(r, 1500));
  const lat = await page.evaluate(() => window.__bootdLatencies);
  const f = (x) => Math.round(x * 10) / 10;
  console.log(JSON.stringify({
    hosts: HOSTS,
    firstRowsMs: { runs: loads, median: pct(loads, 50) },
    rowsShown: rows,
    apiFleetMs: { p50: f(pct(api, 50)), p99: f(pct(api, 99)) },
    apiFleetSearchMs: { p50: f(pct(apiQ, 50)), p99: f(pct(apiQ, 99)) },
    searchToRowsMs: search,
    nextPageMs: next,
    eventToScreenMs: { events: made, painted: lat.length, p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat) },
  }, null, 1));
} finally {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await browser?.close().catch(() => {});
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1000));
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const ns of [NS_C, NS_S]) {
    try {
      ip('netns', 'del', ns);
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
}
