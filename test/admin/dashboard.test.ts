/**
 * The dashboard in a real browser: Debian's chromium, driven by
 * playwright-core (the installed binary, nothing downloaded), started inside
 * the test's network namespace, against a real bootd that real clients
 * (busybox udhcpc, tftp-hpa) boot through. The open fleet page shows h1 move
 * through its phases without a reload; the actions work (smoke test now,
 * image switch, build-machine port open and close) and land in the event
 * log and admin-actions.jsonl; a request without the token gets 401 and a
 * cross-site POST is refused. With BOOTD_SCREENSHOTS=<dir> it keeps a
 * screenshot of each page there (docs/dashboard.md uses them).
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InventoryEntry } from '../../src/afterboot/inventory.js';
import type { HostRecord } from '../../src/afterboot/record.js';
import { systemClock } from '../../src/net/clock.js';
import { FileHostRecords } from '../../src/state/host-records.js';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { udhcpcScript } from '../helpers/udhcpc.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = netnsUnavailable() ?? (existsSync(CHROMIUM) ? null : 'needs Debian\'s chromium package (scripts/setup.sh installs it)');
if (skip) console.warn(`SKIPPED dashboard browser test: ${skip}`);

const TOKEN = 'dashboard-test-token-7c41d0e2b9a8';
const H1_MAC = '52:54:00:d5:00:01';
const SHOTS = process.env.BOOTD_SCREENSHOTS;

/** Other hosts with records, so the pages show a fleet (and the screenshots something to read). */
async function seed(state: string): Promise<void> {
  const store = await FileHostRecords.open(state, systemClock);
  const now = Date.now();
  const iso = (ms: number): string => new Date(ms).toISOString();
  const cpus = ['AMD EPYC 9654 96-Core Processor', 'Intel(R) Xeon(R) Platinum 8480+', 'Ampere Altra Q80-30'];
  for (let i = 1; i <= 12; i++) {
    const name = `rack1-${String(i).padStart(2, '0')}`;
    const phase = (['smoke-passed', 'smoke-passed', 'up', 'kernel', 'smoke-failed', 'os-dhcp'] as const)[i % 6] ?? 'up';
    const start = now - (i % 6 === 3 ? 30 * 60_000 : 3 * 60_000 + i * 7000);
    const rec: HostRecord = {
      name,
      boots: [{
        id: `${name}-1`, startedAt: iso(start), mac: `52:54:00:10:00:${String(i).padStart(2, '0')}`, ip: `198.18.0.${60 + i}`, image: 'bee@2026.11.20', phase, updatedAt: iso(start + 95_000), events: [
          { at: iso(start), kind: 'dhcp', text: `DHCP ack 198.18.0.${60 + i} (PXEClient, BIOS) pxelinux.0` },
          { at: iso(start + 2000), kind: 'file', text: 'TFTP pxelinux.0 46.0 KiB', data: { file: 'pxelinux.0', bytes: 47_104, durationMs: 40 } },
          { at: iso(start + 21_000), kind: 'file', text: 'TFTP images/bee/2026.11.20/vmlinuz 7.9 MiB', data: { file: 'images/bee/2026.11.20/vmlinuz', bytes: 8_283_520, durationMs: 6100 } },
          { at: iso(start + 48_000), kind: 'file', text: 'TFTP images/bee/2026.11.20/initrd.img 61.2 MiB', data: { file: 'images/bee/2026.11.20/initrd.img', bytes: 64_172_851, durationMs: 26_500 } },
          ...(phase === 'kernel' ? [] : [
            { at: iso(start + 61_000), kind: 'os-dhcp' as const, text: `DHCP ack 198.18.0.${60 + i} (udhcp 1.35.0)` },
            { at: iso(start + 67_000), kind: 'ssh' as const, text: 'SSH port 22 answers', data: { port: 22, afterMs: 6000 } },
            { at: iso(start + 80_000), kind: 'audit' as const, text: 'audit report stored (175.8 KiB)', data: { ok: true } },
          ]),
          ...(phase.startsWith('smoke') ? [{ at: iso(start + 95_000), kind: 'smoke' as const, text: phase === 'smoke-passed' ? 'smoke test passed (11 checks)' : 'smoke test failed: FAIL nvme0n1 SMART' }] : []),
        ],
        ...(phase.startsWith('smoke') ? { smoke: { ok: phase === 'smoke-passed', exitCode: phase === 'smoke-passed' ? 0 : 1, startedAt: iso(start + 90_000), durationMs: 4200, attempts: 1, passed: phase === 'smoke-passed' ? 11 : 9, failed: phase === 'smoke-passed' ? [] : ['FAIL nvme0n1 SMART'] } } : {}),
      }],
    };
    await store.put(rec, true);
    if (phase !== 'kernel') {
      const inv: InventoryEntry = {
        receivedAt: iso(start + 80_000), bytes: 180_000, file: `inventory/${name}.json`, collectedAt: iso(start + 79_000),
        summary: { board: 'Supermicro H13SSL-N', cpu: { model: cpus[i % 3] ?? null, threads: [192, 224, 80][i % 3] ?? null, sockets: 1 }, memoryMiB: [786432, 524288, 262144][i % 3] ?? null, dimms: 12, disks: [{ name: 'nvme0n1', sizeBytes: 3.84e12, model: 'SAMSUNG MZQL23T8HCLS' }, { name: 'nvme1n1', sizeBytes: 3.84e12, model: 'SAMSUNG MZQL23T8HCLS' }], pcieDevices: 41, gpus: i % 4 === 0 ? ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3'] : [], collectors: { board: 'ok', cpu: 'ok', memory: 'ok', disks: 'ok', gpu: i % 4 === 0 ? 'ok' : 'skipped: no NVIDIA GPU' } },
      };
      await store.putInventory(name, inv);
    }
  }
  await store.close();
}

describe.skipIf(skip !== null)('the dashboard in chromium (network namespaces)', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;
  let base: string;
  let browser: Browser;
  let page: Page;
  let server: string;

  const udhcpc = (vendorClass: string | null) =>
    net.run('h1', ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', '5', '-T', '1', ...(vendorClass ? ['-V', vendorClass] : []), '-s', path.join(dir, 'udhcpc.sh')], { timeoutMs: 30_000 });
  const rowStatus = (name: string) => page.locator(`tr[data-host="${name}"] .badge`);
  const shot = async (name: string): Promise<void> => {
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  const actions = async (): Promise<{ action: string; target: string; ok: boolean }[]> =>
    (await readFile(path.join(dir, 'state', 'admin-actions.jsonl'), 'utf8').catch(() => '')).split('\n').filter((l) => l).map((l) => JSON.parse(l) as { action: string; target: string; ok: boolean });

  beforeAll(async () => {
    dir = await makeWorkDir('dash');
    net = await TestNet.create({ hosts: ['server', 'h1', 'web', 'stranger'] });
    server = net.host('server').address;
    base = `http://${server}:9267`;
    const images = path.join(dir, 'images');
    await addRecipe(images, 'bee');
    await addVersion(images, { name: 'bee', version: '2026.11.20' });
    const v2 = await addVersion(images, { name: 'bee', version: '2026.12.01', current: true });
    await addVersion(images, { name: 'buildos', version: '2026.10.02', current: true });
    await writeFile(path.join(v2, 'smoketest.sh'), '#!/bin/sh\necho PASS true\n');
    await mkdir(path.join(dir, 'hosts'));
    await writeFile(path.join(dir, 'hosts', 'h1.yaml'), `mac: ${H1_MAC}\nimage: bee\n`);
    for (let i = 1; i <= 12; i++) await writeFile(path.join(dir, 'hosts', `rack1-${String(i).padStart(2, '0')}.yaml`), `mac: 52:54:00:10:00:${String(i).padStart(2, '0')}\nimage: bee\n`);
    await writeFile(path.join(dir, 'hosts', 'builder1.yaml'), 'mac: 52:54:00:b1:00:01\nimage: buildos\nbuild: true\n');
    await writeFile(path.join(dir, 'token'), `${TOKEN}\n`);
    await chmod(path.join(dir, 'token'), 0o600);
    await udhcpcScript(dir);
    await seed(path.join(dir, 'state'));
    await net.dhcpClient('h1', H1_MAC);
    await net.limitedBroadcast('server');
    bootd = await startBootd(
      net,
      'server',
      ['--interface', 'eth0', '--listen', server, '--dhcp-range', '198.18.0.100-198.18.0.150', '--unknown-hosts', 'ignore', '--force', '--tftp-root', path.join(dir, 'root'), '--hosts', path.join(dir, 'hosts'), '--images', images, '--state', path.join(dir, 'state'), '--no-smoke', '--smoke-timeout', '2', '--admin-listen', `${server}:9267`, '--admin-token-file', path.join(dir, 'token')],
      'admin listening',
    );
    // a cross-site page on another host of the test network: a form that posts to bootd by itself
    await writeFile(path.join(dir, 'evil.html'), `<!doctype html><form id="f" method="post" action="${base}/api/hosts/h1/smoke"><input name="x" value="1"></form><script>document.getElementById('f').submit()</script>`);
    const web = net.spawn('web', ['busybox', 'httpd', '-f', '-p', `${net.host('web').address}:8000`, '-h', dir]);
    web.stdout?.resume();
    web.stderr?.resume();
    // chromium in the server's namespace (playwright talks to it over a pipe, which crosses namespaces)
    const wrapper = path.join(dir, 'chromium-in-ns');
    await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${net.host('server').ns} ${CHROMIUM} "$@"\n`);
    await chmod(wrapper, 0o755);
    browser = await chromium.launch({
      executablePath: wrapper,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    if (SHOTS) await mkdir(SHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await bootd?.stop();
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('asks for the token (401) and signs in with it', async () => {
    const first = await page.goto(`${base}/`);
    expect(first?.status()).toBe(401);
    await shot('login');
    await page.fill('input[name=token]', 'not-the-token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('body')).toContain('That is not the token.');
    await page.fill('input[name=token]', TOKEN);
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
    await page.waitForSelector('tr[data-host="h1"]');
    expect(await rowStatus('h1').getAttribute('data-status')).toBe('never');
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'bootd_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  }, 60_000);

  it('shows h1 move through its phases on the open page, without a reload', async () => {
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 42));
    await page.waitForSelector('.live.on');
    // the PXE ROM's DHCP
    expect((await udhcpc('PXEClient:Arch:00000:UNDI:002001')).exitCode).toBe(0);
    await expect.poll(() => rowStatus('h1').getAttribute('data-phase'), { timeout: 5000 }).toBe('dhcp');
    expect(await rowStatus('h1').getAttribute('data-status')).toBe('booting');
    // the kernel over TFTP
    const k = await net.run('h1', ['tftp', server, '-m', 'binary', '-c', 'get', 'images/bee/2026.12.01/vmlinuz', path.join(dir, 'vmlinuz')]);
    expect(k.exitCode, k.stderr).toBe(0);
    await expect.poll(() => rowStatus('h1').getAttribute('data-phase'), { timeout: 5000 }).toBe('kernel');
    // the OS's own DHCP
    expect((await udhcpc(null)).exitCode).toBe(0);
    await expect.poll(() => rowStatus('h1').getAttribute('data-phase'), { timeout: 5000 }).toBe('os-dhcp');
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(42); // the same document all along
    const lat = await page.evaluate(() => (globalThis as unknown as { __bootdLatencies: number[] }).__bootdLatencies);
    expect(lat.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...lat)).toBeLessThan(1000);
    await page.waitForSelector('#events li');
    await shot('fleet');
  }, 60_000);

  it('lists a machine that asked to boot but is in no hosts file as pending, with a snippet', async () => {
    await net.dhcpClient('stranger', '52:54:00:ee:00:09');
    // not in hosts/ (--unknown-hosts ignore): no answer, but the dashboard hears it ask
    await net.run('stranger', ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', '1', '-T', '1', '-V', 'PXEClient:Arch:00007:UNDI:003016', '-s', '/bin/true'], { timeoutMs: 10_000 });
    const row = page.locator('#pending tr[data-mac="52:54:00:ee:00:09"]');
    await row.waitFor({ timeout: 5000 });
    expect(await row.textContent()).toContain('mac: 52:54:00:ee:00:09');
    expect(await row.textContent()).toContain('PXEClient:Arch:00007');
  }, 30_000);

  it('filters, searches and groups the fleet', async () => {
    await page.click('button[data-filter="smoke-failed"]');
    await expect.poll(() => page.locator('#fleet tr[data-host]').count()).toBe(2);
    await page.click('button.chip >> text=all');
    await page.fill('input[type=search]', 'H100');
    await expect.poll(() => page.locator('#fleet tr[data-host]').count()).toBe(3);
    await page.fill('input[type=search]', '');
    await page.check('label.toggle input');
    await expect.poll(() => page.locator('#fleet tr.group').count()).toBeGreaterThanOrEqual(4);
    await page.uncheck('label.toggle input');
  }, 30_000);

  it('shows the host page and runs its smoke test from there (an action, recorded)', async () => {
    await page.click('tr[data-host="h1"] a');
    await page.waitForSelector('svg.timeline');
    expect(await page.locator('table.files').first().textContent()).toContain('vmlinuz');
    await page.click('#run-smoke');
    await expect.poll(() => page.textContent('#note')).toContain('Smoke test started');
    // no SSH on h1: the test fails within --smoke-timeout, and the page shows it without a reload
    await page.waitForSelector('#smoke-result', { timeout: 20_000 });
    expect(await page.textContent('#smoke-result')).toContain('failed');
    await until(async () => (await actions()).some((a) => a.action === 'smoke' && a.target === 'h1' && a.ok), 5000, 'the smoke action in admin-actions.jsonl');
    await page.goto(`${base}/hosts/rack1-04`);
    await page.waitForSelector('#inventory');
    await shot('host');
  }, 60_000);

  it('switches an image\'s current version, and rolls it back', async () => {
    const link = path.join(dir, 'images', 'bee', 'current');
    await page.goto(`${base}/images`);
    await page.waitForSelector('section[data-image="bee"]');
    await shot('images');
    await page.click('tr[data-version="2026.11.20"] button[data-action=switch]');
    await until(async () => (await readlink(link)) === '2026.11.20', 5000, 'current -> 2026.11.20');
    await expect.poll(() => page.textContent('#note')).toContain('bee now serves 2026.11.20');
    await page.click('tr[data-version="2026.12.01"] button[data-action=switch]');
    await until(async () => (await readlink(link)) === '2026.12.01', 5000, 'current back at 2026.12.01');
    const a = await actions();
    expect(a.filter((x) => x.action === 'image.current').map((x) => x.target)).toEqual(['bee@2026.11.20', 'bee@2026.12.01']);
  }, 30_000);

  it('opens and closes a build machine\'s port', async () => {
    await page.goto(`${base}/machines`);
    await page.waitForSelector('tr[data-machine="builder1"]');
    await page.fill('input[aria-label="machine name"]', 'h1');
    await page.click('#open-machine');
    await page.waitForSelector('tr[data-machine="h1"]');
    await shot('machines');
    await page.click('tr[data-machine="h1"] button[data-action=close]');
    await expect.poll(() => page.locator('tr[data-machine="h1"]').count()).toBe(0);
    expect((await actions()).filter((x) => x.action.startsWith('machine.')).map((x) => `${x.action} ${x.target} ${x.ok}`)).toEqual(['machine.open h1 true', 'machine.close h1 true']);
    // and the event log has them
    await page.goto(`${base}/`);
    await expect.poll(() => page.textContent('#events')).toContain('action machine.close h1');
  }, 30_000);

  it('refuses a cross-site POST and one without the CSRF header, and 401s a request without the token', async () => {
    const before = (await actions()).length;
    const refused = page.waitForResponse((r) => r.url() === `${base}/api/hosts/h1/smoke`);
    await page.goto(`http://${net.host('web').address}:8000/evil.html`);
    expect([401, 403]).toContain((await refused).status());
    // the same origin, but without the header a page of bootd's own sends
    await page.goto(`${base}/`);
    const status = await page.evaluate(async () => (await fetch('/api/hosts/h1/smoke', { method: 'POST' })).status);
    expect(status).toBe(403);
    expect((await actions()).length).toBe(before);
    const r = await net.run('web', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${base}/api/fleet`]);
    expect(r.stdout).toBe('401');
    await until(() => bootd.logs.some((l) => l.msg === 'admin request without a valid token' && String(l.peer).startsWith(`${net.host('web').address}:`)), 5000, 'the 401 logged with the peer');
    expect(bootd.logs.some((l) => l.msg === 'admin request refused' && l.status === 403)).toBe(true);
  }, 30_000);
});
