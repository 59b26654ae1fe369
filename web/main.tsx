/**
 * bootd's dashboard: fleet, host, images, build machines. Preact, bundled
 * by esbuild at build time into dist/web/ (nothing from a CDN: boot
 * networks are often air-gapped). Live through server-sent events.
 */
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { get, live, post, type BuildInfo, type Envelope, type FleetPage, type FleetRow, type HostDetail, type ImageInfo, type InstancesView, type MachineInfo, type PendingMachine } from './api.js';
import { Timeline } from './timeline.js';
import { bytes, describeEvent, duration, since, when } from './format.js';

declare global {
  interface Window {
    /** Event-to-screen latencies (ms) of host rows painted from the live stream: read by the benchmark. */
    __bootdLatencies: number[];
  }
}
window.__bootdLatencies = [];

type Route = { page: 'fleet' } | { page: 'host'; name: string } | { page: 'images' } | { page: 'machines' };

function parseRoute(p: string): Route {
  const m = /^\/hosts\/([^/]+)$/.exec(p);
  if (m) return { page: 'host', name: decodeURIComponent(m[1] as string) };
  if (p === '/images') return { page: 'images' };
  if (p === '/machines') return { page: 'machines' };
  return { page: 'fleet' };
}

function navigate(to: string): void {
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

function Link(props: { href: string; children: preact.ComponentChildren; class?: string }) {
  return (
    <a
      href={props.href}
      class={props.class}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

/** Pending machines the page keeps and draws (bootd keeps 1,000; a storm of unknown clients must not stall the page). */
const PENDING_KEPT = 1000;
const PENDING_SHOWN = 50;

const STATUSES = ['booting', 'stale', 'up', 'smoke-passed', 'smoke-failed', 'never'] as const;
const STATUS_TEXT: Record<string, string> = { booting: 'booting', stale: 'stale', up: 'up', 'smoke-passed': 'smoke passed', 'smoke-failed': 'smoke failed', never: 'never booted' };
const PHASE_TEXT: Record<string, string> = { dhcp: 'DHCP', loading: 'loading', kernel: 'kernel', 'os-dhcp': 'userland', up: 'SSH up', 'smoke-passed': 'smoke passed', 'smoke-failed': 'smoke failed' };

function StatusBadge({ row }: { row: FleetRow }) {
  const step = row.status === 'booting' || row.status === 'stale' ? `: ${PHASE_TEXT[row.phase ?? ''] ?? row.phase}` : '';
  return (
    <span class={`badge s-${row.status}`} data-status={row.status} data-phase={row.phase ?? ''}>
      {STATUS_TEXT[row.status]}
      {step}
    </span>
  );
}

function hardware(row: FleetRow): string {
  const h = row.hardware;
  if (!h) return '';
  const parts = [
    h.cpu ? `${h.cpu}${h.threads ? ` ×${h.threads}` : ''}` : null,
    h.memoryMiB !== null ? `${(h.memoryMiB / 1024).toFixed(h.memoryMiB >= 10240 ? 0 : 1)} GiB` : null,
    h.disks > 0 ? `${h.disks} disk${h.disks > 1 ? 's' : ''} ${bytes(h.diskBytes)}` : null,
    h.gpus.length > 0 ? `${h.gpus.length} GPU${h.gpus.length > 1 ? 's' : ''}` : null,
  ];
  return parts.filter((x) => x).join(' · ');
}

function FleetPageView() {
  const [q, setQ] = useState(new URLSearchParams(location.search).get('q') ?? '');
  const [status, setStatus] = useState(new URLSearchParams(location.search).get('status') ?? '');
  const [group, setGroup] = useState(false);
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<FleetPage | null>(null);
  const [pending, setPending] = useState<PendingMachine[]>([]);
  const [events, setEvents] = useState<Envelope[]>([]);
  const [connected, setConnected] = useState(false);
  const [error, setError] = useState('');
  const limit = group ? 1000 : 100;
  const load = useCallback(() => {
    const qs = new URLSearchParams({ q, status, offset: String(offset), limit: String(limit) });
    get<FleetPage>(`/api/fleet?${qs}`).then(setPage, (e: Error) => setError(e.message));
  }, [q, status, offset, limit]);
  useEffect(load, [load]);
  useEffect(() => {
    get<PendingMachine[]>('/api/pending').then(setPending, () => {});
    get<Envelope[]>('/api/events?limit=50').then(setEvents, () => {});
  }, []);
  // live: a changed row replaces its old self in place; counts and filters catch up on the next load
  const reload = useRef<number | null>(null);
  useEffect(
    () =>
      live({
        state: setConnected,
        host: (row, at) => {
          setPage((p) => {
            if (!p) return p;
            const i = p.items.findIndex((r) => r.name === row.name);
            if (i < 0) {
              if (reload.current === null) reload.current = window.setTimeout(() => ((reload.current = null), load()), 300);
              return p;
            }
            const items = [...p.items];
            items[i] = row;
            requestAnimationFrame(() => window.__bootdLatencies.push(Date.now() - at));
            return { ...p, items };
          });
        },
        pending: (batch) =>
          setPending((ps) => {
            const macs = new Set(batch.map((m) => m.mac));
            return [...[...batch].reverse(), ...ps.filter((x) => !macs.has(x.mac))].slice(0, PENDING_KEPT);
          }),
        event: (e) => setEvents((es) => [e, ...es].slice(0, 50)),
      }),
    [load],
  );
  const groups = useMemo(() => {
    if (!page) return [];
    if (!group) return [{ key: '', rows: page.items }];
    return STATUSES.map((s) => ({ key: s, rows: page.items.filter((r) => r.status === s) })).filter((g) => g.rows.length > 0);
  }, [page, group]);
  return (
    <div>
      <div class="toolbar">
        <input
          type="search"
          placeholder="Search name, MAC, IP, image, CPU, GPU"
          value={q}
          aria-label="search"
          onInput={(e) => {
            setOffset(0);
            setQ((e.target as HTMLInputElement).value);
          }}
        />
        <div class="chips" role="group" aria-label="filter by status">
          <button class={status === '' ? 'chip on' : 'chip'} onClick={() => (setOffset(0), setStatus(''))}>
            all <b>{page ? Object.values(page.byStatus).reduce((a, b) => a + b, 0) : ''}</b>
          </button>
          {STATUSES.map((s) => (
            <button key={s} class={status === s ? `chip on s-${s}` : `chip s-${s}`} data-filter={s} onClick={() => (setOffset(0), setStatus(s))}>
              {STATUS_TEXT[s]} <b>{page?.byStatus[s] ?? 0}</b>
            </button>
          ))}
        </div>
        <label class="toggle">
          <input type="checkbox" checked={group} onChange={(e) => setGroup((e.target as HTMLInputElement).checked)} /> group by status
        </label>
        <span class={connected ? 'live on' : 'live'} title="live updates">{connected ? 'live' : 'offline'}</span>
      </div>
      {error && <p class="error">{error}</p>}
      <table class="fleet" id="fleet">
        <thead>
          <tr>
            <th>Host</th>
            <th>MAC</th>
            <th>IP</th>
            <th>Image</th>
            <th>Status</th>
            <th>Last boot</th>
            <th>Took</th>
            <th>Smoke</th>
            <th>Hardware</th>
          </tr>
        </thead>
        {groups.map((g) => (
          <tbody key={g.key}>
            {g.key && (
              <tr class="group">
                <th colSpan={9}>
                  {STATUS_TEXT[g.key]} ({g.rows.length})
                </th>
              </tr>
            )}
            {g.rows.map((r) => (
              <tr key={r.name} data-host={r.name}>
                <td>
                  <Link href={`/hosts/${encodeURIComponent(r.name)}`}>{r.name}</Link>
                </td>
                <td class="mono">{r.mac ?? ''}</td>
                <td class="mono">{r.ip ?? ''}</td>
                <td>{r.image ?? ''}</td>
                <td>
                  <StatusBadge row={r} />
                </td>
                <td title={r.bootStartedAt ?? ''}>{r.bootStartedAt ? since(r.bootStartedAt) : ''}</td>
                <td>{r.bootDurationMs !== null ? duration(r.bootDurationMs) : ''}</td>
                <td>{r.smoke ? <span class={r.smoke.ok ? 'ok' : 'bad'}>{r.smoke.ok ? `${r.smoke.passed} passed` : `${r.smoke.failed} failed`}</span> : ''}</td>
                <td class="hw">{hardware(r)}</td>
              </tr>
            ))}
          </tbody>
        ))}
      </table>
      {page && (
        <div class="pager">
          <span>
            {page.total === 0 ? 'no hosts' : `${page.offset + 1}–${page.offset + page.items.length} of ${page.total}`}
            {page.total !== page.all ? ` (${page.all} in all)` : ''}
          </span>
          <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - limit))}>
            previous
          </button>
          <button disabled={page.offset + page.items.length >= page.total} onClick={() => setOffset(offset + limit)}>
            next
          </button>
        </div>
      )}
      <div class="columns">
        <section>
          <h2>Pending machines</h2>
          {pending.length === 0 ? (
            <p class="muted">No machine outside hosts/ has asked to boot.</p>
          ) : (
            <table id="pending">
              <thead>
                <tr>
                  <th>MAC</th>
                  <th>Arch</th>
                  <th>Vendor class</th>
                  <th>Last asked</th>
                  <th>Hosts file</th>
                </tr>
              </thead>
              <tbody>
                {pending.slice(0, PENDING_SHOWN).map((p) => (
                  <tr key={p.mac} data-mac={p.mac}>
                    <td class="mono">{p.mac}</td>
                    <td>{p.arch ?? ''}</td>
                    <td class="mono">{p.vendorClass ?? ''}</td>
                    <td>{since(p.lastSeen)} ({p.requests}×)</td>
                    <td>
                      <pre class="snippet">{p.snippet}</pre>
                      <button onClick={() => void navigator.clipboard?.writeText(p.snippet)}>copy</button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {pending.length > PENDING_SHOWN && <p class="muted">and {pending.length - PENDING_SHOWN} more (GET /api/pending lists them all)</p>}
        </section>
        <section>
          <h2>Events</h2>
          <ol class="events" id="events">
            {events.map((e) => (
              <li key={e.seq}>
                <time>{when(e.at)}</time> {describeEvent(e.event)}
              </li>
            ))}
          </ol>
        </section>
      </div>
    </div>
  );
}

function HostPage({ name }: { name: string }) {
  const [d, setD] = useState<HostDetail | null>(null);
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const load = useCallback(() => get<HostDetail>(`/api/hosts/${encodeURIComponent(name)}`).then(setD, (e: Error) => setError(e.message)), [name]);
  useEffect(() => void load(), [load]);
  useEffect(
    () =>
      live({
        host: (row) => row.name === name && void load(),
        event: (e) => {
          const ev = e.event;
          if ((ev.type === 'smoke.started' || ev.type === 'smoke.finished') && ev.host === name) void load();
        },
      }),
    [name, load],
  );
  const smoke = async (): Promise<void> => {
    setNote('');
    try {
      await post(`/api/hosts/${encodeURIComponent(name)}/smoke`);
      setNote('Smoke test started; the result appears here when it ends.');
    } catch (e) {
      setNote(`Smoke test not started: ${(e as Error).message}`);
    }
  };
  if (error) return <p class="error">{error}</p>;
  if (!d) return <p class="muted">loading…</p>;
  const inv = d.inventory?.summary;
  const last = d.boots[0];
  return (
    <div>
      <h2>
        {name} {d.row && <StatusBadge row={d.row} />}
      </h2>
      <p class="facts">
        <span class="mono">{d.row?.mac}</span> <span class="mono">{d.row?.ip}</span> {d.row?.image} {d.row?.file ? <span class="muted">({d.row.file})</span> : <span class="muted">(not in hosts/)</span>}
      </p>
      <div class="actions">
        <button id="run-smoke" onClick={() => void smoke()}>
          Run smoke test now
        </button>
        <span id="note">{note}</span>
      </div>
      <h3>Boots</h3>
      {d.boots.length === 0 && <p class="muted">No boot recorded.</p>}
      {d.boots.map((b, i) => (
        <details key={b.id} open={i === 0} class="boot">
          <summary>
            {when(Date.parse(b.startedAt))} · {PHASE_TEXT[b.phase] ?? b.phase} · {b.image ?? ''} · {duration(Date.parse(b.updatedAt) - Date.parse(b.startedAt))}
          </summary>
          <Timeline boot={b} />
        </details>
      ))}
      <div class="columns">
        <section>
          <h3>Inventory</h3>
          {inv ? (
            <table class="kv" id="inventory">
              <tbody>
                <tr><th>Board</th><td>{inv.board ?? ''}</td></tr>
                <tr><th>CPU</th><td>{inv.cpu.model ?? ''} {inv.cpu.sockets ? `(${inv.cpu.sockets} sockets, ` : '('}{inv.cpu.threads ?? '?'} threads)</td></tr>
                <tr><th>Memory</th><td>{inv.memoryMiB !== null ? `${inv.memoryMiB} MiB` : ''} {inv.dimms ? `in ${inv.dimms} DIMMs` : ''}</td></tr>
                <tr><th>Disks</th><td>{inv.disks.map((x) => `${x.name} ${x.sizeBytes !== null ? bytes(x.sizeBytes) : ''} ${x.model ?? ''}`).join(', ')}</td></tr>
                <tr><th>PCIe devices</th><td>{inv.pcieDevices ?? ''}</td></tr>
                <tr><th>GPUs</th><td>{inv.gpus.join(', ') || 'none'}</td></tr>
                <tr><th>Collectors</th><td>{Object.entries(inv.collectors).map(([k, v]) => `${k}: ${v}`).join(' · ')}</td></tr>
                <tr><th>Reported</th><td>{d.inventory ? when(Date.parse(d.inventory.receivedAt)) : ''}</td></tr>
              </tbody>
            </table>
          ) : (
            <p class="muted">No audit report yet.</p>
          )}
          {d.report !== null && (
            <details>
              <summary>Full report</summary>
              <pre class="report">{JSON.stringify(d.report, null, 2)}</pre>
            </details>
          )}
          <h3>Uploaded files</h3>
          {d.uploads.length === 0 ? (
            <p class="muted">None.</p>
          ) : (
            <ul>
              {d.uploads.map((u) => (
                <li key={u.file}>
                  <span class="mono">{u.file}</span> {bytes(u.bytes)} · {since(u.modifiedAt)}
                </li>
              ))}
            </ul>
          )}
        </section>
        <section>
          <h3>Last smoke test</h3>
          {last?.smoke ? (
            <p class={last.smoke.ok ? 'ok' : 'bad'} id="smoke-result">
              {last.smoke.ok ? 'passed' : 'failed'}: {last.smoke.passed} passed, {last.smoke.failed.length} failed, {duration(last.smoke.durationMs)}
              {last.smoke.error ? ` (${last.smoke.error})` : ''}
            </p>
          ) : (
            <p class="muted">Not run on the last boot.</p>
          )}
          {d.smokeOutput !== null && <pre class="smoke">{d.smokeOutput}</pre>}
          <h3>Event log</h3>
          <ol class="events">
            {d.boots.flatMap((b) => [...b.events].reverse()).slice(0, 300).map((e, i) => (
              <li key={i}>
                <time>{when(Date.parse(e.at))}</time> <span class={`k k-${e.kind}`}>{e.kind}</span> {e.text}
              </li>
            ))}
          </ol>
        </section>
      </div>
    </div>
  );
}

function ImagesPage() {
  const [data, setData] = useState<{ images: ImageInfo[]; builds: BuildInfo[] } | null>(null);
  const [note, setNote] = useState('');
  const load = useCallback(() => void get<{ images: ImageInfo[]; builds: BuildInfo[] }>('/api/images').then(setData, (e: Error) => setNote(e.message)), []);
  useEffect(load, [load]);
  useEffect(() => live({ event: (e) => (e.event.type === 'image.build' || e.event.type === 'admin.action') && load() }), [load]);
  const switchTo = async (image: string, version: string): Promise<void> => {
    try {
      await post(`/api/images/${encodeURIComponent(image)}/current`, { version });
      setNote(`${image} now serves ${version}.`);
    } catch (e) {
      setNote(`Not switched: ${(e as Error).message}`);
    }
    load();
  };
  if (!data) return <p class="muted">loading…</p>;
  return (
    <div>
      <p id="note">{note}</p>
      {data.images.length === 0 && <p class="muted">No images in the catalog.</p>}
      {data.images.map((img) => {
        const cur = img.versions.findIndex((v) => v.version === img.current);
        return (
          <section key={img.name} class="image" data-image={img.name}>
            <h2>
              {img.name} <span class="muted">current: {img.current ?? 'none'}</span>
            </h2>
            <table>
              <thead>
                <tr>
                  <th>Version</th>
                  <th>Size</th>
                  <th>Kernel</th>
                  <th>Built</th>
                  <th>Hosts</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {[...img.versions].reverse().map((v) => {
                  const i = img.versions.findIndex((x) => x.version === v.version);
                  const hosts = img.hosts.filter((h) => h.version === v.version);
                  return (
                    <tr key={v.version} data-version={v.version} class={v.version === img.current ? 'current' : ''}>
                      <td class="mono">{v.version}{v.version === img.current ? ' (current)' : ''}</td>
                      <td>{bytes(v.bytes)}</td>
                      <td>{v.kernelVersion ?? ''}</td>
                      <td>{v.builtAt ? since(v.builtAt) : ''}</td>
                      <td>{hosts.length > 0 ? hosts.map((h) => h.name).join(', ') : ''}</td>
                      <td>
                        {v.version !== img.current && v.valid && (
                          <button data-action="switch" onClick={() => void switchTo(img.name, v.version)}>
                            {cur >= 0 && i < cur ? 'roll back to this' : 'make current'}
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </section>
        );
      })}
      <h2>Builds</h2>
      {data.builds.length === 0 ? (
        <p class="muted">No build since bootd started (built versions are listed above).</p>
      ) : (
        <table>
          <tbody>
            {data.builds.map((b, i) => (
              <tr key={i}>
                <td>{b.image}</td>
                <td class={b.state === 'failed' ? 'bad' : b.state === 'finished' ? 'ok' : ''}>{b.state}</td>
                <td>
                  {b.state === 'running' && b.total ? <progress max={b.total} value={b.index ?? 0} /> : null} {b.step ?? ''} {b.version ?? ''} {b.error ?? ''}
                </td>
                <td>{when(b.startedAt)}</td>
                <td>{b.endedAt ? duration(b.endedAt - b.startedAt) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function MachinesPage() {
  const [ms, setMs] = useState<MachineInfo[] | null>(null);
  const [note, setNote] = useState('');
  const [name, setName] = useState('');
  const [ttl, setTtl] = useState('3600');
  const load = useCallback(() => void get<MachineInfo[]>('/api/machines').then(setMs, (e: Error) => setNote(e.message)), []);
  useEffect(load, [load]);
  const act = async (what: () => Promise<unknown>, done: string): Promise<void> => {
    try {
      await what();
      setNote(done);
    } catch (e) {
      setNote(`Refused: ${(e as Error).message}`);
    }
    load();
  };
  return (
    <div>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          void act(() => post('/api/machines/open', { name, ttlSeconds: Number(ttl) }), `${name}'s port is open.`);
        }}
      >
        <input placeholder="host name" value={name} aria-label="machine name" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <input type="number" min="60" value={ttl} aria-label="open for seconds" onInput={(e) => setTtl((e.target as HTMLInputElement).value)} />
        <button type="submit" id="open-machine">
          Open a port
        </button>
        <span id="note">{note}</span>
      </form>
      {!ms ? (
        <p class="muted">loading…</p>
      ) : ms.length === 0 ? (
        <p class="muted">No build machine has an open port.</p>
      ) : (
        <table id="machines">
          <thead>
            <tr>
              <th>Machine</th>
              <th>Port</th>
              <th>Owner</th>
              <th>Quota used</th>
              <th>Expires</th>
              <th>From</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {ms.map((m) => (
              <tr key={m.name} data-machine={m.name}>
                <td>{m.name}</td>
                <td class="mono">{m.port}{m.listening ? '' : ` (${m.error ?? 'not listening'})`}</td>
                <td class="mono">{m.ownerAddress ?? m.owner.mac ?? ''}</td>
                <td>
                  {bytes(m.usageBytes)} of {bytes(m.quotaBytes)} <meter min={0} max={m.quotaBytes} value={m.usageBytes} />
                </td>
                <td>{m.expiresAt ? when(Date.parse(m.expiresAt)) : 'never'}</td>
                <td>{m.source === 'hosts' ? 'hosts/ (build:)' : 'opened by hand'}</td>
                <td>
                  {m.source === 'cli' && (
                    <button data-action="close" onClick={() => void act(() => post(`/api/machines/${encodeURIComponent(m.name)}/close`), `${m.name}'s port is closed.`)}>
                      close
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/**
 * The instances sharing this bootd's database (several racks, a standby):
 * which leads its segment's DHCP, and a warning when they do not serve the
 * same host set (hosts/ checkouts that differ). Nothing when bootd runs alone.
 */
function InstancesBar() {
  const [view, setView] = useState<InstancesView | null>(null);
  useEffect(() => {
    // every 5 s while bootd shares a database; once, when it runs alone (null)
    let t: number | undefined;
    const load = (): void =>
      void get<InstancesView | null>('/api/instances').then((v) => {
        setView(v);
        if (v !== null) t = window.setTimeout(load, 5000);
      }, () => {});
    load();
    return () => window.clearTimeout(t);
  }, []);
  if (!view) return null;
  return (
    <div class="instances">
      {!view.agree && (
        <p class="warning" role="alert" data-testid="hostset-warning">
          The instances serve {view.groups.length} different host sets:{' '}
          {view.groups.map((g) => `${(g.digest ?? 'none').slice(0, 12)} (${g.hosts ?? '?'} hosts) on ${g.instances.join(', ')}`).join('; ')}. Check that every instance's hosts/ checkout is the same.
        </p>
      )}
      <p class="muted">
        {view.instances.length} instance{view.instances.length === 1 ? '' : 's'}:{' '}
        {view.instances.map((i) => `${i.id}${i.id === view.self ? ' (this one)' : ''}${i.segment ? ` ${i.segment}` : ''} ${i.leading ? 'leading' : 'standby'}`).join(', ')}
      </p>
    </div>
  );
}

function App() {
  const [route, setRoute] = useState<Route>(parseRoute(location.pathname));
  useEffect(() => {
    const on = (): void => setRoute(parseRoute(location.pathname));
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  const tab = (href: string, label: string, on: boolean) => (
    <Link href={href} class={on ? 'tab on' : 'tab'}>
      {label}
    </Link>
  );
  return (
    <>
      <header>
        <h1>bootd</h1>
        <nav>
          {tab('/', 'Fleet', route.page === 'fleet' || route.page === 'host')}
          {tab('/images', 'Images', route.page === 'images')}
          {tab('/machines', 'Build machines', route.page === 'machines')}
        </nav>
        <form method="post" action="/logout" class="logout">
          <button type="submit">sign out</button>
        </form>
      </header>
      <InstancesBar />
      <main>
        {route.page === 'fleet' && <FleetPageView />}
        {route.page === 'host' && <HostPage name={route.name} />}
        {route.page === 'images' && <ImagesPage />}
        {route.page === 'machines' && <MachinesPage />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
