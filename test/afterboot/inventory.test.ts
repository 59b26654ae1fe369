import { describe, expect, it } from 'vitest';
import { formatSummary, MAX_REPORT_BYTES, parseAuditReport } from '../../src/afterboot/inventory.js';

/** The shape bee-audit writes (images/bee/overlay/usr/sbin/bee-audit), trimmed to what the summary reads. */
const report = {
  schema: 'bee-audit/1',
  host: 'bee',
  collected_at: '2026-11-22T08:26:56Z',
  kernel: '6.1.0-56-cloud-amd64',
  image: { image: 'bee', version: '20261122.082628' },
  collectors: {
    board: { status: 'ok', data: [{ handle: '0x0100', type: 1, name: 'System Information', fields: { Manufacturer: 'QEMU', 'Product Name': 'Standard PC (i440FX + PIIX, 1996)' } }] },
    cpu: { status: 'ok', data: { model: 'QEMU Virtual CPU version 2.5+', threads: 2, sockets: [{ type: 4 }] } },
    memory: { status: 'ok', data: { total_kib: 996_352, devices: [{ type: 17, fields: { Size: '1 GB' } }, { type: 17, fields: { Size: 'No Module Installed' } }] } },
    storage: { status: 'ok', data: { block_devices: [{ name: 'vda', type: 'disk', size: 10737418240, model: null }, { name: 'sr0', type: 'rom', size: 1 }], smart: [], nvme: [] } },
    pcie: { status: 'ok', data: [{ Slot: '0000:00:00.0' }, { Slot: '0000:00:01.0' }, { Slot: '0000:00:03.0' }] },
    psu: { status: 'skipped: no /dev/ipmi0', data: null },
    gpu: { status: 'ok', data: [{ index: 0, name: 'NVIDIA A100-SXM4-80GB' }] },
  },
};

describe('audit report as inventory', () => {
  it('summarises board, CPUs, memory, disks, PCIe devices and GPUs', () => {
    const r = parseAuditReport(JSON.stringify(report));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.collectedAt).toBe('2026-11-22T08:26:56Z');
    expect(r.summary).toEqual({
      board: 'QEMU Standard PC (i440FX + PIIX, 1996)',
      cpu: { model: 'QEMU Virtual CPU version 2.5+', threads: 2, sockets: 1 },
      memoryMiB: 973,
      dimms: 1,
      disks: [{ name: 'vda', sizeBytes: 10737418240, model: null }],
      pcieDevices: 3,
      gpus: ['NVIDIA A100-SXM4-80GB'],
      gpuDriver: null,
      firmware: { mode: null, secureBoot: null },
      collectors: { board: 'ok', cpu: 'ok', memory: 'ok', storage: 'ok', pcie: 'ok', psu: 'skipped: no /dev/ipmi0', gpu: 'ok' },
    });
    expect(formatSummary(r.summary)).toContain('disks:   vda 10.0 GiB');
  });

  it('GPUs as the gpu collector lists them: nvidia-smi data, and a GPU on the PCI bus that no driver serves', () => {
    const gpu = {
      status: 'ok',
      data: {
        driver: { status: 'loaded 535.216.03: 1 GPU(s)', version: '535.216.03' },
        gpus: [
          { index: 0, name: 'NVIDIA H100 80GB HBM3', memory_total_mib: 81559, pci: '0000:17:00.0', source: 'nvidia-smi', driver: 'nvidia' },
          { pci: '0000:2a:00.0', name: 'GH100 [H100 SXM5 80GB]', device_id: '10de:2330', source: 'pci', driver: 'none', status: 'no driver: loaded 535.216.03: 1 GPU(s)' },
        ],
      },
    };
    const r = parseAuditReport(JSON.stringify({ ...report, collectors: { ...report.collectors, gpu } }));
    expect(r.ok && r.summary.gpus).toEqual(['NVIDIA H100 80GB HBM3 (80 GiB, 0000:17:00.0)', 'GH100 [H100 SXM5 80GB] (0000:2a:00.0, no driver)']);
    expect(r.ok && r.summary.gpuDriver).toBe('loaded 535.216.03: 1 GPU(s)');
    expect(r.ok && formatSummary(r.summary)).toContain('gpus:    NVIDIA H100 80GB HBM3 (80 GiB, 0000:17:00.0), GH100 [H100 SXM5 80GB] (0000:2a:00.0, no driver); driver: loaded 535.216.03: 1 GPU(s)');
    const skipped = parseAuditReport(JSON.stringify({ ...report, collectors: { ...report.collectors, gpu: { status: 'skipped: no NVIDIA GPU on the PCI bus (vendor 10de, display class 03xx); driver: skipped: no NVIDIA GPU on the PCI bus', data: null } } }));
    expect(skipped.ok && skipped.summary.gpus).toEqual([]);
    expect(skipped.ok && formatSummary(skipped.summary)).toContain('gpus:    none');
  });

  it('a collector that failed leaves its part unknown, not the whole report', () => {
    const r = parseAuditReport(JSON.stringify({ ...report, collectors: { ...report.collectors, cpu: { status: 'error: exit 1: boom', data: null } } }));
    expect(r.ok && r.summary.cpu).toEqual({ model: null, threads: null, sockets: null });
    expect(r.ok && r.summary.collectors.cpu).toBe('error: exit 1: boom');
  });

  it.each([
    ['not JSON', '{"schema": "bee-audit/1",', /^not JSON/],
    ['another schema', JSON.stringify({ ...report, schema: 'bee-audit/2' }), /^schema: expected schema "bee-audit\/1"/],
    ['no collectors', JSON.stringify({ schema: 'bee-audit/1' }), /^collectors: /],
    ['a collector without status', JSON.stringify({ schema: 'bee-audit/1', collectors: { cpu: { data: 1 } } }), /^collectors\.cpu\.status: /],
    ['an array', '[]', /^report: /],
    ['too large', `{"x":"${'a'.repeat(MAX_REPORT_BYTES)}"}`, /larger than/],
  ])('refuses %s with a reason', (_what, text, reason) => {
    const r = parseAuditReport(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(reason);
  });
});
