import { describe, expect, it } from 'vitest';
import { AdminMemory, EventRing } from '../../src/admin/api.js';
import type { BootEvent } from '../../src/events/types.js';

const ev = (n: number): BootEvent => ({ type: 'hosts.reload', ok: true, hosts: n, issues: [], filesInError: 0 });
const hosts = (xs: { event: BootEvent }[]): number[] => xs.map((x) => (x.event.type === 'hosts.reload' ? x.event.hosts : -1));

describe('the dashboard\'s event ring', () => {
  it('keeps the newest, hands them out oldest first since the last take, and counts the rest', () => {
    const r = new EventRing(4);
    for (let i = 1; i <= 3; i++) r.push(ev(i), { seq: i, at: 1000 + i });
    expect(r.take()).toEqual({ events: [1, 2, 3].map((i) => ({ seq: i, at: 1000 + i, event: ev(i) })), skipped: 0 });
    expect(r.take()).toEqual({ events: [], skipped: 0 });
    for (let i = 4; i <= 10; i++) r.push(ev(i), { seq: i, at: 1000 + i });
    const t = r.take();
    expect([hosts(t.events), t.skipped]).toEqual([[7, 8, 9, 10], 3]);
    expect(hosts(r.newest(2))).toEqual([10, 9]);
    expect(hosts(r.newest(99))).toEqual([10, 9, 8, 7]);
  });

  it('remembers recent events and the builds it saw, with a running build\'s step', () => {
    const m = new AdminMemory();
    m.onEvent(ev(1), { seq: 1, at: 10 });
    m.onEvent({ type: 'image.build', image: 'bee', state: 'started' }, { seq: 2, at: 20 });
    m.onEvent({ type: 'image.build', image: 'bee', state: 'step', step: 'debootstrap', index: 2, total: 9 }, { seq: 3, at: 30 });
    expect(m.builds).toEqual([{ image: 'bee', state: 'running', startedAt: 20, endedAt: null, step: 'debootstrap', index: 2, total: 9, version: null, error: null }]);
    m.onEvent({ type: 'image.build', image: 'bee', state: 'finished', version: '2026.12.02', durationMs: 5 }, { seq: 4, at: 40 });
    expect(m.builds[0]).toMatchObject({ state: 'finished', endedAt: 40, version: '2026.12.02' });
    expect(m.recent(10).map((e) => e.seq)).toEqual([4, 3, 2, 1]);
  });
});
