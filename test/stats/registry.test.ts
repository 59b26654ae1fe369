/** The stats registry (src/stats/registry.ts): live reads, stable names, kinds, a failing source isolated. */
import { describe, expect, it } from 'vitest';
import { StatsRegistry } from '../../src/stats/registry.js';

describe('StatsRegistry', () => {
  it('reads each source live, by dotted name, with counters and gauges told apart', () => {
    const reg = new StatsRegistry();
    const tftp = { completed: 0, active: 0 };
    reg.register('tftp', () => tftp, ['active']);
    reg.register('dhcp', () => ({ acks: 7 }));
    tftp.completed = 3;
    tftp.active = 2;
    expect(reg.read()).toEqual([
      { name: 'dhcp.acks', kind: 'counter', value: 7 },
      { name: 'tftp.active', kind: 'gauge', value: 2 },
      { name: 'tftp.completed', kind: 'counter', value: 3 },
    ]);
    tftp.completed = 4;
    expect(reg.snapshot()['tftp.completed']).toBe(4);
  });

  it('refuses a prefix twice or a prefix that is not a dotted name; a source that throws is left out and counted', () => {
    const reg = new StatsRegistry();
    reg.register('a', () => ({ x: 1 }));
    expect(() => reg.register('a', () => ({ y: 1 }))).toThrow(/twice/);
    expect(() => reg.register('Bad Name', () => ({ y: 1 }))).toThrow(/dotted/);
    reg.register('broken', () => {
      throw new Error('gone');
    });
    expect(reg.snapshot()).toEqual({ 'a.x': 1, 'stats.failedSources': 1 });
  });
});
