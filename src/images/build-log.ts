/**
 * The build's full log (a file under the state directory) and the one way
 * the builder runs a program: through execa, every output line appended to
 * the log, a non-zero exit turned into an error that quotes the command and
 * the last lines it printed.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';

export class BuildLog {
  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, '');
  }

  /** Synchronous on purpose: a crash must not lose the lines before it. */
  write(line: string): void {
    appendFileSync(this.file, line.endsWith('\n') ? line : `${line}\n`);
  }
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly tail: readonly string[],
  ) {
    super(`${command} ${exitCode === undefined ? 'could not run' : `exited with ${exitCode}`}${tail.length > 0 ? `:\n  ${tail.join('\n  ')}` : ''}`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Sees each output line (stdout and stderr), for progress. */
  readonly onLine?: (line: string) => void;
  /** Leave output lines out of the log (progress chatter such as cpio -v); failures still quote the last ones. */
  readonly unlogged?: boolean;
  /** Returns stdout instead of logging it line by line (stderr is still logged). */
  readonly capture?: boolean;
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const TAIL = 8;

/** Runs a program; resolves with its stdout when `capture`, else ''. */
export async function run(log: BuildLog, cmd: string, args: readonly string[], o: RunOptions = {}): Promise<string> {
  const shown = [cmd, ...args].map(shellQuote).join(' ');
  log.write(`$ ${shown}`);
  const tail: string[] = [];
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > TAIL) tail.shift();
  };
  const check = (r: { exitCode?: number | undefined; failed: boolean; message?: string | undefined }): void => {
    if (r.exitCode !== 0 || r.failed) throw new CommandError(shown, r.exitCode, r.exitCode === undefined ? [String(r.message)] : tail);
  };
  const env = { LC_ALL: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive', ...o.env };
  if (o.capture) {
    const r = await execa(cmd, args, { ...(o.cwd === undefined ? {} : { cwd: o.cwd }), env, stdin: 'ignore', reject: false, stripFinalNewline: false });
    for (const l of String(r.stderr).split('\n').filter((x) => x !== '')) {
      log.write(l);
      keep(l);
    }
    check(r);
    return String(r.stdout);
  }
  const p = execa(cmd, args, { ...(o.cwd === undefined ? {} : { cwd: o.cwd }), env, stdin: 'ignore', all: true, buffer: false, reject: false });
  try {
    for await (const line of p.iterable({ from: 'all' })) {
      if (!o.unlogged) log.write(line);
      keep(line);
      o.onLine?.(line);
    }
  } catch {
    // The stream ends with the process; its result below says what happened.
  }
  check(await p);
  return '';
}
