/**
 * The HTTP side of the file tree against a real client (curl) on loopback:
 * GET, HEAD, one range, refusals, and the same path rules as TFTP.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpFileServer, type HttpTransfer } from '../../src/http/server.js';
import { systemClock } from '../../src/net/clock.js';
import { silentLogger } from '../../src/log.js';
import { FileRoot, VirtualFileTable } from '../../src/tftp/fileroot.js';
import { FileCache } from '../../src/tftp/source.js';

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
  const done: HttpTransfer[] = [];

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
    server = await HttpFileServer.start({ root: await FileRoot.open(path.join(dir, 'root'), [v]), ...(cache ? { cache } : {}), clock: systemClock, log: silentLogger }, '127.0.0.1', 0);
    server.onTransfer((t) => done.push(t));
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

  it('refuses what TFTP refuses, and anything but GET and HEAD', async () => {
    expect((await curl([`${base}/nothing-here`])).code).toBe('404');
    expect((await curl(['--path-as-is', `${base}/../secret`])).code).toBe('403');
    expect((await curl([`${base}/%2e%2e/secret`])).code).toBe('403');
    expect((await curl([`${base}/escape`])).code).toBe('403'); // symlink out of the root
    expect((await curl([`${base}/bad%zz`])).code).toBe('400');
    expect((await curl(['-X', 'PUT', '--data-binary', 'x', `${base}/images/vmlinuz`])).code).toBe('405');
  });
});
