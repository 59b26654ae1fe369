#!/usr/bin/env node
// admin-load.mjs: an operator watching bootd, for benchmarks (docs/performance.md): the dashboard open
// in Debian's chromium (its live stream connected) and /metrics scraped every second, against the bootd
// admin listener at 127.0.0.1:9267 inside network namespace NS, for SECONDS.
//
//   node scripts/admin-load.mjs NS SECONDS        (as root)
//
// Started from the root namespace (not from the server's command), so none of its CPU lands in the
// server's cgroup of ../shared/bench/dhcp-bench.sh. While no bootd answers in NS (between runs, or while
// the bench runs Kea) it waits and retries. Prints how many browsers it started, pages it opened and
// scrapes that succeeded. Ends the browser it started; every loop is bounded by SECONDS.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [ns, secs] = [process.argv[2], Number(process.argv[3] ?? 600)];
if (!ns || !/^[A-Za-z0-9_.-]+$/.test(ns)) throw new Error('usage: admin-load.mjs NS SECONDS');
const dir = mkdtempSync(path.join(tmpdir(), 'bootd-admin-load-'));
const wrapper = path.join(dir, 'chromium-in-ns');
writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} /usr/bin/chromium "$@"\n`);
chmodSync(wrapper, 0o755);
let end = Date.now() + secs * 1000;
// SIGTERM ends the loops; the browser is then closed in `finally`
process.on('SIGTERM', () => (end = 0));
process.on('SIGINT', () => (end = 0));
let browser;
let lastError = '';
let launches = 0;
let opened = 0;
let scrapes = 0;
let failed = 0;
let bytes = 0;
try {
  // The bench makes a fresh namespace for every run and ends every process in it after the run, so the
  // browser is started again for each run: as soon as the namespace exists (polled every 200 ms), the
  // page opened as soon as bootd answers, /metrics fetched from that page every second.
  while (Date.now() < end) {
    // no browser while no bootd answers (the bench's Kea runs, the gaps between runs)
    const up = await new Promise((resolve) => {
      const c = spawn('ip', ['netns', 'exec', ns, 'curl', '-sf', '-o', '/dev/null', '--max-time', '1', 'http://127.0.0.1:9267/healthz'], { stdio: 'ignore' });
      c.on('exit', (code) => resolve(code === 0));
      c.on('error', () => resolve(false));
    });
    if (!up) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    try {
      browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    } catch (err) {
      if (String(err).split('\n')[0] !== lastError) console.error(`chromium in ${ns}: ${(lastError = String(err).split('\n')[0])}`);
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    launches++;
    let page;
    try {
      page = await browser.newPage();
    } catch {
      continue; // the run ended while the browser started
    }
    let open = false;
    let next = Date.now();
    while (Date.now() < end && browser.isConnected()) {
      if (!open) {
        try {
          await page.goto('http://127.0.0.1:9267/', { timeout: 1000 });
          await page.waitForSelector('.live.on', { timeout: 2000 });
          open = true;
          opened++;
          next = Date.now();
        } catch {
          await new Promise((r) => setTimeout(r, 300));
          continue;
        }
      }
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
      next += 1000;
      try {
        const n = await page.evaluate(async () => {
          const r = await fetch('/metrics');
          return r.ok ? (await r.text()).length : -1;
        });
        if (n > 0) {
          scrapes++;
          bytes += n;
        } else failed++;
      } catch {
        failed++;
        open = false;
      }
    }
    await browser.close().catch(() => {});
    browser = undefined;
  }
} finally {
  await browser?.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({ launches, pagesOpened: opened, scrapes, failed, avgBytes: scrapes ? Math.round(bytes / scrapes) : 0 }));
}
