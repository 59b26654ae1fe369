/**
 * bootd's control socket, <state>/bootd.sock: HTTP with JSON bodies over a
 * Unix socket (mode 0600, so only root or the service user can use it).
 * The CLI asks the running server through it for what only the server can
 * do: open and close machine ports, run a smoke test now. Reading state
 * (`bootd status`, `machines list`) needs no server: the CLI reads the store.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { routeTable } from './routes.js';

export const CONTROL_SOCKET = 'bootd.sock';

export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Route = (body: unknown, params: readonly string[]) => Promise<unknown>;

/** Routes by "METHOD /path/:param"; a handler's ControlError becomes its status, anything else a 500. */
export async function startControl(stateDir: string, routes: Readonly<Record<string, Route>>): Promise<{ readonly path: string; close(): Promise<void> }> {
  const sock = path.join(stateDir, CONTROL_SOCKET);
  await fs.mkdir(stateDir, { recursive: true });
  // a socket left by a bootd that died; a live one on the same state directory would be a mistake anyway
  await fs.rm(sock, { force: true });
  const match = routeTable(routes);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1 << 20) chunks.push(c);
    });
    req.on('end', () => {
      const reply = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify(body)}\n`);
      };
      const url = new URL(req.url ?? '/', 'http://bootd');
      const hit = match(req.method ?? '', url.pathname);
      if (!hit) return reply(404, { error: `no such request: ${req.method ?? ''} ${url.pathname}` });
      let body: unknown = null;
      try {
        body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : null;
      } catch {
        return reply(400, { error: 'the request body is not JSON' });
      }
      hit
        .fn(body, hit.params)
        .then((out) => reply(200, out))
        .catch((err: unknown) => reply(err instanceof ControlError ? err.status : 500, { error: (err as Error).message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock, () => resolve());
  });
  await fs.chmod(sock, 0o600);
  return {
    path: sock,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        void fs.rm(sock, { force: true });
      }),
  };
}

/** One request to a running bootd; a clear error when none runs on this state directory. */
export function controlRequest<T>(stateDir: string, method: string, urlPath: string, body?: unknown, timeoutMs = 15 * 60_000): Promise<T> {
  const sock = path.join(stateDir, CONTROL_SOCKET);
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method, path: urlPath, headers: { 'content-type': 'application/json' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reject(new Error(`bootd answered ${res.statusCode ?? '?'} with no JSON`));
        }
        if (res.statusCode !== 200) return reject(new Error((json as { error?: string }).error ?? `bootd answered ${res.statusCode ?? '?'}`));
        resolve(json as T);
      });
    });
    req.on('timeout', () => req.destroy(new Error('bootd did not answer in time')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? new Error(`bootd is not running on ${stateDir} (no ${sock}); start bootd serve --state ${stateDir}`) : err);
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
