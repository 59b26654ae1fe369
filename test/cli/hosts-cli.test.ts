/**
 * The operator commands, run as the built CLI: `bootd hosts check|list|show`,
 * `bootd images list`, `bootd setup`, and `bootd serve --config` refusing a
 * broken config file.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/bootd.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';
import { makeWorkDir } from '../helpers/workdir.js';

const bootd = runCli;

describe('bootd hosts / images / setup', () => {
  let dir: string;
  const hosts = (): string => path.join(dir, 'hosts');
  const images = (): string => path.join(dir, 'images');

  beforeAll(async () => {
    dir = await makeWorkDir('cli');
    await mkdir(hosts());
    await addRecipe(images(), 'buildos');
    await addVersion(images(), { name: 'bee', version: '1.0', current: true });
    await writeFile(path.join(hosts(), 'a.yaml'), 'mac: 52:54:00:00:0a:01\nip: 198.18.0.10\nimage: bee\n');
    await writeFile(path.join(hosts(), 'b.yaml'), 'mac: 52:54:00:00:0b:01\nimage: buildos\nbuild: { quota: 50M }\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hosts check passes on valid files and on the repository own hosts/', async () => {
    expect(await bootd(['hosts', 'check', hosts(), '--images', images()])).toMatchObject({ code: 0, stdout: '2 hosts, no errors\n', stderr: '' });
    expect(await bootd(['hosts', 'check', 'hosts', '--images', 'images'])).toMatchObject({ code: 0 });
  });

  it('hosts check exits 1 and prints each error as file:line:col: key: message', async () => {
    const bad = path.join(hosts(), 'c.yaml');
    await writeFile(bad, 'mac: 52:54:00:00:0a:01\nimage: nope\n');
    try {
      const r = await bootd(['hosts', 'check', hosts(), '--images', images()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`${bad}:1:6: mac: duplicate MAC 52:54:00:00:0a:01: also in ${path.join(hosts(), 'a.yaml')}\n${bad}:2:8: image: image nope does not exist (no recipe and no built version)\n`);
      expect(r.stdout).toBe('2 error(s) in 1 file(s); 2 of 3 files are valid\n');
      const json = JSON.parse((await bootd(['hosts', 'check', hosts(), '--images', images(), '--json'])).stdout) as { ok: boolean; issues: unknown[] };
      expect(json.ok).toBe(false);
      expect(json.issues).toHaveLength(2);
      // without the catalog, only the duplicate remains
      expect((await bootd(['hosts', 'check', hosts(), '--skip-image-check'])).stderr.split('\n').filter(Boolean)).toHaveLength(1);
    } finally {
      await rm(bad);
    }
  });

  it('hosts list and show describe the hosts, show with what the host boots now', async () => {
    const list = JSON.parse((await bootd(['hosts', 'list', '--hosts', hosts(), '--images', images(), '--json'])).stdout) as { name: string; image: string; build: unknown }[];
    expect(list.map((h) => [h.name, h.image, h.build])).toEqual([
      ['a', 'bee', null],
      ['b', 'buildos', { quotaBytes: 50 * 1024 * 1024, overwrite: true }],
    ]);
    const show = JSON.parse((await bootd(['hosts', 'show', 'a', '--hosts', hosts(), '--images', images(), '--json'])).stdout) as { boots: string; pxelinux: string };
    expect(show.boots).toBe('bee@1.0');
    expect(show.pxelinux).toContain('KERNEL /images/bee/1.0/vmlinuz');
    const b = await bootd(['hosts', 'show', 'b', '--hosts', hosts(), '--images', images()]);
    expect(b.stdout).toContain('boots:     local disk (image buildos has no current version (not built yet?))');
    expect(await bootd(['hosts', 'show', 'zz', '--hosts', hosts()])).toMatchObject({ code: 1 });
  });

  it('images list gives versions, current, sizes and the hosts using each image', async () => {
    const r = JSON.parse((await bootd(['images', 'list', '--images', images(), '--hosts', hosts(), '--json'])).stdout) as { name: string; current: string | null; versions: { version: string; bytes: number }[]; usedBy: string[] }[];
    expect(r.map((i) => [i.name, i.current, i.versions.map((v) => v.version), i.usedBy])).toEqual([
      ['bee', '1.0', ['1.0'], ['a']],
      ['buildos', null, [], ['b']],
    ]);
    expect(r[0]?.versions[0]?.bytes).toBeGreaterThan(0);
  });

  it('setup places every boot loader at the TFTP root, and is idempotent', async () => {
    const root = path.join(dir, 'tftp');
    const first = await bootd(['setup', '--tftp-root', root]);
    expect(first.code, first.stderr).toBe(0);
    for (const f of ['pxelinux.0', 'ldlinux.c32', 'syslinux.efi', 'ldlinux.e64', 'http/lpxelinux.0', 'http/ldlinux.c32', 'undionly.kpxe', 'snponly.efi']) expect(existsSync(path.join(root, f))).toBe(true);
    expect((await bootd(['setup', '--tftp-root', root])).stdout).toContain('unchanged pxelinux.0');
  });

  it('serve --config refuses a broken config file, naming file, line, key and value', async () => {
    const cfg = path.join(dir, 'bootd.yaml');
    await writeFile(cfg, 'tftp:\n  port: 69\ndhcp:\n  unknown_hosts: everyone\n');
    const r = await bootd(['serve', '--config', cfg, '--log-format', 'json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cfg}:4:18: dhcp.unknown_hosts: expected ignore, lease or boot, got \\"everyone\\"`);
  });

  it('serve --config checks pxelinux_http', async () => {
    const cfg = path.join(dir, 'pxelinux-http.yaml');
    await writeFile(cfg, 'http_port: 80\npxelinux_http: always\n');
    const r = await bootd(['serve', '--config', cfg, '--log-format', 'json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cfg}:2:16: pxelinux_http: expected auto, lpxelinux or off, got \\"always\\"`);
  });

  it('serve --config checks the TFTP transport keys', async () => {
    const cfg = path.join(dir, 'transport.yaml');
    await writeFile(cfg, 'tftp:\n  transport: fast\n  busy_poll_us: 5000\n');
    const r = await bootd(['serve', '--config', cfg, '--log-format', 'json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cfg}:2:14: tftp.transport: expected native or dgram, got \\"fast\\"`);
    expect(r.stderr).toMatch(/transport\.yaml:3:17: tftp\.busy_poll_us: expected microseconds/);
  });
});
