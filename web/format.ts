/** Numbers and times as the dashboard prints them. */
import type { BootEvent } from './api.js';

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} days`;
}

export function when(ms: number): string {
  const d = new Date(ms);
  const today = new Date();
  const time = d.toLocaleTimeString(undefined, { hour12: false });
  return d.toDateString() === today.toDateString() ? time : `${d.toISOString().slice(0, 10)} ${time}`;
}

export function since(iso: string): string {
  const ms = Date.now() - Date.parse(iso);
  if (!Number.isFinite(ms)) return '';
  if (ms < 5000) return 'just now';
  return `${duration(ms).replace(/ \d+ s$/, '')} ago`;
}

/** One line per bus event, for the live event list. */
export function describeEvent(e: BootEvent): string {
  switch (e.type) {
    case 'dhcp':
      return `DHCP ${e.message} ${e.mac}${e.ip ? ` ${e.ip}` : ''}${e.bootFile ? ` ${e.bootFile}` : ''}${e.reason ? ` (${e.reason})` : ''}`;
    case 'transfer.started':
      return `${e.protocol} ${e.direction} ${e.file} from ${e.peer}`;
    case 'transfer.finished':
      return `${e.protocol} ${e.file} ${e.outcome} ${bytes(e.bytes)} in ${duration(e.durationMs)} (${e.peer})`;
    case 'host.phase':
      return `${e.host}: ${e.phase}${e.ip ? ` (${e.ip})` : ''}`;
    case 'host.wait':
      return `${e.host}: waits: ${e.reason}`;
    case 'image.fetch':
      return `image ${e.image}${e.version ? `@${e.version}` : ''}: fetch from the origin ${e.state}${e.bytes ? ` (${bytes(e.bytes)})` : ''}${e.error ? `: ${e.error}` : ''}`;
    case 'host.remote':
      return `${e.host}: changed by instance ${e.instance}`;
    case 'host.ssh':
      return `${e.host}: SSH answers after ${duration(e.afterMs)}`;
    case 'smoke.started':
      return `${e.host}: smoke test started`;
    case 'smoke.finished':
      return `${e.host}: smoke test ${e.ok ? 'passed' : 'failed'} (${e.passed} passed, ${e.failed} failed)${e.error ? `: ${e.error}` : ''}`;
    case 'inventory.stored':
      return `${e.host}: audit report stored (${bytes(e.bytes)})`;
    case 'inventory.rejected':
      return `${e.host}: audit report rejected: ${e.error ?? ''}`;
    case 'image.build':
      return `image ${e.image}: build ${e.state}${e.step ? ` ${e.step}` : ''}${e.version ? ` ${e.version}` : ''}${e.error ? `: ${e.error}` : ''}`;
    case 'hosts.reload':
      return `hosts reloaded: ${e.hosts} hosts${e.ok ? '' : `, ${e.filesInError} file(s) in error${e.error ? `: ${e.error}` : ''}`}`;
    case 'server':
      return `${e.server} ${e.state}${e.listen ? ` on ${e.listen}` : ''}${e.error ? `: ${e.error}` : ''}`;
    case 'admin.action':
      return `action ${e.action} ${e.target} by ${e.peer}: ${e.ok ? 'done' : `failed (${e.detail ?? ''})`}`;
  }
}
