/**
 * Time as a dependency. Servers and state machines take a Clock so tests run
 * them with a manual clock instead of real time.
 */
import { performance } from 'node:perf_hooks';

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds (fractional). Not wall time. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for records and logs. */
  wallNow(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
