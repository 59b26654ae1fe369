/**
 * The admin listener (--admin-listen, default 127.0.0.1:9267): /metrics, the
 * dashboard (bundled assets, nothing from the internet), its JSON API, the
 * live event stream (server-sent events) and the actions. Who may do what
 * is ./auth.ts; what the pages show is ./fleet.ts and ./api.ts; this module
 * is the HTTP around them: routing, bodies, headers, counting refusals.
 */
import { promises as fs } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { routeTable, type RouteMatcher } from '../control/routes.js';
import type { Logger } from '../log.js';
import { RepeatLimiter } from '../log-limit.js';
import type { Clock } from '../net/clock.js';
import { AdminAuth, CSRF_HEADER, type Verdict } from './auth.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What a route gets: the path's parameters, the query, the JSON body (POST), who asked. */
export interface RouteCall {
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  readonly body: unknown;
  readonly peer: string;
}

export type ApiRoute = (call: RouteCall) => Promise<unknown>;

/** A stream the listener holds open (server-sent events): `start` writes to it until `close` is called or the client goes. */
export type StreamRoute = (call: RouteCall, out: { write(chunk: string): boolean; readonly writableLength: number; end(): void }) => () => void;

export interface AdminRoutes {
  /** "GET /api/fleet", "POST /api/hosts/:name/smoke", ... */
  readonly api: Readonly<Record<string, ApiRoute>>;
  readonly streams: Readonly<Record<string, StreamRoute>>;
  /** The Prometheus exposition and its content type. */
  readonly metrics: () => Promise<{ readonly body: string; readonly contentType: string }>;
}

export interface AdminServerConfig {
  readonly listen: string;
  readonly port: number;
  /** Null: no token (loopback only; checked by the caller). */
  readonly token: string | null;
  /** The built dashboard (index.html, app.js, app.css). */
  readonly assetsDir: string;
}

export interface AdminCounters {
  requests: number;
  unauthorized: number;
  forbidden: number;
  streams: number;
}

const MAX_BODY = 64 << 10;
const MAX_STREAMS = 100;
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // not no-referrer: under it browsers send `Origin: null` on the dashboard's own POSTs (login form)
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
} as const;
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const ASSETS: Readonly<Record<string, string>> = { '/assets/app.js': 'text/javascript; charset=utf-8', '/assets/app.css': 'text/css; charset=utf-8' };

export class AdminServer {
  readonly counters: AdminCounters = { requests: 0, unauthorized: 0, forbidden: 0, streams: 0 };
  private readonly server: http.Server;
  private readonly auth: AdminAuth;
  private readonly warnings: RepeatLimiter;
  private readonly match: RouteMatcher<ApiRoute>;
  private readonly closers = new Set<() => void>();

  private constructor(
    private readonly cfg: AdminServerConfig,
    private readonly routes: AdminRoutes,
    private readonly log: Logger,
    clock: Clock,
  ) {
    this.auth = new AdminAuth(cfg.token, () => clock.wallNow());
    this.warnings = new RepeatLimiter(log, clock);
    this.match = routeTable(routes.api);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.warnings.warn('handler', { svc: 'admin', err: String(err) }, 'admin request failed');
        if (!res.headersSent) this.json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 5_000;
  }

  static async start(cfg: AdminServerConfig, routes: AdminRoutes, log: Logger, clock: Clock): Promise<AdminServer> {
    const s = new AdminServer(cfg, routes, log, clock);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(cfg.port, cfg.listen, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  get address(): { address: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  /** Where an operator opens the dashboard. */
  get url(): string {
    const a = this.address;
    return `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}/`;
  }

  get tokenRequired(): boolean {
    return this.auth.tokenRequired;
  }

  async close(): Promise<void> {
    for (const c of [...this.closers]) c();
    this.warnings.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counters.requests++;
    const peer = `${(req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')}:${req.socket.remotePort ?? 0}`;
    const url = new URL(req.url ?? '/', 'http://bootd');
    const method = req.method ?? 'GET';
    const p = url.pathname;
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);

    if (p === '/login' && method === 'GET') return this.page(res, 200, loginPage(''));
    if (p === '/login' && method === 'POST') {
      const form = new URLSearchParams((await this.body(req)).toString('utf8'));
      const r = this.auth.login(req, form.get('token') ?? '');
      if (!r.ok) {
        this.refused(r.status, r.why, peer, method, p);
        return this.page(res, r.status, loginPage(r.status === 401 ? 'That is not the token.' : 'Refused: the form did not come from this page.'));
      }
      this.log.info({ svc: 'admin', peer }, 'admin login');
      res.writeHead(303, { location: '/', 'set-cookie': r.cookie });
      res.end();
      return;
    }
    if (p === '/logout' && method === 'POST') {
      res.writeHead(303, { location: '/login', 'set-cookie': this.auth.logout(req) });
      res.end();
      return;
    }
    if (p === '/healthz' && method === 'GET') return this.json(res, 200, { ok: true });
    if (p === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    // the bundled script and style hold no data: served to the login page too
    const asset = ASSETS[p];
    if (asset !== undefined && method === 'GET') return this.asset(res, p.slice('/assets/'.length), asset);

    const action = method !== 'GET' && method !== 'HEAD';
    const verdict = this.auth.check(req, action);
    if (!verdict.ok) {
      this.refused(verdict.status, verdict.why, peer, method, p);
      if (verdict.status === 401 && method === 'GET' && !p.startsWith('/api/') && p !== '/metrics' && accepts(req, 'text/html')) {
        // a browser: the login form (still a 401, counted above)
        return this.page(res, 401, loginPage(''));
      }
      if (verdict.status === 401) res.setHeader('www-authenticate', 'Bearer realm="bootd"');
      return this.json(res, verdict.status, { error: verdict.why });
    }

    if (p === '/metrics' && method === 'GET') {
      const m = await this.routes.metrics();
      res.writeHead(200, { 'content-type': m.contentType });
      res.end(m.body);
      return;
    }
    if (method === 'GET' && (p === '/' || p === '/index.html' || /^\/(hosts|images|machines|events)(\/.*)?$/.test(p))) return this.index(res);
    if (p === '/api/session' && method === 'GET') return this.json(res, 200, session(verdict, this.auth.tokenRequired));

    const stream = this.routes.streams[`${method} ${p}`];
    if (stream) return this.stream(req, res, stream, { params: [], query: url.searchParams, body: null, peer });

    const hit = this.match(method, p);
    if (!hit) return this.json(res, 404, { error: `no such request: ${method} ${p}` });
    let body: unknown = null;
    if (action) {
      const raw = await this.body(req);
      try {
        body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : null;
      } catch {
        return this.json(res, 400, { error: 'the request body is not JSON' });
      }
    }
    try {
      const out = await hit.fn({ params: hit.params, query: url.searchParams, body, peer });
      return this.json(res, action ? 202 : 200, out);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
      return this.json(res, status, { error: (err as Error).message });
    }
  }

  /** A 401 or 403: counted, and logged with the peer (a flood: a few lines and a count). */
  private refused(status: 401 | 403, why: string, peer: string, method: string, p: string): void {
    if (status === 401) this.counters.unauthorized++;
    else this.counters.forbidden++;
    const addr = peer.replace(/:\d+$/, '');
    this.warnings.warn(`refused-${status}-${addr}`, { svc: 'admin', peer, status, method, path: p, why }, status === 401 ? 'admin request without a valid token' : 'admin request refused');
  }

  private body(req: IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(new HttpError(413, 'request body too large'));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(`${JSON.stringify(body)}\n`);
  }

  private page(res: ServerResponse, status: number, html: string): void {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP });
    res.end(html);
  }

  private async index(res: ServerResponse): Promise<void> {
    const html = await fs.readFile(path.join(this.cfg.assetsDir, 'index.html'), 'utf8').catch(() => null);
    if (html === null) return this.page(res, 503, `<!doctype html><title>bootd</title><p>The dashboard is not built (${this.cfg.assetsDir}/index.html is missing): run <code>npm run build</code>.</p>`);
    this.page(res, 200, html);
  }

  private async asset(res: ServerResponse, file: string, type: string): Promise<void> {
    const data = await fs.readFile(path.join(this.cfg.assetsDir, file)).catch(() => null);
    if (data === null) return this.json(res, 404, { error: `asset ${file} is not built` });
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
    res.end(data);
  }

  private stream(req: IncomingMessage, res: ServerResponse, route: StreamRoute, call: RouteCall): void {
    if (this.closers.size >= MAX_STREAMS) return this.json(res, 503, { error: `too many open event streams (${MAX_STREAMS})` });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': bootd events\n\n');
    this.counters.streams++;
    const stop = route(call, res);
    const close = (): void => {
      if (!this.closers.delete(close)) return;
      this.counters.streams--;
      stop();
      res.end();
    };
    this.closers.add(close);
    req.on('close', close);
    res.on('error', close);
  }
}

function accepts(req: IncomingMessage, type: string): boolean {
  return (req.headers.accept ?? '').includes(type);
}

function session(v: Verdict, tokenRequired: boolean): unknown {
  return v.ok ? { via: v.via, csrf: v.csrf, csrfHeader: CSRF_HEADER, tokenRequired } : {};
}

function loginPage(message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bootd: sign in</title><link rel="stylesheet" href="/assets/app.css"></head>
<body class="login"><form method="post" action="/login"><h1>bootd</h1><p>This listener needs the admin token (the file named by <code>--admin-token-file</code>).</p>
${message ? `<p class="error" role="alert">${message}</p>` : ''}<label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Sign in</button></form></body></html>`;
}
