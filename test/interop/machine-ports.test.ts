/**
 * Build machines' write-enabled TFTP ports (seed 002) against real clients
 * in test namespaces: tftp-hpa `put`, busybox `tftp -p`, atftp `--put`.
 * m1 and m2 are build machines in hosts/ (`build:`); c3 and c4 are opened
 * with `bootd machines open`. Each port is rooted at <state>/machines/<name>/,
 * takes writes only from its machine's address, within its quota, written
 * to a temporary file and renamed after the last block; ports survive a
 * restart and close when their time is up. The main port shows the
 * machines' files and bootd's logs read-only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOTD_BIN, startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED machine port interop tests: ${skip}`);

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface MachineView {
  name: string;
  port: number;
  source: string;
  expiresAt: string | null;
  usageBytes: number;
  listening?: boolean;
  ownerAddress?: string | null;
}

describe.skipIf(skip !== null)('build-machine TFTP ports with real clients (network namespaces)', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;
  let server: string;
  const state = (): string => path.join(dir, 'state');
  const mdir = (...p: string[]): string => path.join(state(), 'machines', ...p);
  const local = (n: string): string => path.join(dir, n);
  const cli = (...args: string[]) => execa(process.execPath, [BOOTD_BIN, ...args, '--state', state()], { reject: false });
  const list = async (): Promise<MachineView[]> => {
    const r = await cli('machines', 'list', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as MachineView[];
  };
  const portOf = async (name: string): Promise<string> => String((await list()).find((m) => m.name === name)?.port ?? 'none');
  const serve = (): Promise<RunningBootd> =>
    startBootd(net, 'server', ['--tftp-root', path.join(dir, 'root'), '--listen', server, '--hosts', path.join(dir, 'hosts'), '--state', state(), '--machine-ports', '1170-1179', '--tftp-give-up-ms', '1500'], 'after-boot records on');

  beforeAll(async () => {
    dir = await makeWorkDir('machines');
    net = await TestNet.create({ hosts: ['server', 'm1', 'm2', 'c3', 'stranger'] });
    server = net.host('server').address;
    await mkdir(path.join(dir, 'hosts'), { recursive: true });
    await mkdir(path.join(dir, 'root'), { recursive: true });
    await writeFile(path.join(dir, 'hosts', 'm1.yaml'), `mac: 52:54:00:dd:00:01\nip: ${net.host('m1').address}\nnetboot: false\nbuild:\n  quota: 256K\n`);
    await writeFile(path.join(dir, 'hosts', 'm2.yaml'), `mac: 52:54:00:dd:00:02\nip: ${net.host('m2').address}\nnetboot: false\nbuild: true\n`);
    for (const [name, size] of [['small', 3000], ['medium', 200_000], ['other', 150_000], ['big', 30_000_000]] as const) await writeFile(local(name), randomBytes(size));
    bootd = await serve();
  });

  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives every build host its own port from the range, listed with owner and usage', async () => {
    const ms = await list();
    expect(ms.map((m) => [m.name, m.port, m.source, m.listening, m.ownerAddress])).toEqual([
      ['m1', 1170, 'hosts', true, net.host('m1').address],
      ['m2', 1171, 'hosts', true, net.host('m2').address],
    ]);
    const text = await cli('machines', 'list');
    expect(text.stdout).toMatch(/m1\s+1170\s+198\.18\.\d+\.\d+\s+0 B of 256\.0 KiB\s+yes\s+hosts file\s+open/);
  });

  it('tftp-hpa put lands in the machine\'s directory, and reads back from its port', async () => {
    const r = await net.run('m1', ['tftp', '-m', 'binary', server, '1170', '-c', 'put', local('medium'), 'results/hpa.bin']);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(sha(await readFile(mdir('m1', 'results', 'hpa.bin')))).toBe(sha(await readFile(local('medium'))));
    const g = await net.run('m1', ['tftp', '-m', 'binary', server, '1170', '-c', 'get', 'results/hpa.bin', local('back-hpa')]);
    expect(g.exitCode, g.stderr).toBe(0);
    expect(sha(await readFile(local('back-hpa')))).toBe(sha(await readFile(local('medium'))));
  });

  it('busybox tftp -p and atftp --put work on the other machine\'s port', async () => {
    const b = await net.run('m2', ['busybox', 'tftp', '-p', '-b', '1428', '-l', local('other'), '-r', 'task.log', server, '1171']);
    expect(b.exitCode, b.stderr).toBe(0);
    const a = await net.run('m2', ['atftp', '--option', 'blksize 1428', '--option', 'windowsize 8', '--put', '-l', local('medium'), '-r', 'atftp.bin', server, '1171']);
    expect(a.exitCode, a.stderr + a.stdout).toBe(0);
    expect(sha(await readFile(mdir('m2', 'task.log')))).toBe(sha(await readFile(local('other'))));
    expect(sha(await readFile(mdir('m2', 'atftp.bin')))).toBe(sha(await readFile(local('medium'))));
  });

  it('refuses writes from any other address, and writes nothing', async () => {
    for (const who of ['stranger', 'm2']) {
      const r = await net.run(who, ['busybox', 'tftp', '-p', '-l', local('small'), '-r', `from-${who}.bin`, server, '1170']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/only from m1|Access/i);
      expect(existsSync(mdir('m1', `from-${who}.bin`))).toBe(false);
    }
  });

  it('refuses a path outside the machine\'s directory', async () => {
    for (const name of ['../m2/evil', '/../../etc/evil', '..\\m2\\evil']) {
      const r = await net.run('m1', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', name, server, '1170']);
      expect(r.exitCode, name).not.toBe(0);
    }
    expect(existsSync(mdir('m2', 'evil'))).toBe(false);
    const g = await net.run('m1', ['busybox', 'tftp', '-g', '-l', local('got-evil'), '-r', '../m2/task.log', server, '1170']);
    expect(g.exitCode).not.toBe(0);
  });

  it('enforces the quota with a clear TFTP error', async () => {
    // 200 000 bytes are in m1's 256 KiB already
    const r = await net.run('m1', ['busybox', 'tftp', '-p', '-l', local('other'), '-r', 'over.bin', server, '1170']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/quota|exceeded|allocation/i);
    await until(() => !readdirSync(mdir('m1')).some((f) => f.startsWith('.upload-')), 5000, 'temporary file removed');
    expect(existsSync(mdir('m1', 'over.bin'))).toBe(false);
  });

  it('an upload broken off mid-way leaves the previous file intact', async () => {
    const first = await net.run('m2', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'keep.bin', server, '1171']);
    expect(first.exitCode).toBe(0);
    const child = net.spawn('m2', ['busybox', 'tftp', '-p', '-l', local('big'), '-r', 'keep.bin', server, '1171']);
    let out = '';
    let exit: number | null | undefined;
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (exit = code));
    const inProgress = (): boolean => readdirSync(mdir('m2')).some((f) => f.startsWith('.upload-'));
    // the temporary file shows the upload under way; an early exit of the client would mean there is nothing to break off
    await until(() => inProgress() || exit !== undefined, 30_000, 'upload in progress').catch((e: Error) => {
      throw new Error(`${e.message}; client: ${out}; bootd: ${JSON.stringify(bootd.logs.slice(-5))}`);
    });
    expect(exit, `busybox ended before the break: exit ${String(exit)} ${out} ${JSON.stringify(bootd.logs.slice(-5))}`).toBeUndefined();
    child.kill('SIGKILL');
    await until(() => !readdirSync(mdir('m2')).some((f) => f.startsWith('.upload-')), 15_000, 'temporary file removed');
    expect(sha(await readFile(mdir('m2', 'keep.bin')))).toBe(sha(await readFile(local('small'))));
  });

  it('two machines\' ports do not see each other\'s files', async () => {
    const a = await net.run('m1', ['busybox', 'tftp', '-g', '-l', local('x1'), '-r', 'task.log', server, '1170']);
    expect(a.exitCode).not.toBe(0);
    expect(a.stderr).toMatch(/not found/i);
    const b = await net.run('m2', ['busybox', 'tftp', '-g', '-l', local('x2'), '-r', 'results/hpa.bin', server, '1171']);
    expect(b.exitCode).not.toBe(0);
  });

  it('the main port serves machines/<name>/ and logs/ read-only, and refuses writes there', async () => {
    const g = await net.run('stranger', ['busybox', 'tftp', '-g', '-l', local('via-main'), '-r', 'machines/m2/task.log', server, '69']);
    expect(g.exitCode, g.stderr).toBe(0);
    expect(sha(await readFile(local('via-main')))).toBe(sha(await readFile(local('other'))));
    const w = await net.run('m1', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'machines/m1/sneaky.bin', server, '69']);
    expect(w.exitCode).not.toBe(0);
    expect(existsSync(mdir('m1', 'sneaky.bin'))).toBe(false);
    await mkdir(path.join(state(), 'logs', 'm1'), { recursive: true });
    await writeFile(path.join(state(), 'logs', 'm1', 'events.log'), 'x boot\n');
    const l = await net.run('stranger', ['busybox', 'tftp', '-g', '-l', local('log'), '-r', 'logs/m1/events.log', server, '69']);
    expect(l.exitCode, l.stderr).toBe(0);
    expect(await readFile(local('log'), 'utf8')).toBe('x boot\n');
  });

  it('bootd machines open gives a port on demand with an overwrite policy; it survives a restart and closes when its time is up', async () => {
    const o = await cli('machines', 'open', 'c3', '--address', net.host('c3').address, '--ttl', '1h', '--no-overwrite', '--json');
    expect(o.exitCode, o.stderr).toBe(0);
    const port = String((JSON.parse(o.stdout) as MachineView).port);
    expect(port).toBe('1172');
    const p1 = await net.run('c3', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'once.bin', server, port]);
    expect(p1.exitCode, p1.stderr).toBe(0);
    // overwrite off: the second upload of the same name is refused, the first stays
    const p2 = await net.run('c3', ['busybox', 'tftp', '-p', '-l', local('medium'), '-r', 'once.bin', server, port]);
    expect(p2.exitCode).not.toBe(0);
    expect(p2.stderr).toMatch(/exists/i);
    expect(sha(await readFile(mdir('c3', 'once.bin')))).toBe(sha(await readFile(local('small'))));

    // a restart: same port, same owner
    expect(await bootd.stop()).toBe(0);
    bootd = await serve();
    expect(await portOf('c3')).toBe(port);
    const p3 = await net.run('c3', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'after-restart.bin', server, port]);
    expect(p3.exitCode, p3.stderr).toBe(0);

    // a short lifetime: open again with 2 s, then the port goes away
    const s = await cli('machines', 'open', 'c3', '--address', net.host('c3').address, '--ttl', '2s');
    expect(s.exitCode, s.stderr).toBe(0);
    await until(async () => (await list()).every((m) => m.name !== 'c3'), 10_000, 'c3 expired');
    const late = await net.run('c3', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'late.bin', server, port]);
    expect(late.exitCode).not.toBe(0);
    expect(existsSync(mdir('c3', 'late.bin'))).toBe(false);
    // its files stay, readable on the main port
    const g = await net.run('stranger', ['busybox', 'tftp', '-g', '-l', local('c3-once'), '-r', 'machines/c3/once.bin', server, '69']);
    expect(g.exitCode, g.stderr).toBe(0);
  });

  it('machines close ends a port; a build host\'s port cannot be closed from the CLI', async () => {
    const o = await cli('machines', 'open', 'c4', '--address', net.host('stranger').address);
    expect(o.exitCode, o.stderr).toBe(0);
    const port = await portOf('c4');
    const c = await cli('machines', 'close', 'c4');
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout).toContain(`port ${port} closed`);
    expect(await portOf('c4')).toBe('none');
    const w = await net.run('stranger', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'x.bin', server, port]);
    expect(w.exitCode).not.toBe(0);
    const h = await cli('machines', 'close', 'm1');
    expect(h.exitCode).not.toBe(0);
    expect(h.stderr).toMatch(/build machine in hosts/);
    const bad = await cli('machines', 'open', 'nobody');
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/not in hosts\/; give its address/);
  });
});
