/**
 * The HTTP side of the file tree against a real client (curl) on loopback:
 * GET, HEAD, one range, refusals, and the same path rules as TFTP.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpFileServer } from '../../src/http/server.js';
import { transfersInto, type FlatTransfer } from '../helpers/events.js';
import { systemClock } from '../../src/net/clock.js';
import { silentLogger } from '../../src/log.js';
import { FileRoot, VirtualFileTable } from '../../src/files/root.js';
import { FileCache, type CachedSource } from '../../src/files/source.js';
import { until } from '../helpers/workdir.js';

const run = promisify(execFile);

// the body streamed from disk; from TFTP's shared file cache in one write; streamed again when over the cache's budget
describe.each([
  ['streamed from disk', null],
  ['from the shared file cache', 128 << 20],
  ['over the cache budget', 1 << 20],
] as const)('HTTP file server (curl), %s', (_how, cacheBytes) => {
  const cache = cacheBytes === null ? null : new FileCache(cacheBytes);
  let dir: string;
  let server: HttpFileServer;
  let base: string;
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  const done: FlatTransfer[] = [];

  beforeAll(async () => {
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 11)) & 0xff;
    dir = mkdtempSync(path.join(tmpdir(), 'bootd-http-'));
    mkdirSync(path.join(dir, 'root/images'), { recursive: true });
    writeFileSync(path.join(dir, 'root/images/vmlinuz'), big);
    writeFileSync(path.join(dir, 'root/images/initrd'), Buffer.alloc(48 << 20));
    writeFileSync(path.join(dir, 'secret'), 'outside the root');
    symlinkSync(path.join(dir, 'secret'), path.join(dir, 'root/escape'));
    const v = new VirtualFileTable();
    v.set('boot.ipxe', '#!ipxe\nchain /ipxe/${mac:hexhyp}.ipxe\n');
    v.set('snponly.efi', 'MZ');
    v.set('efi/http-boot-x64.img', 'FAT');
    server = await HttpFileServer.start({ root: await FileRoot.open(path.join(dir, 'root'), [v]), ...(cache ? { cache } : {}), clock: systemClock, log: silentLogger, events: transfersInto(done) }, '127.0.0.1', 0);
    base = `http://127.0.0.1:${server.address.port}`;
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function curl(args: string[]): Promise<{ code: string; body: Buffer }> {
    const out = path.join(dir, `out-${Math.random().toString(16).slice(2)}`);
    const r = await run('curl', ['-s', '-o', out, '-w', '%{http_code}', ...args], { encoding: 'utf8' });
    let body = Buffer.alloc(0);
    try {
      body = readFileSync(out);
    } catch {
      // HEAD writes nothing
    }
    return { code: r.stdout, body };
  }

  it('GET sends the whole file with its length', async () => {
    const r = await curl([`${base}/images/vmlinuz`]);
    expect(r.code).toBe('200');
    expect(r.body.equals(big)).toBe(true);
    const t = done.find((x) => x.file === 'images/vmlinuz' && x.method === 'GET' && x.status === 200);
    expect(t).toMatchObject({ bytes: big.length, size: big.length, outcome: 'complete' });
    if (cache) {
      // the 3 MiB file is read into the cache under a 128 MiB budget, streamed under 1 MiB
      const st = cache.stats();
      expect([st.loads, st.streamed]).toEqual(cacheBytes === 128 << 20 ? [1, 0] : [0, 1]);
    }
  });

  it('a client that goes away mid-body is an aborted transfer', async () => {
    // 48 MiB, more than loopback's socket buffers hold; the client reads the first bytes and resets
    await new Promise<void>((resolve) => {
      const sock = net.connect(server.address.port, '127.0.0.1', () => sock.write('GET /images/initrd HTTP/1.1\r\nHost: x\r\n\r\n'));
      sock.once('data', () => {
        sock.resetAndDestroy();
        resolve();
      });
      sock.on('error', () => resolve());
    });
    const deadline = Date.now() + 5000;
    while (!done.some((x) => x.file === 'images/initrd') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(done.find((x) => x.file === 'images/initrd')).toMatchObject({ outcome: 'aborted', size: 48 << 20 });
  });

  it('HEAD answers Content-Length and Accept-Ranges, no body', async () => {
    const r = await run('curl', ['-sI', `${base}/images/vmlinuz`], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(r.stdout).toMatch(new RegExp(`Content-Length: ${big.length}\\r`));
    expect(r.stdout).toMatch(/Accept-Ranges: bytes/);
  });

  it('a byte range gets 206 and exactly those bytes', async () => {
    const r = await curl(['-r', '1000000-1999999', `${base}/images/vmlinuz`]);
    expect(r.code).toBe('206');
    expect(r.body.equals(big.subarray(1000000, 2000000))).toBe(true);
    const tailR = await curl(['-r', '-17', `${base}/images/vmlinuz`]);
    expect(tailR.body.equals(big.subarray(big.length - 17))).toBe(true);
  });

  it('a range past the end gets 416', async () => {
    expect((await curl(['-r', `${big.length}-`, `${base}/images/vmlinuz`])).code).toBe('416');
  });

  it('serves generated files (the iPXE script) like TFTP does', async () => {
    const r = await curl([`${base}/boot.ipxe`]);
    expect(r.code).toBe('200');
    expect(r.body.toString()).toContain('#!ipxe');
  });

  it('says what UEFI HTTP Boot needs to know in Content-Type: an EFI program, a disk image to mount, text, bytes', async () => {
    const type = async (p: string): Promise<string> => (await run('curl', ['-sI', `${base}/${p}`], { encoding: 'utf8' })).stdout.match(/^Content-Type: (.+)\r$/m)?.[1] ?? '';
    expect(await type('snponly.efi')).toBe('application/efi');
    expect(await type('efi/http-boot-x64.img')).toBe('application/vnd.efi-img');
    expect(await type('boot.ipxe')).toBe('text/plain; charset=utf-8');
    expect(await type('images/vmlinuz')).toBe('application/octet-stream');
  });

  it('refuses what TFTP refuses, and anything but GET and HEAD', async () => {
    expect((await curl([`${base}/nothing-here`])).code).toBe('404');
    expect((await curl(['--path-as-is', `${base}/../secret`])).code).toBe('403');
    expect((await curl([`${base}/%2e%2e/secret`])).code).toBe('403');
    expect((await curl([`${base}/escape`])).code).toBe('403'); // symlink out of the root
    expect((await curl([`${base}/bad%zz`])).code).toBe('400');
    expect((await curl(['-X', 'PUT', '--data-binary', 'x', `${base}/images/vmlinuz`])).code).toBe('405');
  });
});

describe('HTTP warm-up', () => {
  it('runs one request through the handler before clients come, and neither counts, logs nor reports it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bootd-http-warm-'));
    const root = await FileRoot.open(dir, []);
    const asked: string[] = [];
    const resolver = { resolve: (name: string, ctx: Parameters<FileRoot['resolve']>[1]) => (asked.push(name), root.resolve(name, ctx)) };
    const done: FlatTransfer[] = [];
    const server = await HttpFileServer.start({ root: resolver, clock: systemClock, log: silentLogger, events: transfersInto(done) }, '127.0.0.1', 0);
    try {
      await server.warmUp();
      expect(asked).toHaveLength(1); // the request reached the handler and the path resolution
      expect(asked[0]).toMatch(/^\/\.bootd-warm-up-[0-9a-f]{32}$/);
      expect(server.counters).toMatchObject({ requests: 0, refused: 0, active: 0 });
      expect(done).toEqual([]);
      // the header without the process's token is an ordinary request
      const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'x-bootd-warm-up: guess', `http://127.0.0.1:${server.address.port}/nothing`], { encoding: 'utf8' });
      expect(r.stdout).toBe('404');
      expect(server.counters).toMatchObject({ requests: 1, refused: 1 });
      expect(done.map((t) => t.file)).toEqual(['/nothing']);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('HTTP body from a file still loading into the cache', () => {
  it('sends the bytes already loaded at once and the rest as the load goes on', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bootd-http-load-'));
    const body = Buffer.alloc(3 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 12)) & 0xff;
    writeFileSync(path.join(dir, 'vmlinuz'), body);
    // a cache entry whose load the test drives: 256 KiB in memory, the rest on request
    let loaded = 256 << 10;
    const waiting: Array<{ end: number; wake: () => void }> = [];
    const source = {
      size: body.length,
      get loaded() {
        return loaded;
      },
      read: (start: number, end: number) => (end <= loaded ? body.subarray(start, end) : new Promise<Buffer>((res) => waiting.push({ end, wake: () => res(body.subarray(start, end)) }))),
      release: () => {},
    };
    const loadTo = (n: number): void => {
      loaded = n;
      const all = waiting.splice(0);
      for (const w of all) {
        if (w.end <= loaded) w.wake();
        else waiting.push(w);
      }
    };
    const cache = { openBuffer: async () => source as unknown as CachedSource };
    const server = await HttpFileServer.start({ root: await FileRoot.open(dir, []), cache, clock: systemClock, log: silentLogger }, '127.0.0.1', 0);
    try {
      const got: Buffer[] = [];
      let received = 0;
      const finished = new Promise<void>((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${server.address.port}/vmlinuz`, (res) => {
            res.on('data', (c: Buffer) => {
              got.push(c);
              received += c.length;
            });
            res.on('end', resolve);
            res.on('error', reject);
          })
          .on('error', reject);
      });
      await until(() => received === 256 << 10, 5000, 'the loaded 256 KiB', 5);
      await new Promise((r) => setTimeout(r, 50));
      expect(received).toBe(256 << 10); // nothing beyond what is loaded
      loadTo((256 << 10) + (1 << 20));
      await until(() => received === (256 << 10) + (1 << 20), 5000, 'the next MiB', 5);
      loadTo(body.length);
      await finished;
      expect(Buffer.concat(got).equals(body)).toBe(true);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('HTTP against hostile clients', () => {
  let dir: string;
  let server: HttpFileServer;
  let port: number;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bootd-http-hostile-'));
    mkdirSync(path.join(dir, 'root/a'), { recursive: true });
    writeFileSync(path.join(dir, 'root/x'), 'x at the top');
    writeFileSync(path.join(dir, 'root/é.txt'), 'utf-8 name');
    writeFileSync(path.join(dir, 'root/big'), Buffer.alloc(32 << 20, 7));
    server = await HttpFileServer.start({ root: await FileRoot.open(path.join(dir, 'root'), []), cache: new FileCache(64 << 20), clock: systemClock, log: silentLogger, limits: { idleMs: 400, maxConnections: 8, maxPerClient: 3 } }, '127.0.0.1', 0);
    port = server.address.port;
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One raw request; the status line (or '' if the connection closed without one). */
  const raw = (target: string): Promise<string> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
      s.on('error', () => resolve(''));
    });

  it('decodes percent-escapes to UTF-8 bytes: %C4%AE is "Į", never a dot, and a UTF-8 name is reachable', async () => {
    expect(await raw('/a/%C4%AE%C4%AE/x')).toBe('HTTP/1.1 404 Not Found'); // "a/ĮĮ/x", not "a/../x"
    expect(await raw('/%C4%AE%C4%AE/%C4%AE%C4%AE/x')).toBe('HTTP/1.1 404 Not Found');
    expect(await raw('/a/%2E%2E/x')).toBe('HTTP/1.1 200 OK'); // a real ".." stays inside the root
    expect(await raw('/%C3%A9.txt')).toBe('HTTP/1.1 200 OK');
  });

  it('refuses control characters after decoding (C0 escaped, C1 as UTF-8), and malformed escapes', async () => {
    expect(await raw('/x%0A')).toBe('HTTP/1.1 403 Forbidden');
    expect(await raw('/x%C2%85')).toBe('HTTP/1.1 403 Forbidden'); // U+0085 NEL
    expect(await raw('/x%C4')).toBe('HTTP/1.1 403 Forbidden'); // not UTF-8
    expect(await raw('/x%zz')).toBe('HTTP/1.1 400 Bad Request');
  });

  it('closes a connection whose client never reads, after the idle time', async () => {
    const before = { ...server.counters };
    const s = net.connect(port, '127.0.0.1', () => {
      s.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
      s.pause(); // never read: the window closes, the server's writes stall
    });
    s.on('error', () => {});
    try {
      // the paused client would not notice the close itself: the server's side says it
      await until(() => server.counters.idleTimeouts === before.idleTimeouts + 1, 10_000, 'the idle timeout', 20);
      await until(() => server.counters.aborted === before.aborted + 1 && server.counters.active === 0, 5000, 'the transfer ended as aborted', 20);
    } finally {
      s.destroy();
    }
  });

  it('caps connections per client address; a closed one frees its place', async () => {
    const before = server.counters.refusedConnections;
    const open = (): Promise<net.Socket> => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
    });
    const held = [await open(), await open(), await open()];
    const fourth = await open();
    const fourthClosed = await new Promise<boolean>((resolve) => {
      fourth.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 5000);
    });
    expect(fourthClosed).toBe(true);
    await until(() => server.counters.refusedConnections === before + 1, 5000, 'the refusal counted', 10);
    held[0]?.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(await raw('/x')).toBe('HTTP/1.1 200 OK');
    for (const s of held) s.destroy();
  });
});
