/**
 * `bootd leases`: what the DHCP server handed out, read from the state
 * directory (snapshot and journal, read only: safe beside a running bootd).
 *
 *   bootd leases [--all] [--json]        one line per lease
 *   bootd leases show <ip|mac|client-id> [--json]
 */
import { Command } from 'commander';
import type { Lease } from '../dhcp/leases.js';
import { FileLeaseStore } from '../state/lease-store.js';
import { PgLeaseStore } from '../state/pg/lease-store.js';

const DEFAULT_STATE = '/var/lib/bootd';

/** A lease as an operator sees it: `expired` is derived from the clock, `released` and `active` are recorded. */
export interface LeaseView {
  readonly ip: string;
  readonly mac: string;
  readonly clientId: string | null;
  readonly state: 'active' | 'expired' | 'released';
  readonly expiresAt: string;
  readonly hostname: string | null;
}

export function leaseView(l: Lease, now: number): LeaseView {
  const state = l.state === 'released' ? 'released' : l.expiresAt > now ? 'active' : 'expired';
  return { ip: l.ip, mac: l.mac, clientId: l.clientId ?? null, state, expiresAt: new Date(l.expiresAt).toISOString(), hostname: l.hostname ?? null };
}

/** Sorted by address, numerically. */
export function sortByAddress(ls: LeaseView[]): LeaseView[] {
  const n = (ip: string): number => ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  return [...ls].sort((a, b) => n(a.ip) - n(b.ip));
}

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function table(rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
}

function matches(v: LeaseView, key: string): boolean {
  const k = key.toLowerCase().replace(/[:-]/g, '');
  return v.ip === key || v.mac.replace(/:/g, '') === k || (v.clientId !== null && v.clientId === k) || v.hostname === key;
}

export function addLeaseCommands(program: Command): void {
  program
    .command('leases [args...]')
    .usage('[--all] [--json] | show <ip|mac|client-id|hostname> [--json]')
    .description('DHCP leases: address, client identity (MAC, client id), state, expiry, host name (from the state directory); `leases show KEY` for one client or address')
    .option('--state <dir>', 'bootd state directory', DEFAULT_STATE)
    .option('--state-url <url>', 'read the leases from PostgreSQL instead (as bootd serve --state-url)')
    .option('--all', 'also expired and released leases (remembered for their clients)')
    .option('--json', 'as JSON')
    .action(async (args: string[], o: { state: string; stateUrl?: string; all?: boolean; json?: boolean }) => {
      const now = Date.now();
      const views = sortByAddress((await (o.stateUrl !== undefined ? PgLeaseStore.reader(o.stateUrl) : FileLeaseStore.reader(o.state)).list()).map((l) => leaseView(l, now)));
      if (args.length > 0) {
        if (args[0] !== 'show' || args.length !== 2) throw new Error(`bootd leases: expected "show <ip|mac|client-id|hostname>", got "${args.join(' ')}"`);
        show(views, args[1] as string, o);
        return;
      }
      const listed = views.filter((v) => o.all === true || v.state === 'active');
      if (o.json) {
        out(JSON.stringify({ leases: listed }, null, 2));
        return;
      }
      if (listed.length === 0) {
        out(`no ${o.all === true ? '' : 'active '}leases in ${o.state}`);
        return;
      }
      table([['ADDRESS', 'STATE', 'MAC', 'CLIENT ID', 'EXPIRES', 'HOSTNAME'], ...listed.map((v) => [v.ip, v.state, v.mac, v.clientId ?? '-', v.expiresAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), v.hostname ?? '-'])]);
    });
}

function show(views: LeaseView[], key: string, o: { state: string; json?: boolean }): void {
  const found = views.filter((v) => matches(v, key));
  if (found.length === 0) {
    process.stderr.write(`bootd leases show: no lease for "${key}" in ${o.state}\n`);
    process.exitCode = 1;
    return;
  }
  if (o.json) {
    out(JSON.stringify({ leases: found }, null, 2));
    return;
  }
  for (const v of found) {
    out(`address:   ${v.ip}`);
    out(`state:     ${v.state}`);
    out(`mac:       ${v.mac}`);
    out(`client id: ${v.clientId ?? '-'}`);
    out(`expires:   ${v.expiresAt}`);
    out(`hostname:  ${v.hostname ?? '-'}`);
    out();
  }
}
