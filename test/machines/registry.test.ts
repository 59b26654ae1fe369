import { describe, expect, it } from 'vitest';
import { freePort, plan, type Machine } from '../../src/machines/registry.js';

const now = new Date('2026-11-22T08:00:00Z');
const range = { first: 1070, last: 1073 };
const cliMachine = (name: string, port: number, expiresAt: string | null): Machine => ({ name, port, owner: { ip: '198.18.0.9' }, quotaBytes: 1, overwrite: true, openedAt: now.toISOString(), expiresAt, source: 'cli' });

describe('machine port plan', () => {
  it('gives build hosts the lowest free ports and keeps a port once given', () => {
    const first = plan([], [{ name: 'b', mac: '52:54:00:00:00:02', quotaBytes: 5 }, { name: 'a', ip: '198.18.0.1', quotaBytes: 7 }], range, now);
    expect(first.machines.map((m) => [m.name, m.port, m.source, m.expiresAt])).toEqual([['a', 1070, 'hosts', null], ['b', 1071, 'hosts', null]]);
    // a newcomer sorting before both does not take their ports
    const second = plan(first.machines, [{ name: '0new', quotaBytes: 1 }, { name: 'a', quotaBytes: 7 }, { name: 'b', quotaBytes: 5 }], range, now);
    expect(second.machines.map((m) => [m.name, m.port])).toEqual([['a', 1070], ['b', 1071], ['0new', 1072]]);
  });

  it('drops expired CLI machines and hosts that lost build:, reports hosts with no free port', () => {
    const prev = [cliMachine('old', 1070, '2026-11-22T07:59:59Z'), cliMachine('live', 1071, '2026-11-22T09:00:00Z'), cliMachine('forever', 1072, null)];
    const r = plan(prev, [{ name: 'h1', quotaBytes: 1 }, { name: 'h2', quotaBytes: 1 }], range, now);
    expect(r.machines.map((m) => [m.name, m.port])).toEqual([['h1', 1070], ['live', 1071], ['forever', 1072], ['h2', 1073]]);
    const full = plan(r.machines, [{ name: 'h1', quotaBytes: 1 }, { name: 'h2', quotaBytes: 1 }, { name: 'h3', quotaBytes: 1 }], range, now);
    expect(full.noPort).toEqual(['h3']);
    expect(plan(full.machines, [], range, now).machines.map((m) => m.name)).toEqual(['live', 'forever']);
  });

  it('a host file marking a CLI-opened machine build: takes it over', () => {
    const r = plan([cliMachine('m', 1072, null)], [{ name: 'm', quotaBytes: 3 }], range, now);
    expect(r.machines).toHaveLength(1);
    expect(r.machines[0]).toMatchObject({ name: 'm', source: 'hosts', quotaBytes: 3 });
  });

  it('freePort', () => {
    expect(freePort(range, new Set([1070, 1072]))).toBe(1071);
    expect(freePort(range, new Set([1070, 1071, 1072, 1073]))).toBeNull();
  });
});

describe('machine overwrite policy from the host file', () => {
  it('follows build: overwrite, default true', () => {
    const r = plan([], [{ name: 'a', quotaBytes: 1, overwrite: false }, { name: 'b', quotaBytes: 1 }], range, now);
    expect(r.machines.map((m) => [m.name, m.overwrite])).toEqual([['a', false], ['b', true]]);
  });
});
