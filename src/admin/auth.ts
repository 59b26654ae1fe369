/**
 * Who may use the admin listener, decided per request. Pure but for the
 * random session ids (injected) and the clock.
 *
 * - With a token (required off loopback): every request shows it, as
 *   `Authorization: Bearer <token>` (Prometheus, scripts) or as the session
 *   cookie the login form set (HttpOnly, SameSite=Strict, 12 hours).
 * - Without a token (loopback only): reads are open to local users, as
 *   Prometheus's and Kea's own loopback listeners are; the Host header must
 *   then name a loopback address, so a web page that rebinds its DNS name to
 *   127.0.0.1 cannot read the dashboard.
 * - Actions (POST) are CSRF-protected whatever the mode: a browser request
 *   needs the `X-Bootd-CSRF` header with the session's token (a custom header
 *   a cross-site form cannot send, and a cross-site fetch cannot without a
 *   CORS preflight that bootd never grants), and an Origin or
 *   Sec-Fetch-Site that says same-origin when the browser sends one. A
 *   bearer request is not a browser's ambient credential and needs neither.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'bootd_session';
export const CSRF_HEADER = 'x-bootd-csrf';
const SESSION_MS = 12 * 3600_000;
const MAX_SESSIONS = 1000;

export interface RequestFacts {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export type Verdict =
  | { readonly ok: true; readonly via: 'open' | 'bearer' | 'cookie'; readonly csrf: string | null }
  | { readonly ok: false; readonly status: 401 | 403; readonly why: string };

interface Session {
  readonly csrf: string;
  readonly expires: number;
}

export class AdminAuth {
  private readonly digest: Buffer | null;
  private readonly sessions = new Map<string, Session>();
  /** The CSRF token of the open (tokenless, loopback) mode: one per process. */
  private readonly openCsrf: string;

  constructor(
    token: string | null,
    private readonly now: () => number,
    private readonly random: (bytes: number) => string = (n) => randomBytes(n).toString('base64url'),
  ) {
    this.digest = token === null ? null : sha(token);
    this.openCsrf = random(24);
  }

  get tokenRequired(): boolean {
    return this.digest !== null;
  }

  /** Is `given` the token? Compared in constant time (over digests, so lengths do not leak). */
  tokenMatches(given: string): boolean {
    return this.digest !== null && timingSafeEqual(sha(given), this.digest);
  }

  /** May this request be served? `action`: it changes something (POST), so CSRF rules apply. */
  check(req: RequestFacts, action: boolean): Verdict {
    const h = req.headers;
    const bearer = bearerOf(header(h, 'authorization'));
    let via: 'open' | 'bearer' | 'cookie';
    let csrf: string | null;
    if (this.digest === null) {
      if (!loopbackHost(header(h, 'host'))) return { ok: false, status: 403, why: 'the Host header does not name a loopback address (DNS rebinding?)' };
      via = 'open';
      csrf = this.openCsrf;
    } else if (bearer !== null) {
      if (!this.tokenMatches(bearer)) return { ok: false, status: 401, why: 'wrong bearer token' };
      return { ok: true, via: 'bearer', csrf: null };
    } else {
      const sid = cookieOf(header(h, 'cookie'), SESSION_COOKIE);
      if (sid === null) return { ok: false, status: 401, why: 'no token (no Authorization header and no session cookie)' };
      const s = this.sessions.get(sid);
      if (!s || s.expires <= this.now()) {
        if (s) this.sessions.delete(sid);
        return { ok: false, status: 401, why: 'unknown or expired session' };
      }
      via = 'cookie';
      csrf = s.csrf;
    }
    if (action) {
      const cross = crossSite(req);
      if (cross) return { ok: false, status: 403, why: cross };
      const sent = header(h, CSRF_HEADER);
      if (sent === undefined || !same(sent, csrf)) return { ok: false, status: 403, why: `missing or wrong ${CSRF_HEADER} header (cross-site request?)` };
    }
    return { ok: true, via, csrf };
  }

  /**
   * The login form's POST: a session when the token matches, else null.
   * The form itself must come from this origin (login CSRF).
   */
  login(req: RequestFacts, token: string): { readonly ok: true; readonly cookie: string } | { readonly ok: false; readonly status: 401 | 403; readonly why: string } {
    const cross = crossSite(req);
    if (cross) return { ok: false, status: 403, why: cross };
    if (!this.tokenMatches(token)) return { ok: false, status: 401, why: 'wrong token in the login form' };
    const now = this.now();
    for (const [k, s] of this.sessions) if (s.expires <= now) this.sessions.delete(k);
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value as string);
    const sid = this.random(32);
    this.sessions.set(sid, { csrf: this.random(24), expires: now + SESSION_MS });
    return { ok: true, cookie: `${SESSION_COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MS / 1000}` };
  }

  logout(req: RequestFacts): string {
    const sid = cookieOf(header(req.headers, 'cookie'), SESSION_COOKIE);
    if (sid !== null) this.sessions.delete(sid);
    return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }
}

function sha(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function same(a: string, b: string | null): boolean {
  return b !== null && timingSafeEqual(sha(a), sha(b));
}

function header(h: RequestFacts['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function bearerOf(v: string | undefined): string | null {
  const m = v === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(v);
  return m ? (m[1] as string) : null;
}

export function cookieOf(v: string | undefined, name: string): string | null {
  for (const part of (v ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/** Why a browser request is cross-site, or null: Sec-Fetch-Site, then Origin against Host (RFC 6454). */
function crossSite(req: RequestFacts): string | null {
  const site = header(req.headers, 'sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request refused (Sec-Fetch-Site: ${site})`;
  const origin = header(req.headers, 'origin');
  if (origin === undefined) return null;
  const host = header(req.headers, 'host');
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    return `cross-site request refused (Origin: ${origin})`;
  }
  return host !== undefined && o.host === host.toLowerCase() ? null : `cross-site request refused (Origin ${origin} is not this listener)`;
}

/** Host header naming a loopback address or localhost (with or without a port). */
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true; // HTTP/1.0 without Host: no browser sends that
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) || name === '::1';
}

/** Is this listen address loopback (no token needed)? */
export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || address === 'localhost';
}
