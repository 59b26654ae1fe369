/**
 * The HTTP side of the file tree against a real client (curl) on loopback:
 * GET, HEAD, one range, refusals, and the same path rules as TFTP.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpFileServer, type HttpTransfer } from '../../src/http/server.js';
import { systemClock } from '../../src/net/clock.js';
import { silentLogger } from '../../src/log.js';
import { FileRoot, VirtualFileTable } from '../../src/tftp/fileroot.js';

const run = promisify(execFile);

describe('HTTP file server (curl)', () => {
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
    writeFileSync(path.join(dir, 'secret'), 'outside the root');
    symlinkSync(path.join(dir, 'secret'), path.join(dir, 'root/escape'));
    const v = new VirtualFileTable();
    v.set('boot.ipxe', '#!ipxe\nchain /ipxe/${mac:hexhyp}.ipxe\n');
    server = await HttpFileServer.start({ root: await FileRoot.open(path.join(dir, 'root'), [v]), clock: systemClock, log: silentLogger }, '127.0.0.1', 0);
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
