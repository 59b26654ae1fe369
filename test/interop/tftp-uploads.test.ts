/**
 * The write-enabled upload port (`--report-tftp-port`) against real clients
 * in test namespaces: tftp-hpa `put`, busybox `tftp -p` and atftp `--put`.
 * Each host writes only into <state>/uploads/<host>/ and is known by its
 * address (hosts/*.yaml `ip:` here); strangers, paths out of the directory
 * and uploads over quota are refused; a broken upload never replaces a
 * complete file; hosts never read each other's files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED tftp upload interop tests: ${skip}`);

const PORT = '1069';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(skip !== null)('upload port with real TFTP clients (network namespaces)', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;
  let server: string;
  const up = (...p: string[]): string => path.join(dir, 'state', 'uploads', ...p);

  beforeAll(async () => {
    dir = await makeWorkDir('uploads');
    net = await TestNet.create({ hosts: ['server', 'c1', 'c2', 'stranger'] });
    server = net.host('server').address;
    await mkdir(path.join(dir, 'hosts'), { recursive: true });
    await mkdir(path.join(dir, 'root'), { recursive: true });
    await writeFile(path.join(dir, 'hosts', 'c1.yaml'), `mac: 52:54:00:cc:00:01\nip: ${net.host('c1').address}\nnetboot: false\n`);
    // c2 is a build machine with a small quota
    await writeFile(path.join(dir, 'hosts', 'c2.yaml'), `mac: 52:54:00:cc:00:02\nip: ${net.host('c2').address}\nnetboot: false\nbuild:\n  quota: 64K\n`);
    for (const [name, size] of [['small', 3000], ['medium', 200_000], ['big', 30_000_000]] as const) await writeFile(path.join(dir, name), randomBytes(size));
    bootd = await startBootd(net, 'server', ['--tftp-root', path.join(dir, 'root'), '--listen', server, '--hosts', path.join(dir, 'hosts'), '--state', path.join(dir, 'state'), '--report-tftp-port', PORT, '--tftp-give-up-ms', '1500'], 'tftp uploads listening');
  });

  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const local = (n: string): string => path.join(dir, n);

  it('tftp-hpa put lands in the host\'s own directory', async () => {
    const r = await net.run('c1', ['tftp', '-m', 'binary', server, PORT, '-c', 'put', local('medium'), 'hpa.bin']);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(sha(await readFile(up('c1', 'hpa.bin')))).toBe(sha(await readFile(local('medium'))));
    // the transfer's log line comes after the dally that guards the final ACK (RFC 1350 section 6)
    await until(() => bootd.logs.some((l) => l.msg === 'tftp transfer' && l.file === 'c1/hpa.bin'), 10_000, 'transfer logged');
    const t = bootd.logs.find((l) => l.msg === 'tftp transfer' && l.file === 'c1/hpa.bin');
    expect(t).toMatchObject({ direction: 'write', outcome: 'complete', bytes: 200_000 });
  });

  it('busybox tftp -p with the <host>/ prefix (the bee.report= form) and tsize', async () => {
    const r = await net.run('c1', ['busybox', 'tftp', '-p', '-b', '1428', '-l', local('medium'), '-r', 'c1/reports/audit.json', server, PORT]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(sha(await readFile(up('c1', 'reports', 'audit.json')))).toBe(sha(await readFile(local('medium'))));
  });

  it('atftp --put with windowsize', async () => {
    const r = await net.run('c1', ['atftp', '--option', 'blksize 1428', '--option', 'windowsize 8', '--put', '-l', local('medium'), '-r', 'atftp.bin', server, PORT]);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(sha(await readFile(up('c1', 'atftp.bin')))).toBe(sha(await readFile(local('medium'))));
  });

  it('refuses a host that bootd does not know, and writes nothing', async () => {
    const r = await net.run('stranger', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'x.bin', server, PORT]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/known hosts|Access/i);
    expect(existsSync(up(net.host('stranger').address))).toBe(false);
  });

  it('refuses a path out of the directory; another host\'s name stays inside the writer\'s own', async () => {
    const r = await net.run('c1', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', '../c2/evil', server, PORT]);
    expect(r.exitCode).not.toBe(0);
    const r2 = await net.run('c1', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'c2/evil', server, PORT]);
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(existsSync(up('c2', 'evil'))).toBe(false);
    expect(existsSync(up('c1', 'c2', 'evil'))).toBe(true);
  });

  it('enforces the quota: up front when tsize says so, during the transfer otherwise', async () => {
    const r = await net.run('c2', ['busybox', 'tftp', '-p', '-l', local('medium'), '-r', 'too-big.bin', server, PORT]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/exceeded|quota|allocation/i);
    // tftp-hpa announces no tsize: the session stops it at the quota with ERROR 3
    const r2 = await net.run('c2', ['tftp', '-m', 'binary', server, PORT, '-c', 'put', local('medium'), 'too-big-2.bin']);
    expect(`${r2.stdout}${r2.stderr}`).toMatch(/exceeded|allocation|Error code 3/i);
    await until(() => !readdirSync(up('c2')).some((f) => f.startsWith('.upload-')), 5000, 'temporary file removed');
    expect(readdirSync(up('c2'))).toEqual([]);
    // within the quota it works
    const ok = await net.run('c2', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'fits.bin', server, PORT]);
    expect(ok.exitCode, ok.stderr).toBe(0);
  });

  it('an upload broken off mid-way leaves the previous file intact', async () => {
    const first = await net.run('c1', ['busybox', 'tftp', '-p', '-l', local('small'), '-r', 'keep.bin', server, PORT]);
    expect(first.exitCode).toBe(0);
    const child = net.spawn('c1', ['busybox', 'tftp', '-p', '-l', local('big'), '-r', 'keep.bin', server, PORT]);
    await until(() => readdirSync(up('c1')).some((f) => f.startsWith('.upload-')), 10_000, 'upload in progress');
    child.kill('SIGKILL');
    // the server gives up after --tftp-give-up-ms and removes its temporary file
    await until(() => !readdirSync(up('c1')).some((f) => f.startsWith('.upload-')), 15_000, 'temporary file removed');
    expect(sha(await readFile(up('c1', 'keep.bin')))).toBe(sha(await readFile(local('small'))));
    expect(bootd.logs.some((l) => l.msg === 'tftp transfer' && l.file === 'c1/keep.bin' && l.outcome === 'timeout')).toBe(true);
  });

  it('hosts read only their own directory', async () => {
    const mine = await net.run('c1', ['busybox', 'tftp', '-g', '-l', local('got-mine'), '-r', 'hpa.bin', server, PORT]);
    expect(mine.exitCode, mine.stderr).toBe(0);
    expect(sha(await readFile(local('got-mine')))).toBe(sha(await readFile(local('medium'))));
    // c2 asking for c1's file gets its own (empty) directory's answer: not found
    const theirs = await net.run('c2', ['busybox', 'tftp', '-g', '-l', local('got-theirs'), '-r', 'c1/hpa.bin', server, PORT]);
    expect(theirs.exitCode).not.toBe(0);
    const up2 = await net.run('c2', ['busybox', 'tftp', '-g', '-l', local('got-theirs2'), '-r', '../c1/hpa.bin', server, PORT]);
    expect(up2.exitCode).not.toBe(0);
  });
});
