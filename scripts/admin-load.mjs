#!/usr/bin/env node
// admin-load.mjs: an operator watching bootd, for benchmarks (docs/performance.md): the dashboard open
// in Debian's chromium (its live stream connected) and /metrics scraped every second, against the bootd
// admin listener at 127.0.0.1:9267 inside network namespace NS, for SECONDS.
//
//   node scripts/admin-load.mjs NS SECONDS        (as root)
//
// Started from the root namespace (not from the server's command), so none of its CPU lands in the
// server's cgroup of ../shared/bench/dhcp-bench.sh. While no bootd answers in NS (between runs, or while
// the bench runs Kea) it waits and retries; the page's EventSource reconnects by itself. Prints how many
// scrapes succeeded. Ends the browser it started; every loop is bounded by SECONDS.
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
const end = Date.now() + secs * 1000;
let browser;
let scrapes = 0;
let failed = 0;
let bytes = 0;
try {
  // the namespace may not exist yet: wait for it (bounded)
  while (Date.now() < end) {
    try {
      browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  if (!browser) throw new Error(`no namespace ${ns} within ${secs} s`);
  const page = await browser.newPage();
  const scraper = await browser.newPage();
  let open = false;
  while (Date.now() < end) {
    const t = Date.now();
    if (!open) {
      try {
        await page.goto('http://127.0.0.1:9267/', { timeout: 2000 });
        await page.waitForSelector('.live.on', { timeout: 2000 });
        open = true;
      } catch {}
    }
    try {
      const n = await scraper.evaluate(async () => {
        const r = await fetch('http://127.0.0.1:9267/metrics');
        return r.ok ? (await r.text()).length : -1;
      });
      if (n > 0) {
        scrapes++;
        bytes += n;
      } else failed++;
    } catch {
      failed++;
      open = false;
      await scraper.goto('http://127.0.0.1:9267/healthz', { timeout: 1000 }).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t))));
  }
} finally {
  await browser?.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({ scrapes, failed, avgBytes: scrapes ? Math.round(bytes / scrapes) : 0 }));
}
