/**
 * The admin listener's HTTP: who gets what status, on 127.0.0.1 with a
 * token (as off loopback) and without one, with stand-in routes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer, HttpError, type AdminRoutes } from '../../src/admin/server.js';
import { silentLogger } from '../../src/log.js';
import { systemClock } from '../../src/net/clock.js';

const TOKEN = 'server-test-token-0123456789abcdef';

function routes(calls: string[]): AdminRoutes {
  return {
    api: {
      'GET /api/thing/:name': async ({ params }) => ({ name: params[0] }),
      'POST /api/act': async ({ body, peer }) => {
        calls.push(`${JSON.stringify(body)} from ${peer.replace(/:\d+$/, '')}`);
        return { done: true };
      },
      'POST /api/fail': async () => {
        throw new HttpError(409, 'no way');
      },
    },
    streams: {
      'GET /api/live': (_c, out) => {
        out.write('event: host\ndata: {"n":1}\n\n');
        return () => calls.push('stream closed');
      },
    },
    metrics: async () => ({ body: 'bootd_up 1\n', contentType: 'text/plain; version=0.0.4; charset=utf-8' }),
  };
}

describe('the admin listener over HTTP', () => {
  let dir: string;
  let withToken: AdminServer;
  let open: AdminServer;
  const calls: string[] = [];
  const url = (s: AdminServer, p: string): string => `http://127.0.0.1:${s.address.port}${p}`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bootd-admin-'));
    await writeFile(path.join(dir, 'index.html'), '<!doctype html><div id="app"></div>');
    await writeFile(path.join(dir, 'app.js'), 'console.log(1)');
    withToken = await AdminServer.start({ listen: '127.0.0.1', port: 0, token: TOKEN, assetsDir: dir }, routes(calls), silentLogger, systemClock);
    open = await AdminServer.start({ listen: '127.0.0.1', port: 0, token: null, assetsDir: dir }, routes(calls), silentLogger, systemClock);
  });

  afterAll(async () => {
    await withToken?.close();
    await open?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 401 without the token (a Bearer challenge for scripts, the sign-in form for browsers), and counts it', async () => {
    const before = withToken.counters.unauthorized;
    const api = await fetch(url(withToken, '/api/thing/x'));
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBe('Bearer realm="bootd"');
    const metrics = await fetch(url(withToken, '/metrics'), { headers: { authorization: 'Bearer wrong' } });
    expect(metrics.status).toBe(401);
    const page = await fetch(url(withToken, '/'), { headers: { accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(await page.text()).toContain('name="token"');
    expect(withToken.counters.unauthorized).toBe(before + 3);
  });

  it('serves everything to the bearer token, actions included (202), and the assets to anyone', async () => {
    const h = { authorization: `Bearer ${TOKEN}` };
    expect(await (await fetch(url(withToken, '/api/thing/a%20b'), { headers: h })).json()).toEqual({ name: 'a b' });
    const m = await fetch(url(withToken, '/metrics'), { headers: h });
    expect([m.status, m.headers.get('content-type'), await m.text()]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8', 'bootd_up 1\n']);
    const act = await fetch(url(withToken, '/api/act'), { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: '{"x":1}' });
    expect(act.status).toBe(202);
    expect(calls).toContain('{"x":1} from 127.0.0.1');
    expect((await fetch(url(withToken, '/api/fail'), { method: 'POST', headers: h })).status).toBe(409);
    expect((await fetch(url(withToken, '/api/act'), { method: 'POST', headers: h, body: '{nope' })).status).toBe(400);
    expect((await fetch(url(withToken, '/api/act'), { method: 'POST', headers: h, body: 'x'.repeat(100_000) }).catch(() => ({ status: 413 }))).status).toBe(413);
    expect((await fetch(url(withToken, '/api/nothing'), { headers: h })).status).toBe(404);
    expect((await fetch(url(withToken, '/assets/app.js'))).status).toBe(200);
    expect((await fetch(url(withToken, '/favicon.ico'))).status).toBe(204);
  });

  it('sets a CSP and no-sniff, frame and referrer headers on the page', async () => {
    const r = await fetch(url(open, '/hosts/h1'));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('referrer-policy')).toBe('same-origin');
  });

  it('without a token: reads are open, actions need the session\'s CSRF header, a foreign Host is refused', async () => {
    expect((await fetch(url(open, '/api/thing/y'))).status).toBe(200);
    const before = open.counters.forbidden;
    expect((await fetch(url(open, '/api/act'), { method: 'POST', body: '{}' })).status).toBe(403);
    const s = (await (await fetch(url(open, '/api/session'))).json()) as { csrf: string; csrfHeader: string };
    expect((await fetch(url(open, '/api/act'), { method: 'POST', headers: { [s.csrfHeader]: s.csrf }, body: '{"y":2}' })).status).toBe(202);
    expect((await fetch(url(open, '/api/act'), { method: 'POST', headers: { [s.csrfHeader]: s.csrf, origin: 'http://evil.example' }, body: '{}' })).status).toBe(403);
    expect(open.counters.forbidden).toBe(before + 2);
  });

  it('holds a live stream open and ends it when the client goes', async () => {
    const ac = new AbortController();
    const r = await fetch(url(open, '/api/live'), { signal: ac.signal });
    expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    for (let i = 0; i < 10 && !text.includes('data: {"n":1}'); i++) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toContain('event: host\ndata: {"n":1}');
    expect(open.counters.streams).toBe(1);
    ac.abort();
    for (let i = 0; i < 50 && open.counters.streams > 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(open.counters.streams).toBe(0);
    expect(calls).toContain('stream closed');
  });
});
