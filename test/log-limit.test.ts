import { describe, expect, it } from 'vitest';
import type { Logger } from '../src/log.js';
import { RepeatLimiter } from '../src/log-limit.js';
import { ManualClock } from './helpers/clock.js';

function recorder(): { log: Logger; lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg: msg ?? '' });
  const log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log, isLevelEnabled: () => true, level: 'info' } as Logger;
  return { log, lines };
}

describe('RepeatLimiter', () => {
  it('writes the first lines of a kind per window, counts the rest, and sums them up when the window ends', () => {
    const { log, lines } = recorder();
    const clock = new ManualClock();
    const l = new RepeatLimiter(log, clock, { burst: 3, windowMs: 1000 });
    for (let i = 0; i < 20_000; i++) l.warn('no-address', { i }, 'dhcp: no address to offer on this subnet');
    l.warn('decline', {}, 'dhcp decline');
    expect(lines).toHaveLength(4);
    clock.advance(1000);
    expect(lines).toHaveLength(5);
    expect(lines[4]).toMatchObject({ level: 'warn', obj: { kind: 'no-address', suppressed: 19_997 }, msg: 'dhcp: no address to offer on this subnet (repeated 19997 more times, not logged)' });
    expect(l.suppressedTotal).toBe(19_997);
    l.warn('no-address', {}, 'dhcp: no address to offer on this subnet'); // a new window
    expect(lines).toHaveLength(6);
  });

  it('on close writes what is counted, leaves no timer, and from then on logs straight through', () => {
    const { log, lines } = recorder();
    const clock = new ManualClock();
    const l = new RepeatLimiter(log, clock, { burst: 1, windowMs: 1000 });
    l.warn('k', {}, 'm');
    l.warn('k', {}, 'm');
    l.close();
    expect(lines.map((x) => x.msg)).toEqual(['m', 'm (repeated 1 more times, not logged)']);
    expect(clock.pending).toBe(0);
    l.warn('k', {}, 'm');
    l.warn('k', {}, 'm');
    expect(lines).toHaveLength(4);
    expect(clock.pending).toBe(0);
  });
});
