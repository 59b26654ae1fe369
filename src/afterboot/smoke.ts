/**
 * The post-boot smoke test, as seed 000 runs it by hand:
 *   ssh root@<ip> 'sh -s' < smoketest.sh
 * over ssh2 (no ssh binary, no known_hosts to manage). Required checks print
 * `PASS name` or `FAIL name[: why]`; exit 0 means every required check passed.
 *
 * The host was just netbooted and made its SSH host key at boot (dropbear,
 * sshd-keygen), so there is nothing to pin it to: the key's SHA-256
 * fingerprint is recorded with the output instead. bootd's own key pair
 * (<state>/ssh/bootd_ed25519) is baked into images as root's authorized key.
 */
import { systemClock, type Clock } from '../net/clock.js';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Client } from 'ssh2';

export interface SmokeParams {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey: Buffer | string;
  readonly script: string;
  /** Everything, connection retries included. */
  readonly timeoutMs: number;
  /** Pause between connection attempts while SSH is not up yet. */
  readonly retryMs?: number;
}

export interface SmokeRun {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly attempts: number;
  readonly durationMs: number;
  readonly passed: number;
  readonly failed: string[];
  /** stdout and stderr as they came, with a header naming the host key. */
  readonly output: string;
  readonly error?: string;
}

/**
 * The remote command that reads the script from stdin: its #! interpreter
 * (`#!/bin/bash` -> `/bin/bash -s`, as buildos's header asks), else `sh -s`.
 */
export function remoteCommand(script: string): string {
  const m = /^#!\s*(\/[A-Za-z0-9_./-]+)(?:[ \t]+([A-Za-z0-9_-]+))?[ \t]*\r?\n/.exec(script);
  if (!m) return 'sh -s';
  // #!/usr/bin/env bash
  if (m[1]?.endsWith('/env') && m[2]) return `${m[2]} -s`;
  return `${m[1] ?? 'sh'} -s`;
}

/** PASS and FAIL lines of a smoke script's output. */
export function parseSmokeOutput(out: string): { passed: number; failed: string[] } {
  let passed = 0;
  const failed: string[] = [];
  for (const raw of out.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (/^PASS\b/.test(line)) passed++;
    else if (/^FAIL\b/.test(line)) failed.push(line);
  }
  return { passed, failed };
}

/** Whether a TCP port accepts a connection within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs: number, clock: Clock = systemClock): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      t.cancel();
      s.destroy();
      resolve(ok);
    };
    const t = clock.setTimer(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

type Attempt = { kind: 'ran'; exitCode: number | null; signal?: string; output: string } | { kind: 'no-connection'; error: string };

function attempt(p: SmokeParams, deadline: number, clock: Clock): Promise<Attempt> {
  return new Promise((resolve) => {
    const c = new Client();
    let out = '';
    let settled = false;
    let connected = false;
    let fingerprint = '';
    const finish = (a: Attempt): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      c.end();
      resolve(a);
    };
    const timer = clock.setTimer(Math.max(1, deadline - clock.now()), () => finish(connected ? { kind: 'ran', exitCode: null, signal: 'timeout', output: out } : { kind: 'no-connection', error: 'timed out connecting' }));
    c.on('ready', () => {
      connected = true;
      out += `# ssh ${p.user}@${p.host}:${p.port} host key SHA256:${fingerprint}\n`;
      c.exec(remoteCommand(p.script), (err, stream) => {
        if (err) return finish({ kind: 'ran', exitCode: null, signal: `exec failed: ${err.message}`, output: out });
        stream.on('data', (d: Buffer) => (out += d.toString('utf8')));
        stream.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
        stream.on('close', (code: number | null, signal?: string) => finish({ kind: 'ran', exitCode: code ?? null, ...(signal ? { signal } : {}), output: out }));
        stream.end(p.script);
      });
    });
    c.on('error', (err) => finish(connected ? { kind: 'ran', exitCode: null, signal: err.message, output: out } : { kind: 'no-connection', error: err.message }));
    c.on('close', () => finish(connected ? { kind: 'ran', exitCode: null, signal: 'connection closed', output: out } : { kind: 'no-connection', error: 'connection closed' }));
    c.connect({
      host: p.host,
      port: p.port,
      username: p.user,
      privateKey: p.privateKey,
      readyTimeout: Math.max(1000, Math.min(20_000, deadline - clock.now())),
      hostVerifier: (key: Buffer) => {
        fingerprint = createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
        return true;
      },
    });
  });
}

/** Runs the script once SSH lets us in, retrying until the overall timeout (measured on `clock`). */
export async function runSmoke(p: SmokeParams, clock: Clock = systemClock): Promise<SmokeRun> {
  const started = clock.now();
  const deadline = started + p.timeoutMs;
  let attempts = 0;
  let last = '';
  while (clock.now() < deadline) {
    attempts++;
    const a = await attempt(p, deadline, clock);
    if (a.kind === 'ran') {
      const { passed, failed } = parseSmokeOutput(a.output);
      const ok = a.exitCode === 0 && failed.length === 0;
      return {
        ok,
        exitCode: a.exitCode,
        attempts,
        durationMs: Math.round(clock.now() - started),
        passed,
        failed,
        output: a.output,
        ...(a.exitCode === null ? { error: `the script did not finish: ${a.signal ?? 'no exit status'}` } : !ok && failed.length === 0 ? { error: `exit ${a.exitCode} with no FAIL line` } : {}),
      };
    }
    last = a.error;
    // authentication failures will not heal by waiting
    if (/authentication/i.test(last)) break;
    await new Promise<void>((r) => clock.setTimer(Math.min(p.retryMs ?? 1000, Math.max(0, deadline - clock.now())), r));
  }
  return { ok: false, exitCode: null, attempts, durationMs: Math.round(clock.now() - started), passed: 0, failed: [], output: '', error: `no SSH session with ${p.user}@${p.host}:${p.port}: ${last || 'timed out'}` };
}
