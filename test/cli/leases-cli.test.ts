/**
 * `bootd leases` against a state directory a real LeaseTable and FileLeaseStore
 * wrote: the list (active only, then --all), --json, and `leases show` by
 * address, MAC, client id and host name; an unknown key exits 1 and says so.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseTable } from '../../src/dhcp/leases.js';
import { formatIpv4, parseIpv4 } from '../../src/net/ipv4.js';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import { runCli } from '../helpers/bootd.js';
import { makeWorkDir } from '../helpers/workdir.js';

describe('bootd leases', () => {
  let dir: string;
  const state = (): string => path.join(dir, 'state');

  beforeAll(async () => {
    dir = await makeWorkDir('leases-cli');
    const store = await FileLeaseStore.open(state());
    const t = new LeaseTable({
      ranges: [{ start: parseIpv4('198.18.0.100') as number, end: parseIpv4('198.18.0.110') as number }],
      leaseSeconds: 3600, offerHoldMs: 30_000, declineHoldMs: 600_000, reservations: new Map(), excluded: new Set(),
    });
    const now = Date.now();
    t.request({ mac: '52:54:00:00:0b:01', clientId: '01525400000b01' }, parseIpv4('198.18.0.101') as number, now, 'bee-01');
    t.request({ mac: '52:54:00:00:0b:02', clientId: null }, parseIpv4('198.18.0.100') as number, now);
    t.request({ mac: '52:54:00:00:0b:03', clientId: null }, parseIpv4('198.18.0.102') as number, now);
    t.release({ mac: '52:54:00:00:0b:03', clientId: null }, parseIpv4('198.18.0.102') as number, now);
    await store.commit({ changes: () => t.takeChanged().map((ip) => ({ ip: formatIpv4(ip), lease: t.leaseAt(ip) })), all: () => t.all() });
    await store.close();
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists active leases by address with identity, state, expiry and host name', async () => {
    const r = await runCli(['leases', '--state', state()]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ADDRESS\s+STATE\s+MAC\s+CLIENT ID\s+EXPIRES\s+HOSTNAME$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      ['198.18.0.100', 'active', '52:54:00:00:0b:02', '-'],
      ['198.18.0.101', 'active', '52:54:00:00:0b:01', '01525400000b01'],
    ]);
    expect(lines[2]).toMatch(/bee-01$/);
  });

  it('lists released ones too with --all, and as JSON', async () => {
    const r = await runCli(['leases', '--state', state(), '--all', '--json']);
    const doc = JSON.parse(r.stdout) as { leases: { ip: string; state: string; clientId: string | null; hostname: string | null }[] };
    expect(doc.leases.map((l) => [l.ip, l.state])).toEqual([['198.18.0.100', 'active'], ['198.18.0.101', 'active'], ['198.18.0.102', 'released']]);
    expect(doc.leases[1]).toMatchObject({ clientId: '01525400000b01', hostname: 'bee-01' });
  });

  it.each([['198.18.0.101'], ['52:54:00:00:0b:01'], ['52-54-00-00-0B-01'], ['01525400000b01'], ['bee-01']])('shows one client by %s', async (key) => {
    const r = await runCli(['leases', 'show', key, '--state', state()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('address:   198.18.0.101');
    expect(r.stdout).toContain('client id: 01525400000b01');
  });

  it('says so and exits 1 for a key with no lease', async () => {
    const r = await runCli(['leases', 'show', '10.0.0.9', '--state', state()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no lease for "10.0.0.9"');
  });
});
