/**
 * The after-boot commands: `bootd status`, `bootd logs`, `bootd smoke`,
 * `bootd machines list|open|close`. Reading records needs only the state
 * directory (through the stores' readers, never their file layout); live
 * numbers and acting (open, close, smoke) ask the running bootd over its
 * control socket.
 */
import { createReadStream, promises as fs, watch } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { BootRecord, SmokeResult } from '../afterboot/record.js';
import { controlRequest } from '../control/socket.js';
import type { Machine } from '../machines/registry.js';
import type { Metric } from '../stats/registry.js';
import type { SubscriberStats } from '../events/bus.js';
import { FileHostRecords } from '../state/host-records.js';
import { FileMachineStore } from '../state/machine-store.js';
import { followHostRecord, readHostRecord, readHostRecords } from '../state/pg/host-records.js';
import { readMachineSets } from '../state/pg/machine-store.js';
import { recordLog, eventLine, bootLine } from '../afterboot/tracker.js';
import { hostSetAgreement, readInstances } from '../state/pg/instances.js';
import { HOST_NAME_RE } from '../hosts/schema.js';
import { parseIpv4 } from '../net/ipv4.js';
import { usageBytes } from '../uploads/host-dirs.js';
import { PARTIAL_PREFIX } from '../uploads/file-sink.js';

const DEFAULT_STATE = '/var/lib/bootd';

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** 90s, 45m, 2h, 1d or plain seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration such as 90s, 45m, 2h or 1d, got "${value}"`);
  const n = Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as const)[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  if (n <= 0 || n > 365 * 86400) throw new InvalidArgumentError(`expected a duration from 1s to 365d, got "${value}"`);
  return n;
}

function bytes(n: number): string {
  return n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function smokeText(s: SmokeResult | undefined): string {
  if (!s) return '-';
  if (s.ok) return `passed (${s.passed})`;
  return `FAILED: ${s.error ?? s.failed[0] ?? `exit ${String(s.exitCode)}`}`;
}

/** One row of `bootd status`. */
export function statusRow(name: string, b: BootRecord | undefined): string[] {
  return [name, b?.image ?? '-', b?.ip ?? '-', b ? b.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-', b?.phase ?? '-', smokeText(b?.smoke)];
}

function table(rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
}

async function follow(file: string, from: number): Promise<void> {
  let pos = from;
  await new Promise<void>(() => {
    const pump = (): void => {
      void fs.stat(file).then(
        (st) => {
          if (st.size < pos) pos = 0; // truncated
          if (st.size === pos) return;
          const s = createReadStream(file, { start: pos, end: st.size - 1 });
          pos = st.size;
          s.pipe(process.stdout, { end: false });
        },
        () => {},
      );
    };
    watch(path.dirname(file), () => pump());
    setInterval(pump, 1000);
  });
}

/** Regular files under `dir` (partial uploads left out), for `bootd logs`. */
async function listFiles(dir: string, rel = ''): Promise<{ rel: string; size: number; mtime: string }[]> {
  const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => []);
  const out: { rel: string; size: number; mtime: string }[] = [];
  for (const e of entries) {
    const r = path.posix.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(dir, r)));
    else if (e.isFile() && !e.name.startsWith(PARTIAL_PREFIX)) {
      const st = await fs.stat(path.join(dir, r)).catch(() => null);
      if (st) out.push({ rel: r, size: st.size, mtime: st.mtime.toISOString().replace(/\.\d+Z$/, 'Z') });
    }
  }
  return out.sort((a, b) => (a.rel < b.rel ? -1 : 1));
}

export function addStateCommands(program: Command): void {
  addStatusCommand(program);
  addLogsCommand(program);
  addSmokeCommand(program);
  addMachineCommands(program);
}

interface LiveStats {
  readonly metrics: readonly Metric[];
  readonly events: { readonly published: number; readonly subscribers: readonly SubscriberStats[] };
}

/** The running bootd's counters and gauges, grouped by server; null when none runs on this state directory. */
async function liveStats(state: string): Promise<LiveStats | null> {
  return controlRequest<LiveStats>(state, 'GET', '/stats', undefined, 5000).catch(() => null);
}

function printStats(live: LiveStats): void {
  const groups = new Map<string, string[]>();
  for (const m of live.metrics) {
    const dot = m.name.indexOf('.');
    const g = m.name.slice(0, dot);
    const list = groups.get(g) ?? [];
    list.push(`${m.name.slice(dot + 1)}=${m.value}`);
    groups.set(g, list);
  }
  out('');
  out('live (bootd is running):');
  for (const [g, items] of groups) out(`  ${g.padEnd(10)} ${items.join(' ')}`);
}

function addStatusCommand(program: Command): void {
  program
    .command('status')
    .description('one line per host: image, address, last boot, phase, smoke result; and, while bootd runs, its live counters')
    .option('--state <dir>', 'bootd state directory', DEFAULT_STATE)
    .option('--state-url <url>', 'the PostgreSQL database bootd keeps its state in (--state-url of bootd serve): every instance\'s hosts, and the instances themselves')
    .option('--json', 'every host with its recent boots, timelines and smoke results, and the live counters')
    .action(async (o: { state: string; stateUrl?: string; json?: boolean }) => {
      const records = o.stateUrl !== undefined ? await readHostRecords(o.stateUrl) : await FileHostRecords.reader(o.state);
      const hosts = (await records.list({ limit: 1000 })).items;
      const live = await liveStats(o.state);
      const instances = o.stateUrl !== undefined ? (await readInstances(o.stateUrl)).filter((r) => r.alive) : null;
      const agreement = instances ? hostSetAgreement(instances) : null;
      if (o.json) {
        const full = await Promise.all(hosts.map(async (h) => ({ name: h.name, last: h.last, boots: (await records.get(h.name))?.boots ?? [], inventory: h.inventory })));
        out(JSON.stringify({ hosts: full, ...(instances ? { instances, hostSets: agreement } : {}), live: live === null ? null : { ...live, metrics: Object.fromEntries(live.metrics.map((m) => [m.name, m.value])) } }, null, 2));
        return;
      }
      if (hosts.length === 0) out(`no host has booted from bootd with state ${o.stateUrl !== undefined ? 'in the database' : o.state}`);
      else table([['HOST', 'IMAGE', 'IP', 'LAST BOOT', 'PHASE', 'SMOKE'], ...hosts.map((h) => statusRow(h.name, h.last ?? undefined))]);
      if (instances && agreement) {
        out();
        table([['INSTANCE', 'SEGMENT', 'ADDRESS', 'DHCP', 'HOSTS', 'HOST SET'], ...instances.map((r) => [r.id, r.segment ?? '-', r.serverIp ?? '-', r.leading ? 'leading' : 'standby', String(r.hostsCount ?? '-'), (r.hostsDigest ?? '-').slice(0, 12)])]);
        if (!agreement.agree) out(`warning: the instances serve ${agreement.groups.length} different host sets: ${agreement.groups.map((g) => `${(g.digest ?? 'none').slice(0, 12)} (${g.hosts ?? '?'} hosts) on ${g.instances.join(', ')}`).join('; ')}; check that every instance's hosts/ checkout is the same`);
      }
      if (live) printStats(live);
    });
}

function addLogsCommand(program: Command): void {
  program
    .command('logs <name>')
    .description("a host's event log (logs/<name>/events.log, also readable over TFTP), its last smoke output and the files it uploaded")
    .option('--state <dir>', 'bootd state directory', DEFAULT_STATE)
    .option('-f, --follow', 'keep printing new events')
    .option('--state-url <url>', "read the host's record from PostgreSQL (bootd serve --state-url): its boots through every instance; smoke outputs and uploads are files of the instance that made them, read from --state where they are")
    .action(async (name: string, o: { state: string; follow?: boolean; stateUrl?: string }) => {
      if (!HOST_NAME_RE.test(name)) throw new Error(`${JSON.stringify(name)} is not a host name`);
      if (o.stateUrl !== undefined) return logsFromDatabase(name, { ...o, stateUrl: o.stateUrl });
      const dir = path.join(o.state, 'logs', name);
      const file = path.join(dir, 'events.log');
      const text = await fs.readFile(file, 'utf8').catch(() => null);
      if (text === null && !o.follow) {
        process.stderr.write(`bootd: no events for ${name} in ${dir}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(text ?? '');
      if (o.follow) {
        await fs.mkdir(dir, { recursive: true });
        await follow(file, Buffer.byteLength(text ?? ''));
        return;
      }
      const smokes = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith('smoke-')).sort();
      const last = smokes.at(-1);
      if (last) {
        out(`--- ${path.join(dir, last)}`);
        process.stdout.write(await fs.readFile(path.join(dir, last), 'utf8'));
      }
      // what the host uploaded, as the main TFTP port shows it (machines/<name>/, uploads/<name>/)
      for (const area of ['machines', 'uploads']) {
        const files = await listFiles(path.join(o.state, area, name));
        if (files.length === 0) continue;
        out(`--- ${area}/${name}/ (TFTP: ${area}/${name}/<file>)`);
        for (const f of files) out(`${bytes(f.size).padStart(10)}  ${f.mtime}  ${f.rel}`);
      }
    });

}

/**
 * `bootd logs NAME --state-url`: the host's record as every instance wrote it
 * (host_record), in events.log's lines; the last smoke result from the record,
 * its full output where this instance's --state has the file.
 */
async function logsFromDatabase(name: string, o: { state: string; follow?: boolean; stateUrl: string }): Promise<void> {
  const rec = await readHostRecord(o.stateUrl, name);
  if ((rec === undefined || rec.boots.length === 0) && !o.follow) {
    process.stderr.write(`bootd: no boots of ${name} in the database\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(rec ? recordLog(rec) : '');
  if (o.follow) return followRecord(o.stateUrl, name, rec?.boots ?? []);
  const smoke = [...(rec?.boots ?? [])].reverse().find((b) => b.smoke !== undefined)?.smoke;
  if (smoke) {
    out(`--- smoke: ${smokeText(smoke)}`);
    for (const f of smoke.failed) out(f);
    const text = smoke.outputFile ? await fs.readFile(path.join(o.state, smoke.outputFile), 'utf8').catch(() => null) : null;
    if (text !== null) process.stdout.write(text);
    else if (smoke.outputFile) out(`(the full output is ${smoke.outputFile} in the state directory of the instance that ran it)`);
  }
}

/** Prints events as they reach the database (the host's row, once a second), until interrupted. */
async function followRecord(url: string, name: string, seen: readonly BootRecord[]): Promise<void> {
  const printed = new Set<string>();
  const key = (b: BootRecord, e: { at: string; kind: string; text: string }): string => `${b.id}\0${e.at}\0${e.kind}\0${e.text}`;
  for (const b of seen) for (const e of b.events) printed.add(key(b, e));
  const begun = new Set(seen.map((b) => b.id));
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  await followHostRecord(url, name, (rec) => {
    for (const b of rec?.boots ?? []) {
      for (const e of b.events) {
        if (printed.has(key(b, e))) continue;
        if (!begun.has(b.id)) {
          begun.add(b.id);
          process.stdout.write(bootLine(b, e.at));
        }
        printed.add(key(b, e));
        process.stdout.write(eventLine(e));
      }
    }
  }, stop.signal);
}

function addSmokeCommand(program: Command): void {
  program
    .command('smoke <name>')
    .description("run the host's smoke test now, through the running bootd, and print its output")
    .option('--state <dir>', 'bootd state directory', DEFAULT_STATE)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, o: { state: string; json?: boolean }) => {
      const r = await controlRequest<SmokeResult>(o.state, 'POST', `/smoke/${encodeURIComponent(name)}`);
      if (o.json) out(JSON.stringify(r, null, 2));
      else {
        if (r.outputFile) process.stdout.write(await fs.readFile(path.join(o.state, r.outputFile), 'utf8').catch(() => ''));
        out(`smoke ${name}: ${smokeText(r)}${r.failed.length > 1 ? `\n  ${r.failed.join('\n  ')}` : ''}`);
      }
      process.exitCode = r.ok ? 0 : 1;
    });

}

function addMachineCommands(program: Command): void {
  const machines = program.command('machines').description("build machines' write-enabled TFTP ports");
  type View = Machine & { dir?: string; usageBytes?: number; ownerAddress?: string | null; listening?: boolean; error?: string | null };
  const printMachine = (m: View): string[] => [
    m.name,
    String(m.port),
    m.ownerAddress ?? m.owner.ip ?? m.owner.mac ?? '-',
    m.usageBytes === undefined ? '-' : `${bytes(m.usageBytes)} of ${bytes(m.quotaBytes)}`,
    m.overwrite ? 'yes' : 'no',
    m.expiresAt === null ? (m.source === 'hosts' ? 'hosts file' : 'never') : m.expiresAt.replace(/\.\d+Z$/, 'Z'),
    m.listening === false ? `NOT LISTENING${m.error ? `: ${m.error}` : ''}` : m.listening ? 'open' : 'bootd not running',
  ];
  machines
    .command('list')
    .description('ports, owners, usage and expiry')
    .option('--state <dir>', 'bootd state directory', DEFAULT_STATE)
    .option('--json', 'print JSON')
    .option('--state-url <url>', "every instance's build machines from PostgreSQL (bootd serve --state-url): each instance opens its own ports")
    .action(async (o: { state: string; json?: boolean; stateUrl?: string }) => {
      if (o.stateUrl !== undefined) {
        const sets = await readMachineSets(o.stateUrl);
        const all = sets.flatMap((s) => s.machines.map((m) => ({ instance: s.instance, updatedAt: s.updatedAt, ...m })));
        if (o.json) return out(JSON.stringify(all, null, 2));
        if (all.length === 0) return out(`no build machine is open on any of ${sets.length} instance(s) in the database`);
        table([['INSTANCE', 'MACHINE', 'PORT', 'OWNER', 'QUOTA', 'OVERWRITE', 'EXPIRES'], ...all.map((m) => [
          m.instance, m.name, String(m.port), m.owner.ip ?? m.owner.mac ?? '-', bytes(m.quotaBytes), m.overwrite ? 'yes' : 'no',
          m.expiresAt === null ? (m.source === 'hosts' ? 'hosts file' : 'never') : m.expiresAt.replace(/\.\d+Z$/, 'Z'),
        ])]);
        return;
      }
      let list: View[];
      try {
        list = await controlRequest<View[]>(o.state, 'GET', '/machines', undefined, 10_000);
      } catch {
        // bootd is not running: the assignment file still says what will reopen
        list = await Promise.all((await FileMachineStore.reader(o.state).load()).map(async (m) => ({ ...m, usageBytes: await usageBytes(path.join(o.state, 'machines', m.name)) })));
      }
      if (o.json) return out(JSON.stringify(list, null, 2));
      if (list.length === 0) return out('no build machine is open');
      table([['MACHINE', 'PORT', 'OWNER', 'USAGE', 'OVERWRITE', 'EXPIRES', 'STATE'], ...list.map(printMachine)]);
    });
  machines
    .command('open <name>')
    .description('give a machine its own write-enabled TFTP port (a host from hosts/, or any name with --address/--mac)')
    .option('--state <dir>', 'bootd state directory', DEFAULT_STATE)
    .option('--ttl <duration>', 'close the port after this long (90s, 45m, 2h, 1d); default: until closed', parseDuration)
    .option('--quota <mib>', 'bytes the machine may keep, in MiB (default: its host file, else 200)', (v: string) => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`expected MiB as a whole number, got "${v}"`);
      return Number(v) * (1 << 20);
    })
    .option('--no-overwrite', 'refuse uploads that would replace an existing file')
    .option('--address <ip>', 'the only address writes are accepted from', (v: string) => {
      if (parseIpv4(v) === null) throw new InvalidArgumentError(`expected an IPv4 address, got "${v}"`);
      return v;
    })
    .option('--mac <mac>', 'the machine whose lease decides the address writes are accepted from')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { state: string; ttl?: number; quota?: number; overwrite: boolean; address?: string; mac?: string; json?: boolean }) => {
      const m = await controlRequest<View>(o.state, 'POST', '/machines/open', { name, ...(o.ttl ? { ttlSeconds: o.ttl } : {}), ...(o.quota ? { quotaBytes: o.quota } : {}), overwrite: o.overwrite, ...(o.address ? { ip: o.address } : {}), ...(o.mac ? { mac: o.mac } : {}) });
      if (o.json) return out(JSON.stringify(m, null, 2));
      out(`${m.name}: TFTP port ${m.port}, directory ${m.dir ?? '?'}, writes from ${m.ownerAddress ?? m.owner.ip ?? m.owner.mac ?? '?'}, quota ${bytes(m.quotaBytes)}, ${m.expiresAt ? `until ${m.expiresAt}` : 'until closed'}`);
    });
  machines
    .command('close <name>')
    .description("close a machine's port (its files stay)")
    .option('--state <dir>', 'bootd state directory', DEFAULT_STATE)
    .action(async (name: string, o: { state: string }) => {
      const r = await controlRequest<{ closed: string; port: number }>(o.state, 'POST', '/machines/close', { name });
      out(`${r.closed}: port ${r.port} closed`);
    });
}
