/**
 * Structured logging: JSON lines by default, human-readable on a TTY (or with
 * --log-format pretty). Modules receive a Logger; they never import pino.
 */
import { pino, destination, stdTimeFunctions } from 'pino';
import pretty from 'pino-pretty';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  /** `level` overrides the parent's for the child (pino's child options). */
  child(bindings: Record<string, unknown>, options?: { level?: string }): Logger;
  isLevelEnabled(level: string): boolean;
  readonly level: string;
}

export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LogOptions {
  readonly level: string;
  readonly format: LogFormat;
  /** File descriptor to write to; 2 (stderr) keeps stdout free for command output. */
  readonly fd?: number;
}

export function createLogger(opts: LogOptions): Logger {
  const fd = opts.fd ?? 2;
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stderr.isTTY === true && fd === 2);
  const base = { level: opts.level, base: { pid: process.pid }, timestamp: stdTimeFunctions.isoTime };
  if (usePretty) {
    return pino(base, pretty({ colorize: true, destination: fd, sync: true, ignore: 'pid,hostname' }));
  }
  return pino(base, destination({ fd, sync: false }));
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
