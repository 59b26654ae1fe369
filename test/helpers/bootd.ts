/**
 * Starts the real `bootd` CLI (the compiled dist/, as an operator runs it)
 * inside a test network namespace and waits until it listens; or runs a
 * CLI command to completion (runCli).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestNet } from './netns.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BOOTD_BIN = path.join(REPO, 'bin/bootd');
const execFileP = promisify(execFile);

/** Runs the built CLI to completion (no namespace): exit code, stdout, stderr. */
export async function runCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP(process.execPath, [BOOTD_BIN, ...args], { cwd: REPO });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}


export interface RunningBootd {
  readonly child: ChildProcess;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Everything it wrote to stderr (JSON lines and anything else, such as a crash trace). */
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `keep` chooses the log lines kept in `logs` (a flood test would otherwise hold every line in memory). */
export async function startBootd(net: TestNet, host: string, args: readonly string[], readyMsg = 'tftp listening', keep: (rec: Record<string, unknown>) => boolean = () => true): Promise<RunningBootd> {
  const child = net.spawn(host, [process.execPath, BOOTD_BIN, 'serve', '--log-format', 'json', ...args]);
  const logs: Record<string, unknown>[] = [];
  let buf = '';
  let stderrText = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bootd did not log "${readyMsg}" within 20 s: ${stderrText.slice(-2000)}`)), 20_000);
    child.stderr?.on('data', (d: Buffer) => {
      stderrText += d.toString();
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          if (keep(rec)) logs.push(rec);
          if (rec.msg === readyMsg) {
            clearTimeout(timer);
            resolve();
          }
        } catch {
          /* not JSON: a crash trace; kept in stderrText */
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bootd exited with ${code} before it was ready: ${stderrText.slice(-2000)}`));
    });
  });
  return {
    child,
    logs,
    stderr: () => stderrText,
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}
