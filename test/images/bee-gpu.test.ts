/**
 * bee's gpu collector (images/bee/overlay/usr/sbin/bee-gpu, bee-gpu-pci,
 * bee-nvidia-json) run as the image runs it: busybox sh and busybox's
 * applets, jq, a sysfs tree made here (BEE_SYS) and an nvidia-smi that
 * prints the fixtures of test/fixtures/nvidia-smi (README there: where each
 * came from). No GPU is needed; the lab and the real build run the rest.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(__dirname, '../..');
const SBIN = path.join(REPO, 'images/bee/overlay/usr/sbin');
const FIX = path.join(REPO, 'test/fixtures/nvidia-smi');
const which = (c: string): string | null => {
  const r = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};
const BUSYBOX = which('busybox');
const JQ = which('jq');
const skip = BUSYBOX === null || JQ === null ? 'needs busybox and jq (bash scripts/setup.sh installs both)' : null;
if (skip) console.warn(`SKIPPED bee gpu collector: ${skip}`);

interface Dev {
  readonly addr: string;
  readonly vendor: string;
  readonly device: string;
  readonly cls: string;
  readonly driver?: string;
}

describe.skipIf(skip !== null)('bee gpu collector (busybox, fixtures)', () => {
  let dir: string;
  let bin: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'bootd-beegpu-'));
    bin = path.join(dir, 'bin');
    mkdirSync(bin);
    // busybox's applets, as the image links them (hooks/10-busybox-links.sh), and nothing of the host but jq
    for (const a of ['sh', 'awk', 'sed', 'cat', 'tr', 'head', 'tail', 'cut', 'basename', 'readlink', 'printf', 'timeout', 'grep', 'echo', 'ls', 'wc']) symlinkSync(BUSYBOX as string, path.join(bin, a));
    symlinkSync(JQ as string, path.join(bin, 'jq'));
    for (const s of ['bee-gpu', 'bee-gpu-pci', 'bee-nvidia-json', 'bee-gpu-stress']) symlinkSync(path.join(SBIN, s), path.join(bin, s));
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A sysfs tree with these PCI devices (vendor, device, class files; a driver link). */
  function sysfs(name: string, devs: readonly Dev[]): string {
    const sys = path.join(dir, name);
    const drivers = path.join(sys, 'bus/pci/drivers');
    mkdirSync(drivers, { recursive: true });
    for (const d of devs) {
      const p = path.join(sys, 'bus/pci/devices', d.addr);
      mkdirSync(p, { recursive: true });
      writeFileSync(path.join(p, 'vendor'), `0x${d.vendor}\n`);
      writeFileSync(path.join(p, 'device'), `0x${d.device}\n`);
      writeFileSync(path.join(p, 'class'), `0x${d.cls}\n`);
      if (d.driver) {
        mkdirSync(path.join(drivers, d.driver), { recursive: true });
        symlinkSync(`../../../bus/pci/drivers/${d.driver}`, path.join(p, 'driver'));
      }
    }
    return sys;
  }

  /** An nvidia-smi that records its arguments and prints `out` with exit `rc`. */
  function fakeSmi(name: string, out: string, rc: number): string {
    const d = path.join(dir, `smi-${name}`);
    mkdirSync(d);
    writeFileSync(path.join(d, 'out'), out);
    writeFileSync(path.join(d, 'nvidia-smi'), `#!${BUSYBOX} sh\necho "$*" > "${d}/args"\ncat "${d}/out"\nexit ${rc}\n`);
    chmodSync(path.join(d, 'nvidia-smi'), 0o755);
    return d;
  }

  function runGpu(sys: string, status: string, smiDir?: string): { rc: number | null; out: string; err: string } {
    const st = path.join(dir, `status-${Math.random().toString(36).slice(2)}`);
    writeFileSync(st, `${status}\n`);
    const scratch = mkdtempSync(path.join(dir, 'scratch-'));
    const r = spawnSync(BUSYBOX as string, ['sh', path.join(SBIN, 'bee-gpu'), scratch], {
      encoding: 'utf8',
      env: { PATH: smiDir ? `${smiDir}:${bin}` : bin, BEE_SYS: sys, BEE_NVIDIA_STATUS: st },
      timeout: 30_000,
    });
    return { rc: r.status, out: r.stdout, err: r.stderr };
  }

  const H100A: Dev = { addr: '0000:18:00.0', vendor: '10de', device: '2330', cls: '030200', driver: 'nvidia' };
  const H100B: Dev = { addr: '0000:2a:00.0', vendor: '10de', device: '2330', cls: '030200', driver: 'nvidia' };
  const H100C: Dev = { addr: '0000:9a:00.0', vendor: '10de', device: '2330', cls: '030200' };
  const others: Dev[] = [
    { addr: '0000:00:02.0', vendor: '8086', device: '1234', cls: '030000' }, // another vendor's VGA
    { addr: '0000:18:00.1', vendor: '10de', device: '22a3', cls: '040300' }, // NVIDIA, but an audio function
    { addr: '0000:00:1f.0', vendor: '8086', device: '7a06', cls: '060100' },
  ];

  it('lists NVIDIA display and 3D controllers from sysfs only, with the bound driver', () => {
    const sys = sysfs('pci', [...others, H100A, H100C]);
    const out = execFileSync(BUSYBOX as string, ['sh', path.join(SBIN, 'bee-gpu-pci')], { encoding: 'utf8', env: { PATH: bin, BEE_SYS: sys } });
    expect(JSON.parse(out)).toEqual([
      { pci: '0000:18:00.0', vendor: '10de', device: '2330', class: '0302', name: 'NVIDIA device 10de:2330', bound: 'nvidia' },
      { pci: '0000:9a:00.0', vendor: '10de', device: '2330', class: '0302', name: 'NVIDIA device 10de:2330', bound: null },
    ]);
  });

  it('no NVIDIA GPU: skipped, with the reason and what the driver did', () => {
    const r = runGpu(sysfs('none', others), 'skipped: no NVIDIA GPU on the PCI bus');
    expect(r.rc).toBe(2);
    expect(r.err.trim()).toBe('no NVIDIA GPU on the PCI bus (vendor 10de, display class 03xx); driver: skipped: no NVIDIA GPU on the PCI bus');
  });

  it('driver loaded: every GPU from nvidia-smi with its fields, and a GPU the driver does not serve from PCI', () => {
    const smi = fakeSmi('h100', readFileSync(path.join(FIX, 'h100x2-query.csv'), 'utf8'), 0);
    const r = runGpu(sysfs('three', [...others, H100A, H100B, H100C]), 'loaded 535.216.03: 2 GPU(s)', smi);
    expect(r.rc, r.err).toBe(0);
    // the collector's own field list went to nvidia-smi
    expect(readFileSync(path.join(smi, 'args'), 'utf8')).toMatch(/^--query-gpu=index,name,serial,uuid,pci\.bus_id,vbios_version,driver_version,memory\.total,ecc\.mode\.current,.*temperature\.gpu --format=csv,nounits$/m);
    const g = JSON.parse(r.out) as { driver: unknown; gpus: Record<string, unknown>[] };
    expect(g.driver).toEqual({ status: 'loaded 535.216.03: 2 GPU(s)', version: '535.216.03' });
    expect(g.gpus).toHaveLength(3);
    expect(g.gpus[0]).toEqual({
      index: 0, name: 'NVIDIA H100 80GB HBM3', serial: '1652223012345', uuid: 'GPU-5a1b2c3d-0000-4000-8000-00000000a001', pci_bus_id: '00000000:18:00.0',
      vbios_version: '96.00.74.00.01', driver_version: '535.216.03', memory_total_mib: 81559, ecc_mode_current: 'Enabled',
      ecc_errors_corrected_volatile_total: 0, ecc_errors_uncorrected_volatile_total: 0, ecc_errors_corrected_aggregate_total: 12, ecc_errors_uncorrected_aggregate_total: 0,
      power_limit_w: 700, pcie_link_gen_current: 5, pcie_link_gen_max: 5, pcie_link_width_current: 16, pcie_link_width_max: 16, temperature_gpu: 33,
      pci: '0000:18:00.0', source: 'nvidia-smi', driver: 'nvidia', pci_name: 'NVIDIA device 10de:2330',
    });
    // nvidia-smi's upper-case bus id matches sysfs's lower-case one
    expect(g.gpus[1]).toMatchObject({ index: 1, pci: '0000:2a:00.0', source: 'nvidia-smi' });
    expect(g.gpus[2]).toEqual({ pci: '0000:9a:00.0', name: 'NVIDIA device 10de:2330', device_id: '10de:2330', class: '0302', source: 'pci', driver: 'none', status: 'no driver: loaded 535.216.03: 2 GPU(s)' });
  });

  it('the module refused: GPUs still listed from PCI, marked no driver, with the reason', () => {
    const r = runGpu(sysfs('refused', [H100A, H100B]), 'failed: insmod nvidia.ko refused: No such device');
    expect(r.rc, r.err).toBe(0);
    const g = JSON.parse(r.out) as { driver: { status: string }; gpus: Record<string, unknown>[] };
    expect(g.driver.status).toBe('failed: insmod nvidia.ko refused: No such device');
    expect(g.gpus.map((x) => [x.pci, x.source, x.driver, x.status])).toEqual([
      ['0000:18:00.0', 'pci', 'none', 'no driver: failed: insmod nvidia.ko refused: No such device'],
      ['0000:2a:00.0', 'pci', 'none', 'no driver: failed: insmod nvidia.ko refused: No such device'],
    ]);
  });

  it('nvidia-smi cannot reach the driver (recorded output): the reason is nvidia-smi\'s own words', () => {
    const smi = fakeSmi('nodriver', readFileSync(path.join(FIX, 'no-driver.txt'), 'utf8'), 9);
    const r = runGpu(sysfs('nodriver', [H100A]), 'loaded 535.216.03: 1 GPU(s)', smi);
    const g = JSON.parse(r.out) as { driver: { status: string }; gpus: Record<string, unknown>[] };
    expect(g.driver.status).toMatch(/^failed: nvidia-smi --query-gpu: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
    expect(g.gpus).toEqual([expect.objectContaining({ pci: '0000:18:00.0', source: 'pci', driver: 'none' })]);
  });

  it('every fixture CSV parses: one object per GPU, keys from the header, [N/A] as null, serials as strings', () => {
    const csvs = readdirSync(FIX).filter((f) => f.endsWith('.csv'));
    expect(csvs.length).toBeGreaterThanOrEqual(2);
    for (const f of csvs) {
      const text = readFileSync(path.join(FIX, f), 'utf8');
      const rows = text.split('\n').filter((l) => l.trim() !== '');
      const out = execFileSync(BUSYBOX as string, ['sh', path.join(SBIN, 'bee-nvidia-json')], { input: text, encoding: 'utf8', env: { PATH: bin } });
      const gpus = JSON.parse(out) as Record<string, unknown>[];
      expect(gpus, f).toHaveLength(rows.length - 1);
      const header = (rows[0] as string).split(',').length;
      for (const g of gpus) {
        expect(Object.keys(g), f).toHaveLength(header);
        expect(typeof g.index, f).toBe('number');
        expect(g.serial === null || typeof g.serial === 'string', f).toBe(true);
        expect(typeof g.name, f).toBe('string');
      }
    }
    const a10 = JSON.parse(execFileSync(BUSYBOX as string, ['sh', path.join(SBIN, 'bee-nvidia-json')], { input: readFileSync(path.join(FIX, 'a10-no-ecc.csv')), encoding: 'utf8', env: { PATH: bin } })) as Record<string, unknown>[];
    expect(a10[0]).toMatchObject({ name: 'NVIDIA A10', serial: null, ecc_mode_current: 'Disabled', ecc_errors_corrected_volatile_total: null, memory_total_mib: 23028, power_limit_w: 150, pcie_link_gen_current: 1, pcie_link_gen_max: 4 });
  });

  it('GPU stress runs only when the host asks, the operator\'s program from its folder; OK passes, FAULTY or a missing program fails', () => {
    const stress = (cmdline: string, program?: string): { rc: number | null; out: string } => {
      const d = mkdtempSync(path.join(dir, 'stress-'));
      writeFileSync(path.join(d, 'cmdline'), `${cmdline}\n`);
      const g = path.join(d, 'gpu-stress');
      mkdirSync(g);
      if (program !== undefined) {
        // a stand-in for gpu_burn: reads a file beside it (as gpu_burn reads compare.ptx) and prints its verdict
        writeFileSync(path.join(g, 'compare.ptx'), 'ptx\n');
        writeFileSync(path.join(g, 'gpu_burn'), `#!${BUSYBOX} sh\ntest -s compare.ptx || exit 3\necho "burning for $1 seconds with LD_LIBRARY_PATH=$LD_LIBRARY_PATH"\n${program}\n`);
        chmodSync(path.join(g, 'gpu_burn'), 0o755);
        writeFileSync(path.join(g, '.program'), 'gpu_burn\n');
      }
      const r = spawnSync(BUSYBOX as string, ['sh', path.join(SBIN, 'bee-gpu-stress')], { encoding: 'utf8', env: { PATH: bin, BEE_CMDLINE: path.join(d, 'cmdline'), BEE_GPU_STRESS_DIR: g }, timeout: 30_000 });
      return { rc: r.status, out: r.stdout.trim() };
    };
    expect(stress('BOOTIF=01-52-54-00-b0-07-01 panic=30', 'echo "GPU 0: OK"')).toEqual({ rc: 0, out: "SKIP GPU stress: not asked (bee.gpu_stress=<seconds> in the host's kernel_args)" });
    expect(stress('panic=30 bee.gpu_stress=2', 'echo "GPU 0: OK"; echo "GPU 1: OK"')).toEqual({ rc: 0, out: 'PASS GPU stress: gpu_burn 2s: 2 GPU(s) OK' });
    const faulty = stress('bee.gpu_stress=2', 'echo "GPU 0: OK"; echo "GPU 1: FAULTY"');
    expect(faulty.rc).toBe(1);
    expect(faulty.out).toMatch(/^FAIL GPU stress: gpu_burn 2s: exit 0: GPU 1: FAULTY/);
    expect(stress('bee.gpu_stress=2', 'exit 7').out).toMatch(/^FAIL GPU stress: gpu_burn 2s: exit 7/);
    expect(stress('bee.gpu_stress=2')).toEqual({ rc: 1, out: 'FAIL GPU stress: bee.gpu_stress=2 asked, but the image has no stress program (recipe key nvidia: stress:)' });
    expect(stress('bee.gpu_stress=ten', 'echo "GPU 0: OK"').out).toBe('FAIL GPU stress: bee.gpu_stress=ten is not a number of seconds');
  });
});
