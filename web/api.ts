/**
 * The dashboard's side of bootd's admin API (src/admin/api.ts): typed
 * fetches, the CSRF header on every action, and the live stream.
 */
import type { FleetPage, FleetRow, PendingMachine } from '../src/admin/fleet.js';
import type { BootRecord } from '../src/afterboot/record.js';
import type { InventoryEntry } from '../src/afterboot/inventory.js';
import type { BootEvent } from '../src/events/types.js';
import type { InstancesView } from '../src/admin/api.js';

export type { FleetPage, FleetRow, PendingMachine, BootRecord, InventoryEntry, BootEvent, InstancesView };

export interface Session {
  readonly via: 'open' | 'bearer' | 'cookie';
  readonly csrf: string | null;
  readonly csrfHeader: string;
  readonly tokenRequired: boolean;
}

export interface HostDetail {
  readonly row: FleetRow | null;
  readonly boots: readonly BootRecord[];
  readonly inventory: InventoryEntry | null;
  readonly report: unknown;
  readonly smokeOutput: string | null;
  readonly uploads: readonly { readonly file: string; readonly bytes: number; readonly modifiedAt: string }[];
}

export interface ImageInfo {
  readonly name: string;
  readonly recipe: boolean;
  readonly current: string | null;
  readonly versions: readonly { readonly version: string; readonly bytes: number; readonly kernelVersion: string | null; readonly builtAt: string | null; readonly valid: boolean }[];
  readonly hosts: readonly { readonly name: string; readonly version: string | null }[];
}

export interface BuildInfo {
  readonly image: string;
  readonly state: 'running' | 'finished' | 'failed';
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly step: string | null;
  readonly index: number | null;
  readonly total: number | null;
  readonly version: string | null;
  readonly error: string | null;
}

export interface MachineInfo {
  readonly name: string;
  readonly port: number;
  readonly owner: { readonly mac?: string; readonly ip?: string };
  readonly ownerAddress: string | null;
  readonly quotaBytes: number;
  readonly usageBytes: number;
  readonly expiresAt: string | null;
  readonly openedAt: string;
  readonly source: 'hosts' | 'cli';
  readonly listening: boolean;
  readonly error: string | null;
}

export interface Envelope {
  readonly seq: number;
  readonly at: number;
  readonly event: BootEvent;
}

let session: Session | null = null;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method === 'POST') {
    session ??= await get<Session>('/api/session');
    headers['content-type'] = 'application/json';
    if (session.csrf) headers[session.csrfHeader] = session.csrf;
  }
  const res = await fetch(url, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  if (res.status === 401) {
    location.href = '/login';
    throw new ApiError(401, 'signed out');
  }
  const data = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new ApiError(res.status, data.error ?? `${res.status} ${res.statusText}`);
  return data;
}

export const get = <T,>(url: string): Promise<T> => call<T>('GET', url);
export const post = <T,>(url: string, body: unknown = {}): Promise<T> => call<T>('POST', url, body);

/** The live stream: bus events, changed fleet rows, new pending machines. Reconnects by itself (EventSource). */
export function live(handlers: { event?: (e: Envelope) => void; host?: (row: FleetRow, at: number) => void; pending?: (ps: readonly PendingMachine[]) => void; state?: (open: boolean) => void }): () => void {
  const es = new EventSource('/api/live');
  es.addEventListener('events', (m) => {
    const b = JSON.parse((m as MessageEvent<string>).data) as { events: Envelope[]; skipped: number };
    for (const e of b.events) handlers.event?.(e);
  });
  es.addEventListener('host', (m) => {
    const d = JSON.parse((m as MessageEvent<string>).data) as { at: number; row: FleetRow };
    handlers.host?.(d.row, d.at);
  });
  es.addEventListener('pending', (m) => handlers.pending?.(JSON.parse((m as MessageEvent<string>).data) as PendingMachine[]));
  es.onopen = () => handlers.state?.(true);
  es.onerror = () => handlers.state?.(false);
  return () => es.close();
}
