import { describe, expect, it } from 'vitest';
import { FleetView, type ConfiguredHost } from '../../src/admin/fleet.js';
import type { InventoryEntry } from '../../src/afterboot/inventory.js';
import type { HostRecord } from '../../src/afterboot/record.js';
import { MemoryHostRecords } from '../../src/state/memory.js';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function rec(name: string, phase: HostRecord['boots'][number]['phase'], startedAt: number, updatedAt: number, extra: Partial<HostRecord['boots'][number]> = {}): HostRecord {
  return { name, boots: [{ id: `${name}-b`, startedAt: iso(startedAt), mac: `52:54:00:00:00:${name.slice(-2)}`, phase, updatedAt: iso(updatedAt), events: [], image: 'bee@2026.1', ...extra }] };
}

const inventory: InventoryEntry = {
  receivedAt: iso(T0),
  bytes: 1000,
  file: 'inventory/h02.json',
  collectedAt: null,
  summary: { board: 'QEMU', cpu: { model: 'AMD EPYC 7763', threads: 64, sockets: 1 }, memoryMiB: 262144, dimms: 8, disks: [{ name: 'nvme0n1', sizeBytes: 4e12, model: 'X' }], pcieDevices: 20, gpus: ['NVIDIA H100'], collectors: {} },
};

async function fleet(now: number) {
  const records = new MemoryHostRecords();
  await records.put(rec('h01', 'kernel', T0, T0 + 5000), true);
  await records.put(rec('h02', 'smoke-passed', T0, T0 + 60_000, { smoke: { ok: true, exitCode: 0, startedAt: iso(T0), durationMs: 1000, attempts: 1, passed: 7, failed: [] } }), true);
  await records.putInventory('h02', inventory);
  await records.put(rec('h03', 'dhcp', T0 - 3600_000, T0 - 3600_000), true);
  const hosts: ConfiguredHost[] = [
    { name: 'h01', file: 'hosts/h01.yaml', macs: ['52:54:00:00:00:01'], image: { name: 'bee' }, netboot: true },
    { name: 'h02', file: 'hosts/h02.yaml', macs: ['52:54:00:00:00:02'], image: { name: 'bee' }, netboot: true },
    { name: 'h04', file: 'hosts/h04.yaml', macs: ['52:54:00:00:00:04'], ip: '198.18.0.44', image: { name: 'buildos', version: '2026.3' }, netboot: true },
  ];
  const known = new Set(hosts.flatMap((h) => h.macs));
  const v = new FleetView({ records, hosts: () => hosts, isKnown: (m) => known.has(m), leaseOf: () => undefined, wallNow: () => now, staleAfterMs: 15 * 60_000 });
  await v.load();
  return { v, records, hosts, known };
}

describe('the fleet view', () => {
  it('has a row per host of hosts/ and per recorded host, with status, boot times, smoke and hardware', async () => {
    const { v } = await fleet(T0 + 10_000);
    const rows = v.rows();
    expect(rows.map((r) => [r.name, r.status, r.phase, r.configured])).toEqual([
      ['h01', 'booting', 'kernel', true],
      ['h02', 'smoke-passed', 'smoke-passed', true],
      ['h03', 'stale', 'dhcp', false],
      ['h04', 'never', null, true],
    ]);
    const h02 = rows[1];
    expect(h02?.bootDurationMs).toBe(60_000);
    expect(h02?.smoke).toEqual({ ok: true, passed: 7, failed: 0 });
    expect(h02?.hardware).toEqual({ cpu: 'AMD EPYC 7763', threads: 64, memoryMiB: 262144, disks: 1, diskBytes: 4e12, gpus: ['NVIDIA H100'] });
    expect(rows[3]).toMatchObject({ image: 'buildos@2026.3', ip: '198.18.0.44', mac: '52:54:00:00:00:04' });
  });

  it('turns a boot stale when nothing was heard of it for the set time', async () => {
    expect((await fleet(T0 + 5000 + 15 * 60_000)).v.rowOf('h01')?.status).toBe('booting');
    expect((await fleet(T0 + 5001 + 15 * 60_000)).v.rowOf('h01')?.status).toBe('stale');
  });

  it('searches, filters by status with counts over the search, and pages', async () => {
    const { v } = await fleet(T0 + 10_000);
    expect(v.query({ q: 'h100' }).items.map((r) => r.name)).toEqual(['h02']);
    expect(v.query({ q: '198.18.0.44' }).items.map((r) => r.name)).toEqual(['h04']);
    const p = v.query({ status: 'booting' });
    expect(p.items.map((r) => r.name)).toEqual(['h01']);
    expect(p.byStatus).toEqual({ booting: 1, 'smoke-passed': 1, stale: 1, never: 1 });
    const page = v.query({ offset: 1, limit: 2 });
    expect([page.items.map((r) => r.name), page.total]).toEqual([['h02', 'h03'], 4]);
    expect(v.hostsByPhase()).toEqual({ kernel: 1, 'smoke-passed': 1, dhcp: 1, none: 1 });
  });

  it('re-reads a host on its event and tells watchers the new row', async () => {
    const { v, records } = await fleet(T0 + 10_000);
    const seen: [string, string, number][] = [];
    const stop = v.watch((row, at) => seen.push([row.name, row.status, at]), () => {});
    await records.put(rec('h01', 'os-dhcp', T0, T0 + 9000), false);
    await v.onEvent({ type: 'host.phase', host: 'h01', boot: 'h01-b', phase: 'os-dhcp', ip: null, image: null }, { seq: 1, at: 42 });
    expect(seen).toEqual([['h01', 'booting', 42]]);
    expect(v.rowOf('h01')?.phase).toBe('os-dhcp');
    stop();
  });

  it('keeps machines that asked to boot but are in no hosts file as pending, with a hosts file to copy', async () => {
    const { v, known } = await fleet(T0);
    const news: string[] = [];
    v.watch(() => {}, (mac) => news.push(mac));
    const dhcp = (mac: string) => v.onEvent({ type: 'dhcp', message: 'discover', mac, clientId: null, ip: null, arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003016', relay: null, pxe: true, userClassIpxe: false, bootFile: null, reason: null });
    dhcp('52:54:00:00:00:01'); // known
    dhcp('52:54:00:ff:00:01');
    dhcp('52:54:00:ff:00:01');
    dhcp('52:54:00:ff:00:02');
    const pending = v.pendingMachines();
    expect(pending.map((p) => [p.mac, p.requests, p.arch])).toEqual([['52:54:00:ff:00:02', 1, 7], ['52:54:00:ff:00:01', 2, 7]]);
    expect(pending[0]?.snippet).toBe('# hosts/host-525400ff0002.yaml\nmac: 52:54:00:ff:00:02\nimage: bee\n');
    expect(news).toEqual(['52:54:00:ff:00:01', '52:54:00:ff:00:02']);
    expect(v.pendingOf(['52:54:00:ff:00:01', '52:54:00:00:00:01']).map((p) => p.mac)).toEqual(['52:54:00:ff:00:01']);
    known.add('52:54:00:ff:00:02'); // added to hosts/
    expect(v.pendingMachines().map((p) => p.mac)).toEqual(['52:54:00:ff:00:01']);
  });
});
