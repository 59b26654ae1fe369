#!/usr/bin/env node
/**
 * hosts-scale.mjs: bootd with a fleet's worth of hosts/*.yaml (issue 22,
 * "Fleet scale"). For each count (default 10 10000 100000): writes that many
 * host files into a temporary folder, starts `bootd serve` on loopback
 * (TFTP on a high port, no DHCP), and reports
 *   - the load itself (the "hosts loaded" pass, ms) and the time from start
 *     to TFTP listening,
 *   - bootd's RSS once loaded,
 *   - one edited file among them live: from the write until a TFTP request
 *     for that host's PXELINUX config returns the new content (ms),
 *   - what a config request costs (pxelinux.cfg/01-<mac>, median and p99 of
 *     300 requests over loopback, one at a time).
 * Only loopback traffic; the folders are removed and bootd (started here) is
 * ended by PID at the end.
 *
 *   node scripts/hosts-scale.mjs [count ...]
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const counts = process.argv.slice(2).map(Number).filter((n) => n > 0);
const PORT = 16969;

const macOf = (i) => `52:54:10:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const hostFile = (i, args = 'quiet') => `mac: ${macOf(i)}\n${i % 2 === 0 ? `ip: 10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}\n` : ''}hostname: host-${String(i).padStart(6, '0')}\nimage: bee\nkernel_args: [${args}]\n`;

/** One TFTP read of a small file over loopback, from a port of its own (a new TID per transfer, RFC 1350): its text, or null on an error packet. */
async function tftpGet(name) {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  try {
    return await tftpOnce(sock, name);
  } finally {
    sock.close();
  }
}

function tftpOnce(sock, name) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer for ${name}`)), 3000);
    const chunks = [];
    const onMsg = (msg, from) => {
      const op = msg.readUInt16BE(0);
      if (op === 5) {
        clearTimeout(t);
        sock.off('message', onMsg);
        if (process.env.DEBUG) console.error(`ERROR ${msg.readUInt16BE(2)} ${msg.subarray(4).toString()}`);
        resolve(null);
        return;
      }
      if (op !== 3) return;
      const block = msg.readUInt16BE(2);
      chunks.push(msg.subarray(4));
      const ack = Buffer.alloc(4);
      ack.writeUInt16BE(4, 0);
      ack.writeUInt16BE(block, 2);
      sock.send(ack, from.port, from.address);
      if (msg.length - 4 < 512) {
        clearTimeout(t);
        sock.off('message', onMsg);
        resolve(Buffer.concat(chunks).toString());
      }
    };
    sock.on('message', onMsg);
    sock.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${name}\0octet\0`)]), PORT, "127.0.0.1");
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function run(n) {
  const dir = mkdtempSync(path.join(tmpdir(), 'bootd-hosts-scale-'));
  try {
    const hosts = path.join(dir, 'hosts');
    mkdirSync(hosts);
    mkdirSync(path.join(dir, 'root'));
    mkdirSync(path.join(dir, 'images', 'bee'), { recursive: true });
    writeFileSync(path.join(dir, 'images', 'bee', 'recipe.yaml'), 'description: bee\n');
    // one built version (a fake kernel and initrd with their manifest), so configs boot it with the host's arguments
    const vdir = path.join(dir, 'images', 'bee', '1.0');
    mkdirSync(vdir);
    const files = { vmlinuz: 'kernel\n', 'initrd.img': 'initrd\n' };
    for (const [f, c] of Object.entries(files)) writeFileSync(path.join(vdir, f), c);
    const sha = (c) => createHash('sha256').update(c).digest('hex');
    writeFileSync(path.join(vdir, 'manifest.json'), JSON.stringify({ name: 'bee', version: '1.0', kernel: 'vmlinuz', initrds: ['initrd.img'], kernel_version: '6.1.0-27-amd64', built_at: '2026-12-02T10:00:00Z', recipe_commit: '0'.repeat(40), files: Object.fromEntries(Object.entries(files).map(([f, c]) => [f, { sha256: sha(c), size: c.length }])) }));
    symlinkSync('1.0', path.join(dir, 'images', 'bee', 'current'));
    for (let i = 0; i < n; i++) writeFileSync(path.join(hosts, `host-${String(i).padStart(6, '0')}.yaml`), hostFile(i));
    const t0 = Date.now();
    const child = spawn(process.execPath, [path.join(REPO, 'bin/bootd'), 'serve', '--listen', '127.0.0.1', '--tftp-port', String(PORT), '--tftp-root', path.join(dir, 'root'), '--hosts', hosts, '--images', path.join(dir, 'images'), '--state', path.join(dir, 'state'), '--admin-listen', 'off', '--tftp-client-rate', '100000', '--tftp-max-per-client', '100000', '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines = [];
    let buf = '';
    const waiters = [];
    child.stderr.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const j = JSON.parse(l);
          lines.push(j);
          for (const w of [...waiters]) if (w.test(j)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(j); }
        } catch {}
      }
    });
    const waitFor = (test, ms = 120_000) => {
      const hit = lines.find(test);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = { test, resolve };
        waiters.push(w);
        setTimeout(() => reject(new Error('bootd did not log what was awaited')), ms).unref();
      });
    };
    try {
      const loaded = await waitFor((j) => j.msg === 'hosts loaded');
      const listening = await waitFor((j) => j.msg === 'tftp listening');
      const startMs = Date.parse(listening.time) - t0;
      const rssMiB = Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024);
      const target = n - 1;
      const cfgName = `pxelinux.cfg/01-${macOf(target).replaceAll(':', '-')}`;
      const lat = [];
      for (let k = 0; k < 300; k++) {
        const s = performance.now();
        const text = await tftpGet(cfgName);
        lat.push(performance.now() - s);
        if (text === null) throw new Error(`no config for ${cfgName}`);
      }
      // one edited file among n: live when the config says so
      const before = lines.filter((j) => j.msg === 'hosts loaded').length;
      const w0 = performance.now();
      writeFileSync(path.join(hosts, `host-${String(target).padStart(6, '0')}.yaml`), hostFile(target, 'quiet, edited=1'));
      let liveMs = null;
      for (let k = 0; k < 2000; k++) {
        const text = await tftpGet(cfgName);
        if (text?.includes('edited=1')) {
          liveMs = performance.now() - w0;
          break;
        }
      }
      const reload = await waitFor((j) => j.msg === 'hosts loaded' && lines.filter((x) => x.msg === 'hosts loaded').indexOf(j) >= before, 5000);
      return { hosts: n, loadMs: loaded.ms, startToListenMs: startMs, rssMiB, configMedianMs: +pct(lat, 50).toFixed(3), configP99Ms: +pct(lat, 99).toFixed(3), editLiveMs: liveMs === null ? null : +liveMs.toFixed(1), reloadPassMs: reload.ms };
    } catch (err) {
      console.error(lines.slice(-5));
      throw err;
    } finally {
      child.kill('SIGTERM');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const n of counts.length > 0 ? counts : [10, 10_000, 100_000]) console.log(JSON.stringify(await run(n)));
