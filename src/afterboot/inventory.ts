/**
 * The bee audit report (schema bee-audit/1, images/bee/overlay/usr/sbin/bee-audit)
 * as a host's inventory: validated, then summarised (board, CPUs, memory,
 * disks, PCIe devices, GPUs) for `bootd hosts show` and `bootd status`.
 * Pure: text in, a summary or a reason out. Collector data are what
 * dmidecode, lsblk, lspci and nvidia-smi print, so the summary reads them
 * leniently; a collector's own status says whether it ran.
 */
import { z } from 'zod';

/** Larger than any real report (a big server's is ~200 KiB); beyond it the upload is kept aside. */
export const MAX_REPORT_BYTES = 8 << 20;

const collector = z.object({ status: z.string(), data: z.unknown() });

const reportSchema = z.object({
  schema: z.literal('bee-audit/1', { error: 'expected schema "bee-audit/1"' }),
  host: z.string().optional(),
  collected_at: z.string().optional(),
  kernel: z.string().optional(),
  image: z.record(z.string(), z.unknown()).optional(),
  collectors: z.record(z.string(), collector, { error: 'expected collectors: {name: {status, data}}' }),
});

export interface InventorySummary {
  readonly board: string | null;
  readonly cpu: { readonly model: string | null; readonly threads: number | null; readonly sockets: number | null };
  readonly memoryMiB: number | null;
  readonly dimms: number | null;
  readonly disks: readonly { readonly name: string; readonly sizeBytes: number | null; readonly model: string | null }[];
  readonly pcieDevices: number | null;
  /** One line per GPU: name, memory, PCI address, and the driver where none serves it (bee's gpu collector). */
  readonly gpus: readonly string[];
  /** bee-nvidia's outcome (loaded <version>: n GPU(s) | skipped: … | failed: …); absent where the report says nothing of it. */
  readonly gpuDriver?: string | null;
  /** How it booted (bee's firmware collector): UEFI or BIOS, and whether Secure Boot was on. Absent in summaries stored before it existed. */
  readonly firmware?: { readonly mode: 'uefi' | 'bios' | null; readonly secureBoot: boolean | null };
  /** Collector name -> its status (ok, skipped: ..., error: ...). */
  readonly collectors: Readonly<Record<string, string>>;
}

export interface InventoryEntry {
  readonly receivedAt: string;
  readonly bytes: number;
  /** The whole report, relative to the state directory. */
  readonly file: string;
  readonly collectedAt: string | null;
  readonly summary: InventorySummary;
  /** The last report that was refused, if it came after the good one. */
  readonly rejected?: { readonly at: string; readonly file: string; readonly error: string };
}

export type ParsedReport = { readonly ok: true; readonly report: unknown; readonly collectedAt: string | null; readonly summary: InventorySummary } | { readonly ok: false; readonly error: string };

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null);

/** dmidecode records as bee-audit's dmi_json writes them: [{type, name, fields: {...}}]. */
function dmiFields(data: unknown, type: number): Rec[] {
  if (!Array.isArray(data)) return [];
  return data.filter((r): r is Rec => isRec(r) && r.type === type && isRec(r.fields)).map((r) => r.fields as Rec);
}

function data(c: Rec, name: string): unknown {
  const e = c[name];
  return isRec(e) && e.status === 'ok' ? e.data : undefined;
}

export function summarize(collectors: Rec): InventorySummary {
  const sys = dmiFields(data(collectors, 'board'), 1)[0];
  const base = dmiFields(data(collectors, 'board'), 2)[0];
  const board = [str(sys?.Manufacturer), str(sys?.['Product Name'])].filter((s) => s !== null).join(' ') || [str(base?.Manufacturer), str(base?.['Product Name'])].filter((s) => s !== null).join(' ') || null;
  const cpu = data(collectors, 'cpu');
  const mem = data(collectors, 'memory');
  const sto = data(collectors, 'storage');
  const pci = data(collectors, 'pcie');
  const gpu = data(collectors, 'gpu');
  const fw = data(collectors, 'firmware');
  const dimms = isRec(mem) && Array.isArray(mem.devices) ? (mem.devices as unknown[]).filter((d) => isRec(d) && isRec(d.fields) && !/no module/i.test(String((d.fields as Rec).Size ?? ''))).length : null;
  const disks = isRec(sto) && Array.isArray(sto.block_devices)
    ? (sto.block_devices as unknown[]).filter((d): d is Rec => isRec(d) && d.type === 'disk').map((d) => ({ name: str(d.name) ?? '?', sizeBytes: num(d.size), model: str(d.model) }))
    : [];
  return {
    board,
    cpu: {
      model: isRec(cpu) ? str(cpu.model) : null,
      threads: isRec(cpu) ? num(cpu.threads) : null,
      sockets: isRec(cpu) && Array.isArray(cpu.sockets) ? cpu.sockets.length : null,
    },
    memoryMiB: isRec(mem) && num(mem.total_kib) !== null ? Math.round((num(mem.total_kib) as number) / 1024) : null,
    dimms,
    disks,
    pcieDevices: Array.isArray(pci) ? pci.length : null,
    gpus: gpuLines(gpu),
    gpuDriver: isRec(gpu) && isRec(gpu.driver) ? str(gpu.driver.status) : null,
    firmware: {
      mode: isRec(fw) && (fw.mode === 'uefi' || fw.mode === 'bios') ? fw.mode : null,
      secureBoot: isRec(fw) && typeof fw.secure_boot === 'boolean' ? fw.secure_boot : null,
    },
    collectors: Object.fromEntries(Object.entries(collectors).map(([k, v]) => [k, isRec(v) ? String(v.status) : 'missing'])),
  };
}

/**
 * GPUs as bee's gpu collector lists them: {driver, gpus: [...]}, each from
 * nvidia-smi (name, memory_total_mib, pci) or from the PCI bus alone
 * (driver: none); reports from before the driver came were a plain list.
 */
function gpuLines(gpu: unknown): string[] {
  const list = Array.isArray(gpu) ? gpu : isRec(gpu) && Array.isArray(gpu.gpus) ? gpu.gpus : [];
  return list.flatMap((g) => {
    if (!isRec(g) || !str(g.name)) return [];
    const mem = num(g.memory_total_mib);
    const detail = [mem !== null ? `${(mem / 1024).toFixed(0)} GiB` : null, str(g.pci), g.driver === 'none' ? 'no driver' : null].filter((x) => x !== null);
    return [`${str(g.name) as string}${detail.length > 0 ? ` (${detail.join(', ')})` : ''}`];
  });
}

/** Checks an uploaded report; any failure comes back as a reason, never an exception. */
export function parseAuditReport(text: string): ParsedReport {
  if (Buffer.byteLength(text) > MAX_REPORT_BYTES) return { ok: false, error: `report is larger than ${MAX_REPORT_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const r = reportSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, error: `${i?.path.join('.') || 'report'}: ${i?.message ?? 'invalid'}` };
  }
  return { ok: true, report: json, collectedAt: r.data.collected_at ?? null, summary: summarize(r.data.collectors) };
}

/** One line per item, for `bootd hosts show`. */
export function formatSummary(s: InventorySummary): string[] {
  const gib = (b: number | null): string => (b === null ? '?' : `${(b / 2 ** 30).toFixed(1)} GiB`);
  return [
    `board:   ${s.board ?? 'unknown'}`,
    `cpu:     ${s.cpu.model ?? 'unknown'}${s.cpu.threads !== null ? `, ${s.cpu.threads} threads` : ''}${s.cpu.sockets !== null ? `, ${s.cpu.sockets} socket(s)` : ''}`,
    `memory:  ${s.memoryMiB === null ? 'unknown' : `${s.memoryMiB} MiB`}${s.dimms !== null ? ` in ${s.dimms} DIMM(s)` : ''}`,
    `disks:   ${s.disks.length === 0 ? 'none' : s.disks.map((d) => `${d.name} ${gib(d.sizeBytes)}${d.model ? ` (${d.model})` : ''}`).join(', ')}`,
    `pcie:    ${s.pcieDevices ?? 'unknown'} device(s)`,
    `gpus:    ${s.gpus.length === 0 ? 'none' : s.gpus.join(', ')}${s.gpuDriver ? `; driver: ${s.gpuDriver}` : ''}`,
    `boot:    ${bootText(s.firmware)}`,
    `collectors: ${Object.entries(s.collectors).map(([k, v]) => `${k}=${v.split(':')[0]}`).join(' ')}`,
  ];
}

function bootText(f: InventorySummary['firmware']): string {
  if (!f || f.mode === null) return 'unknown';
  if (f.mode === 'bios') return 'legacy BIOS (no Secure Boot)';
  return `UEFI, Secure Boot ${f.secureBoot === true ? 'on' : f.secureBoot === false ? 'off' : 'unknown'}`;
}
