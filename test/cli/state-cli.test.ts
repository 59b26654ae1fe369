/**
 * The after-boot commands against a state directory that bootd wrote (a
 * real FileHostRecords and AfterBoot with fake SSH fill it): `bootd status`,
 * `bootd logs`, `bootd hosts show` with the inventory, `bootd machines
 * list` without a running bootd, `bootd smoke` and `machines open` saying
 * clearly that no bootd runs, and the appliance config's smoke keys checked.
 */
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AfterBoot } from '../../src/afterboot/tracker.js';
import { silentLogger } from '../../src/log.js';
import { systemClock } from '../../src/net/clock.js';
import { FileHostRecords } from '../../src/state/host-records.js';
import { FileMachineStore } from '../../src/state/machine-store.js';
import { BOOTD_BIN, runCli } from '../helpers/bootd.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const bootd = runCli;

const IP = '198.18.0.50';
const base = { mac: '52:54:00:00:0a:01', ip: IP, arch: 0, userClassIpxe: false, bootFile: 'pxelinux.0' };

describe('bootd status / logs / hosts show / machines list', () => {
  let dir: string;
  const state = (): string => path.join(dir, 'state');

  beforeAll(async () => {
    dir = await makeWorkDir('state-cli');
    await mkdir(path.join(dir, 'hosts'), { recursive: true });
    await writeFile(path.join(dir, 'hosts', 'a.yaml'), `mac: 52:54:00:00:0a:01\nip: ${IP}\nnetboot: false\n`);
    await mkdir(state(), { recursive: true });
    const store = await FileHostRecords.open(state(), systemClock);
    const t = new AfterBoot({
      stateDir: state(),
      store,
      log: silentLogger,
      now: () => new Date(),
      hostOfMac: () => ({ name: 'a', image: 'bee' }),
      nameAt: () => 'a',
      smokePlan: async () => ({ ok: true, user: 'root', port: 22, privateKey: 'k', script: 's', timeoutMs: 1000 }),
      runSmoke: async () => ({ ok: false, exitCode: 1, attempts: 1, durationMs: 1500, passed: 4, failed: ['FAIL dropbear running'], output: 'PASS a\nFAIL dropbear running\n' }),
      tcpAnswers: async () => true,
      probeEveryMs: 1,
    });
    t.onDhcp({ ...base, type: 'ack', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', pxe: true });
    t.onFile(IP, 'tftp', 'images/bee/1/vmlinuz', 14_000_000, 2000, 'complete');
    t.onDhcp({ ...base, type: 'ack', vendorClass: 'udhcp 1.35.0', arch: null, pxe: false, bootFile: null });
    const report = path.join(dir, 'report.json');
    await writeFile(report, JSON.stringify({ schema: 'bee-audit/1', collected_at: '2026-11-22T08:00:00Z', collectors: { cpu: { status: 'ok', data: { model: 'EPYC 9654', threads: 192 } }, gpu: { status: 'skipped: none', data: null } } }));
    const deadline = Date.now() + 5000;
    while ((await t.current('a'))?.phase !== 'smoke-failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await t.ingestReport('a', report);
    await t.idle();
    t.close();
    await store.close();
    const mf = await FileMachineStore.open(state());
    await mf.save([{ name: 'a', port: 1070, owner: { ip: IP }, quotaBytes: 1 << 20, overwrite: true, openedAt: '2026-11-22T08:00:00.000Z', expiresAt: null, source: 'hosts' }]);
    await mkdir(path.join(state(), 'machines', 'a'), { recursive: true });
    await writeFile(path.join(state(), 'machines', 'a', 'result.txt'), 'x'.repeat(2048));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('status: one line per host with phase and the failing line; --json the whole timeline', async () => {
    const r = await bootd(['status', '--state', state()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^HOST\s+IMAGE\s+IP\s+LAST BOOT\s+PHASE\s+SMOKE\n/);
    expect(r.stdout).toMatch(/^a\s+bee\s+198\.18\.0\.50\s+\S+ \S+\s+smoke-failed\s+FAILED: FAIL dropbear running$/m);
    const j = JSON.parse((await bootd(['status', '--json', '--state', state()])).stdout) as { hosts: { name: string; last: { events: { kind: string }[] }; inventory: { summary: { cpu: { model: string } } } }[] };
    expect(j.hosts[0]?.last.events.map((e) => e.kind)).toEqual(['dhcp', 'file', 'os-dhcp', 'ssh', 'smoke', 'audit']);
    expect(j.hosts[0]?.inventory.summary.cpu.model).toBe('EPYC 9654');
    const empty = await bootd(['status', '--state', path.join(dir, 'nothing')]);
    expect(empty.stdout).toMatch(/no host has booted/);
  });

  it('logs: the event log and the last smoke output; an unknown host is an error', async () => {
    const r = await bootd(['logs', 'a', '--state', state()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ os-dhcp DHCP ack 198\.18\.0\.50 \(udhcp 1\.35\.0\)\n/);
    expect(r.stdout).toMatch(/--- .*smoke-.*\.log\nPASS a\nFAIL dropbear running\n/);
    expect(r.stdout).toMatch(/--- machines\/a\/ \(TFTP: machines\/a\/<file>\)\n\s+2\.0 KiB {2}\S+ {2}result\.txt\n/);
    const none = await bootd(['logs', 'zz', '--state', state()]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no events for zz/);
  });

  it('logs --follow prints what is appended after it started', async () => {
    const log = path.join(state(), 'logs', 'a', 'events.log');
    const child = execa(process.execPath, [BOOTD_BIN, 'logs', 'a', '--follow', '--state', state()], { reject: false, buffer: false });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(() => out.includes(' smoke '), 10_000, 'existing events printed');
      await appendFile(log, '2026-11-22T09:00:00.000Z note appended while following\n');
      await until(() => out.includes('note appended while following'), 10_000, 'appended line printed');
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });

  it('hosts show: the last boot and the inventory summary; --json the whole report', async () => {
    const r = await bootd(['hosts', 'show', 'a', '--hosts', path.join(dir, 'hosts'), '--state', state(), '--images', path.join(dir, 'images')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^last boot: .* smoke-failed at 198\.18\.0\.50, smoke FAILED: FAIL dropbear running$/m);
    expect(r.stdout).toMatch(/^ {2}cpu: {5}EPYC 9654, 192 threads$/m);
    const j = JSON.parse((await bootd(['hosts', 'show', 'a', '--json', '--hosts', path.join(dir, 'hosts'), '--state', state(), '--images', path.join(dir, 'images')])).stdout) as { report: { collectors: { cpu: { data: { threads: number } } } } };
    expect(j.report.collectors.cpu.data.threads).toBe(192);
  });

  it('machines list reads the assignment file when bootd is not running; open and smoke say bootd is not running', async () => {
    const r = await bootd(['machines', 'list', '--state', state()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^a\s+1070\s+198\.18\.0\.50\s+2\.0 KiB of 1\.0 MiB\s+yes\s+hosts file\s+bootd not running$/m);
    for (const args of [['machines', 'open', 'x', '--address', '198.18.0.9'], ['smoke', 'a']]) {
      const o = await bootd([...args, '--state', state()]);
      expect(o.code).toBe(1);
      expect(o.stderr).toContain(`bootd is not running on ${state()}`);
    }
    const bad = await bootd(['machines', 'open', 'x', '--ttl', '3 weeks', '--state', state()]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/expected a duration such as 90s/);
  });

  it('serve refuses to start on a corrupt host store, naming the file, and leaves it as it was', async () => {
    const st = path.join(dir, 'corrupt');
    await mkdir(path.join(st, 'root'), { recursive: true });
    await writeFile(path.join(st, 'hosts-state.json'), '{"version":1,"hosts":');
    const r = await bootd(['serve', '--tftp-root', path.join(st, 'root'), '--listen', '127.0.0.1', '--tftp-port', '0', '--state', st, '--log-format', 'json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(st, 'hosts-state.json')} is not valid JSON`);
    expect(await readFile(path.join(st, 'hosts-state.json'), 'utf8')).toBe('{"version":1,"hosts":');
  });

  it('serve --config checks the smoke and machine_ports keys', async () => {
    const cfg = path.join(dir, 'bootd.yaml');
    await writeFile(cfg, 'machine_ports: 1099-1070\nsmoke:\n  port: 0\n');
    const r = await bootd(['serve', '--config', cfg, '--log-format', 'json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bootd\.yaml:1:16: machine_ports: expected FIRST-LAST UDP ports such as 1070-1099/);
    expect(r.stderr).toMatch(/bootd\.yaml:3:9: smoke\.port: /);
  });
});
