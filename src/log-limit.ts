/**
 * Warnings that a client can cause once per packet (a flood of DISCOVERs into
 * an exhausted pool, DECLINEs, replies that do not fit) must not become a
 * log line per packet: per kind, the first `burst` lines of a window are
 * written, the rest are counted and one summary line says how many were
 * left out when the window ends.
 */
import type { Clock, TimerHandle } from './net/clock.js';
import type { Logger } from './log.js';

export interface RepeatLimitOptions {
  /** Lines written per kind and window before the rest are counted. */
  readonly burst: number;
  readonly windowMs: number;
}

export const DEFAULT_REPEAT_LIMIT: RepeatLimitOptions = { burst: 5, windowMs: 10_000 };

interface Window {
  written: number;
  suppressed: number;
  msg: string;
  timer: TimerHandle;
}

export class RepeatLimiter {
  private readonly windows = new Map<string, Window>();
  private closed = false;
  /** Lines left out so far, all kinds together (for stats). */
  suppressedTotal = 0;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly opts: RepeatLimitOptions = DEFAULT_REPEAT_LIMIT,
  ) {}

  warn(kind: string, obj: object, msg: string): void {
    this.line('warn', kind, obj, msg);
  }

  info(kind: string, obj: object, msg: string): void {
    this.line('info', kind, obj, msg);
  }

  private line(level: 'warn' | 'info', kind: string, obj: object, msg: string): void {
    if (this.closed) {
      this.log[level](obj, msg); // stopping: no new windows, no timers left behind
      return;
    }
    let w = this.windows.get(kind);
    if (!w) {
      const timer = this.clock.setTimer(this.opts.windowMs, () => this.endWindow(kind, level));
      w = { written: 0, suppressed: 0, msg, timer };
      this.windows.set(kind, w);
    }
    if (w.written < this.opts.burst) {
      w.written++;
      this.log[level](obj, msg);
      return;
    }
    w.suppressed++;
    this.suppressedTotal++;
  }

  private endWindow(kind: string, level: 'warn' | 'info'): void {
    const w = this.windows.get(kind);
    this.windows.delete(kind);
    if (w && w.suppressed > 0) this.log[level]({ kind, suppressed: w.suppressed, windowMs: this.opts.windowMs }, `${w.msg} (repeated ${w.suppressed} more times, not logged)`);
  }

  /** Writes what is still counted and stops the timers. */
  close(): void {
    this.closed = true;
    for (const [kind, w] of [...this.windows]) {
      w.timer.cancel();
      this.endWindow(kind, 'warn');
    }
  }
}
