// netascii-load.mjs: 40 concurrent netascii reads (tftp-hpa -m ascii) of a
// 24 MB text file from a bootd on 127.0.0.1 (nothing leaves loopback), while
// a probe asks for a missing file every 10 ms and times each ERROR: the
// longest wait is how long the server's event loop was held up. Prints
// clients, seconds, bootd's RSS before and at peak, and the probe's worst wait.
//   node scripts/netascii-load.mjs bin/bootd
//   OLD=1 node scripts/netascii-load.mjs /path/to/older/bin/bootd   (no per-client flags)
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
const bin = process.argv[2];
const dir = mkdtempSync(path.join(tmpdir(), 'bootd-na-'));
const line = 'a line of text for the netascii measurement, long enough\n';
writeFileSync(path.join(dir, 'big.txt'), line.repeat(Math.ceil(24e6 / line.length)));
const child = spawn(process.execPath, [bin, 'serve', '--tftp-root', dir, '--listen', '127.0.0.1', '--tftp-port', '0', '--log-format', 'json', ...(process.env.OLD ? [] : ['--tftp-max-per-client', '100', '--tftp-client-rate', '100000'])], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
child.stderr.on('data', (d) => (log += d));
while (!/tftp listening/.test(log)) await new Promise((r) => setTimeout(r, 50));
const port = Number(/"listen":"127\.0\.0\.1:(\d+)"/.exec(log)[1]);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]);
const rss0 = rss();
let maxRss = rss0;
const probe = dgram.createSocket('udp4');
let sentAt = 0, worst = 0, answered = 0;
probe.on('message', () => { worst = Math.max(worst, performance.now() - sentAt); answered++; sentAt = 0; });
probe.bind(0);
const timer = setInterval(() => {
  maxRss = Math.max(maxRss, rss());
  if (sentAt !== 0) { worst = Math.max(worst, performance.now() - sentAt); return; }
  sentAt = performance.now();
  probe.send(Buffer.from('\0\x01missing\0octet\0'), port, '127.0.0.1');
}, 10);
const t0 = performance.now();
const clients = [];
for (let i = 0; i < 40; i++) {
  clients.push(new Promise((res) => {
    const c = spawn('tftp', ['-m', 'ascii', '127.0.0.1', String(port), '-c', 'get', 'big.txt', path.join(dir, `out${i}`)], { stdio: 'ignore' });
    c.on('exit', (code) => res(code));
  }));
}
const codes = await Promise.all(clients);
const secs = (performance.now() - t0) / 1000;
clearInterval(timer);
console.log(JSON.stringify({ clients: 40, ok: codes.filter((c) => c === 0).length, seconds: secs.toFixed(1), rssKiB: { before: rss0, peak: maxRss }, probe: { answered, worstMs: worst.toFixed(1) } }));
child.kill('SIGTERM');
probe.close();
child.on('exit', () => rmSync(dir, { recursive: true, force: true }));
