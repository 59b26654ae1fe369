/**
 * The smoke runner against a real SSH server: ssh2's Server on 127.0.0.1,
 * accepting one ed25519 key (made with ssh-keygen, as bootd makes its own)
 * and running each exec request with the local shell. Then `bootd smoke
 * NAME` end to end: the CLI asks a running bootd over its control socket,
 * bootd logs in, runs the host's script, stores the result and the output.
 */
import { spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { Server, utils, type Connection } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSmoke } from '../../src/afterboot/smoke.js';
import { BOOTD_BIN } from '../helpers/bootd.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const PASSING = '#!/bin/sh\necho "PASS can run a shell"\necho "PASS stdin is the script"\necho "smoketest: 0 required check(s) failed"\n';
const FAILING = '#!/bin/sh\necho "PASS one"\necho "FAIL two: not there"\necho warn >&2\nexit 1\n';

let dir: string;
let server: Server | null = null;
let port = 0;
/** Exec commands the server received. */
const commands: string[] = [];

async function keygen(file: string): Promise<void> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
}

function startServer(hostKey: Buffer, allowedPub: string, at = 0): Promise<number> {
  const allowed = utils.parseKey(allowedPub);
  if (allowed instanceof Error) throw allowed;
  const want = allowed.getPublicSSH();
  server = new Server({ hostKeys: [hostKey] }, (client: Connection) => {
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.key.data.length !== want.length || !timingSafeEqual(ctx.key.data, want)) return ctx.reject(['publickey']);
      if (ctx.signature && ctx.blob && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, _reject, info) => {
          commands.push(info.command);
          const ch = acceptExec();
          const p = spawn('sh', ['-c', info.command], { stdio: ['pipe', 'pipe', 'pipe'] });
          ch.pipe(p.stdin);
          p.stdout.pipe(ch, { end: false });
          p.stderr.pipe(ch.stderr, { end: false });
          p.on('close', (code) => {
            ch.exit(code ?? 1);
            ch.end();
          });
        });
      });
    });
    client.on('error', () => {});
  });
  return new Promise((resolve) => server?.listen(at, '127.0.0.1', () => resolve((server?.address() as AddressInfo).port)));
}

describe('smoke test over SSH (ssh2 server on 127.0.0.1)', () => {
  let clientKey: Buffer;
  let otherKey: Buffer;

  beforeAll(async () => {
    dir = await makeWorkDir('smoke-ssh');
    await keygen(path.join(dir, 'host'));
    await keygen(path.join(dir, 'client'));
    await keygen(path.join(dir, 'other'));
    clientKey = readFileSync(path.join(dir, 'client'));
    otherKey = readFileSync(path.join(dir, 'other'));
    port = await startServer(readFileSync(path.join(dir, 'host')), readFileSync(path.join(dir, 'client.pub'), 'utf8'));
  });
  afterAll(async () => {
    server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const params = { host: '127.0.0.1', user: 'root', timeoutMs: 10_000, retryMs: 200 };

  it('runs the script on stdin under its #! interpreter and counts PASS lines', async () => {
    const r = await runSmoke({ ...params, port, privateKey: clientKey, script: PASSING });
    expect(r).toMatchObject({ ok: true, exitCode: 0, passed: 2, failed: [], attempts: 1 });
    expect(r.output).toMatch(/^# ssh root@127\.0\.0\.1:\d+ host key SHA256:[A-Za-z0-9+/]{43}\nPASS can run a shell\n/);
    expect(commands.at(-1)).toBe('/bin/sh -s');
  });

  it('a failing check: not ok, its FAIL line kept, stderr in the output', async () => {
    const r = await runSmoke({ ...params, port, privateKey: clientKey, script: FAILING });
    expect(r).toMatchObject({ ok: false, exitCode: 1, passed: 1, failed: ['FAIL two: not there'] });
    expect(r.output).toContain('warn\n');
  });

  it('retries while the SSH port does not answer yet', async () => {
    const hostKey = readFileSync(path.join(dir, 'host'));
    const first = server;
    // a port nobody listens on yet: bind, note, close
    const probe = new Server({ hostKeys: [hostKey] }, () => {});
    const freePort = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as AddressInfo).port)));
    probe.close();
    const run = runSmoke({ ...params, port: freePort, privateKey: clientKey, script: PASSING });
    await new Promise((r) => setTimeout(r, 1500));
    await startServer(hostKey, readFileSync(path.join(dir, 'client.pub'), 'utf8'), freePort);
    try {
      const r = await run;
      expect(r.ok, r.error).toBe(true);
      expect(r.attempts).toBeGreaterThan(1);
    } finally {
      server?.close();
      server = first;
    }
  });

  it('a key the host does not accept fails at once with the reason', async () => {
    const t0 = Date.now();
    const r = await runSmoke({ ...params, port, privateKey: otherKey, script: PASSING });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/authentication/i);
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it('a script that does not finish in time is stopped and reported', async () => {
    const r = await runSmoke({ ...params, port, privateKey: clientKey, script: 'echo "PASS started"\nsleep 30\n', timeoutMs: 1500 });
    expect(r).toMatchObject({ ok: false, exitCode: null, passed: 1 });
    expect(r.error).toMatch(/did not finish/);
  });

  it('bootd smoke NAME: the running bootd logs in, runs the host\'s script and records the result', async () => {
    const state = path.join(dir, 'state');
    const hosts = path.join(dir, 'hosts');
    await mkdir(hosts, { recursive: true });
    await mkdir(path.join(dir, 'root'), { recursive: true });
    await writeFile(path.join(dir, 'check.sh'), FAILING.replace('exit 1', 'exit 0').replace('FAIL two: not there', 'PASS two'));
    await writeFile(path.join(hosts, 'a.yaml'), `mac: 52:54:00:00:5a:01\nip: 127.0.0.1\nnetboot: false\nsmoke:\n  port: ${port}\n  identity_file: ${path.join(dir, 'client')}\n  script: ../check.sh\n`);
    // bootd saw this host boot before (its record holds the address to log in to)
    await mkdir(state, { recursive: true });
    const boot = { id: '20261122T000000Z-0001', startedAt: '2026-11-22T00:00:00.000Z', mac: '52:54:00:00:5a:01', ip: '127.0.0.1', phase: 'up', updatedAt: '2026-11-22T00:00:10.000Z', events: [] };
    await writeFile(path.join(state, 'hosts-state.json'), JSON.stringify({ version: 1, hosts: { a: { name: 'a', boots: [boot] } }, inventory: {} }));
    const serve = execa(process.execPath, [BOOTD_BIN, 'serve', '--tftp-root', path.join(dir, 'root'), '--listen', '127.0.0.1', '--tftp-port', '0', '--hosts', hosts, '--state', state, '--machine-ports', '41070-41079', '--log-format', 'json'], { reject: false, all: true, buffer: true });
    try {
      await until(() => readFile(path.join(state, 'bootd.sock')).then(() => false, (e: NodeJS.ErrnoException) => e.code !== 'ENOENT'), 20_000, 'control socket');
      const r = await execa(process.execPath, [BOOTD_BIN, 'smoke', 'a', '--state', state], { reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^PASS one\nPASS two\n/m);
      expect(r.stdout).toMatch(/smoke a: passed \(2\)$/m);
      const st = await execa(process.execPath, [BOOTD_BIN, 'status', '--json', '--state', state]);
      const last = (JSON.parse(st.stdout) as { hosts: { name: string; last: { phase: string; smoke: { ok: boolean; outputFile: string } } }[] }).hosts[0]?.last;
      expect(last?.phase).toBe('smoke-passed');
      expect(await readFile(path.join(state, last?.smoke.outputFile ?? 'x'), 'utf8')).toContain('PASS two\n');
      const unknown = await execa(process.execPath, [BOOTD_BIN, 'smoke', 'nobody', '--state', state], { reject: false });
      expect(unknown.exitCode).toBe(1);
      expect(unknown.stderr).toMatch(/no record of a host nobody/);
    } finally {
      serve.kill('SIGTERM');
      const done = await serve;
      expect(done.exitCode, done.all).toBe(0);
    }
  });
});
