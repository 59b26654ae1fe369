/**
 * Build machines and their write-enabled TFTP ports (seed 002: the bbot
 * agent makes one directory at a time writable to one build machine by
 * running a TFTP server on another port). A machine is a host marked
 * `build:` in hosts/*.yaml (open while the file says so) or one opened with
 * `bootd machines open NAME [--ttl]` (open until closed or expired).
 *
 * The assignments are stored (MachineStore; <state>/machines.json by default),
 * so an open port keeps its number and its owner across a bootd restart. The pure
 * part (which machines should be open, which port each gets) is `plan()`.
 */

export interface Machine {
  readonly name: string;
  readonly port: number;
  /** Who may write: by MAC (its lease or reservation decides the address) and/or a fixed address. */
  readonly owner: { readonly mac?: string; readonly ip?: string };
  readonly quotaBytes: number;
  /** false: an existing file is never replaced (TFTP ERROR 6). */
  readonly overwrite: boolean;
  readonly openedAt: string;
  /** ISO time the port closes; null: until closed (or, for hosts, while the host file says build:). */
  readonly expiresAt: string | null;
  readonly source: 'hosts' | 'cli';
}

export const DEFAULT_MACHINE_PORTS = { first: 1070, last: 1099 } as const;

/** A host file's wish: this host is a build machine. */
export interface BuildHost {
  readonly name: string;
  readonly mac?: string;
  readonly ip?: string;
  readonly quotaBytes: number;
  readonly overwrite?: boolean;
}

export function expired(m: Machine, now: Date): boolean {
  return m.expiresAt !== null && Date.parse(m.expiresAt) <= now.getTime();
}

/** The lowest free port of the range, or null when every one is taken. */
export function freePort(range: { first: number; last: number }, taken: ReadonlySet<number>): number | null {
  for (let p = range.first; p <= range.last; p++) if (!taken.has(p)) return p;
  return null;
}

/**
 * The machines that should be open now: every build host (keeping the port
 * it had), and every machine opened from the CLI that has not expired. A CLI
 * machine with a host's name gives way to the host file's entry.
 */
export function plan(prev: readonly Machine[], buildHosts: readonly BuildHost[], range: { first: number; last: number }, now: Date): { machines: Machine[]; noPort: string[] } {
  const out: Machine[] = [];
  const noPort: string[] = [];
  const hostNames = new Set(buildHosts.map((h) => h.name));
  for (const m of prev) if (m.source === 'cli' && !expired(m, now) && !hostNames.has(m.name)) out.push(m);
  const taken = new Set(out.map((m) => m.port));
  const before = new Map(prev.filter((m) => m.source === 'hosts').map((m) => [m.name, m]));
  // hosts that had a port keep it first, so a newcomer cannot take it
  const sorted = [...buildHosts].sort((a, b) => Number(before.has(b.name)) - Number(before.has(a.name)) || (a.name < b.name ? -1 : 1));
  for (const h of sorted) {
    const had = before.get(h.name);
    const port = had && !taken.has(had.port) && had.port >= range.first && had.port <= range.last ? had.port : freePort(range, taken);
    if (port === null) {
      noPort.push(h.name);
      continue;
    }
    taken.add(port);
    out.push({
      name: h.name,
      port,
      owner: { ...(h.mac !== undefined ? { mac: h.mac } : {}), ...(h.ip !== undefined ? { ip: h.ip } : {}) },
      quotaBytes: h.quotaBytes,
      overwrite: h.overwrite ?? true,
      openedAt: had?.openedAt ?? now.toISOString(),
      expiresAt: null,
      source: 'hosts',
    });
  }
  out.sort((a, b) => a.port - b.port);
  return { machines: out, noPort };
}

/**
 * Where the assignments are kept (implemented in src/state/: the file
 * <state>/machines.json, memory; later a database): bootd serve writes
 * them, the CLI reads them.
 */
export interface MachineStore {
  load(): Promise<Machine[]>;
  /** Resolves once the new assignment is durable. */
  save(machines: readonly Machine[]): Promise<void>;
}
