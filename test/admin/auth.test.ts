import { describe, expect, it } from 'vitest';
import { AdminAuth, CSRF_HEADER, SESSION_COOKIE, cookieOf, isLoopback } from '../../src/admin/auth.js';

const TOKEN = 'a-long-enough-admin-token-0123456789';
let n = 0;
const rnd = (): string => `r${++n}`;

function withToken(now = () => 1000): AdminAuth {
  return new AdminAuth(TOKEN, now, rnd);
}

function sessionOf(auth: AdminAuth): { cookie: string; csrf: string } {
  const r = auth.login({ headers: { host: '198.18.0.1:9267', origin: 'http://198.18.0.1:9267' } }, TOKEN);
  if (!r.ok) throw new Error(r.why);
  const sid = cookieOf(r.cookie.split(';')[0], SESSION_COOKIE) as string;
  const v = auth.check({ headers: { cookie: `${SESSION_COOKIE}=${sid}` } }, false);
  if (!v.ok || v.csrf === null) throw new Error('no session');
  return { cookie: `${SESSION_COOKIE}=${sid}`, csrf: v.csrf };
}

describe('admin auth with a token', () => {
  it('refuses a request with no token or a wrong one with 401', () => {
    const a = withToken();
    expect(a.check({ headers: {} }, false)).toMatchObject({ ok: false, status: 401 });
    expect(a.check({ headers: { authorization: 'Bearer nope' } }, false)).toMatchObject({ ok: false, status: 401 });
    expect(a.check({ headers: { authorization: `Basic ${TOKEN}` } }, false)).toMatchObject({ ok: false, status: 401 });
    expect(a.check({ headers: { cookie: `${SESSION_COOKIE}=forged` } }, false)).toMatchObject({ ok: false, status: 401 });
  });

  it('takes the bearer token, for reads and for actions without a CSRF header', () => {
    const a = withToken();
    expect(a.check({ headers: { authorization: `Bearer ${TOKEN}` } }, false)).toMatchObject({ ok: true, via: 'bearer' });
    expect(a.check({ headers: { authorization: `bearer  ${TOKEN}` } }, true)).toMatchObject({ ok: true, via: 'bearer' });
  });

  it('sets an HttpOnly, SameSite=Strict session cookie on login; a wrong token or a cross-site form gets none', () => {
    const a = withToken();
    const ok = a.login({ headers: { host: 'b:1', origin: 'http://b:1' } }, TOKEN);
    expect(ok.ok && ok.cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[^;]+; HttpOnly; SameSite=Strict; Path=/`));
    expect(a.login({ headers: { host: 'b:1' } }, 'wrong')).toMatchObject({ ok: false, status: 401 });
    expect(a.login({ headers: { host: 'b:1', origin: 'http://evil.example' } }, TOKEN)).toMatchObject({ ok: false, status: 403 });
  });

  it('lets a session read, and act only with its CSRF token from the same origin', () => {
    const a = withToken();
    const s = sessionOf(a);
    const host = '198.18.0.1:9267';
    expect(a.check({ headers: { cookie: s.cookie, host } }, false)).toMatchObject({ ok: true, via: 'cookie' });
    // a cross-site form or fetch: no header (the cookie alone is not enough)
    expect(a.check({ headers: { cookie: s.cookie, host } }, true)).toMatchObject({ ok: false, status: 403 });
    expect(a.check({ headers: { cookie: s.cookie, host, [CSRF_HEADER]: 'guess' } }, true)).toMatchObject({ ok: false, status: 403 });
    expect(a.check({ headers: { cookie: s.cookie, host, [CSRF_HEADER]: s.csrf, origin: 'http://evil.example' } }, true)).toMatchObject({ ok: false, status: 403 });
    expect(a.check({ headers: { cookie: s.cookie, host, [CSRF_HEADER]: s.csrf, 'sec-fetch-site': 'cross-site' } }, true)).toMatchObject({ ok: false, status: 403 });
    expect(a.check({ headers: { cookie: s.cookie, host, [CSRF_HEADER]: s.csrf, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' } }, true)).toMatchObject({ ok: true });
  });

  it('ends sessions after 12 hours and at logout', () => {
    let now = 0;
    const a = withToken(() => now);
    const s = sessionOf(a);
    now += 12 * 3600_000 - 1;
    expect(a.check({ headers: { cookie: s.cookie } }, false).ok).toBe(true);
    now += 1;
    expect(a.check({ headers: { cookie: s.cookie } }, false)).toMatchObject({ ok: false, status: 401 });
    const t = sessionOf(a);
    a.logout({ headers: { cookie: t.cookie } });
    expect(a.check({ headers: { cookie: t.cookie } }, false)).toMatchObject({ ok: false, status: 401 });
  });
});

describe('admin auth without a token (loopback)', () => {
  const a = new AdminAuth(null, () => 0, rnd);

  it('serves reads to loopback Host names only (DNS rebinding)', () => {
    for (const host of ['127.0.0.1:9267', 'localhost:9267', '[::1]:9267', '127.0.0.1']) expect(a.check({ headers: { host } }, false).ok, host).toBe(true);
    for (const host of ['evil.example:9267', '198.18.0.1:9267', 'localhost.evil.example']) expect(a.check({ headers: { host } }, false)).toMatchObject({ ok: false, status: 403 });
  });

  it('still wants the CSRF header for actions, and refuses cross-site ones', () => {
    const v = a.check({ headers: { host: '127.0.0.1:9267' } }, false);
    const csrf = v.ok ? (v.csrf as string) : '';
    expect(csrf.length).toBeGreaterThan(0);
    expect(a.check({ headers: { host: '127.0.0.1:9267' } }, true)).toMatchObject({ ok: false, status: 403 });
    expect(a.check({ headers: { host: '127.0.0.1:9267', [CSRF_HEADER]: csrf, origin: 'http://evil.example' } }, true)).toMatchObject({ ok: false, status: 403 });
    expect(a.check({ headers: { host: '127.0.0.1:9267', [CSRF_HEADER]: csrf, origin: 'http://127.0.0.1:9267' } }, true)).toMatchObject({ ok: true, via: 'open' });
  });

  it('knows loopback listen addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '198.18.0.1', '10.0.0.1'].some(isLoopback)).toBe(false);
  });
});
