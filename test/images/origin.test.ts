/**
 * Image versions from an origin (src/images/origin.ts), against an HTTP
 * server on loopback that serves a catalog folder as a static server would
 * (the `current` symlink followed): a version arrives whole and verified,
 * with its marker; a file whose bytes or size differ from the manifest is
 * refused and nothing of the version is left in the catalog; two requests
 * for one version make one fetch; following the origin's current moves the
 * local current; the cache removes the least recently used fetched version
 * first and never a current one or one built here.
 */
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageCatalog } from '../../src/images/catalog.js';
import { ImageCache, ImageOrigin, ORIGIN_MARKER, VerificationError } from '../../src/images/origin.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';
import { makeWorkDir } from '../helpers/workdir.js';

describe('fetching image versions from an origin', () => {
  let dir: string;
  let originDir: string;
  let server: Server;
  let url: string;
  let requests: string[];
  /** path -> replacement bytes (a corrupted origin) */
  let tamper: Map<string, Buffer>;

  beforeEach(async () => {
    dir = await makeWorkDir('origin');
    originDir = path.join(dir, 'origin');
    requests = [];
    tamper = new Map();
    await addRecipe(originDir, 'bee');
    await addVersion(originDir, { name: 'bee', version: '1.0', files: { vmlinuz: Buffer.alloc(300_000, 1), 'initrd.img': Buffer.alloc(500_000, 2) } });
    await addVersion(originDir, { name: 'bee', version: '2.0', current: true, files: { vmlinuz: Buffer.alloc(310_000, 3), 'initrd.img': Buffer.alloc(510_000, 4) } });
    server = createServer((req, res) => {
      const rel = decodeURIComponent((req.url ?? '/').split('?')[0] as string).replace(/^\/images\//, '');
      requests.push(rel);
      const t = tamper.get(rel);
      if (t) {
        res.end(t);
        return;
      }
      const file = path.join(originDir, rel);
      if (!file.startsWith(originDir) || !existsSync(file)) {
        res.statusCode = 404;
        res.end('not found');
        return;
      }
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/images`;
  });

  afterEach(async () => {
    await new Promise((r) => server.close(r));
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('brings a version whole and verified, with its marker; two requests make one fetch', async () => {
    const local = new ImageCatalog(path.join(dir, 'local'));
    const o = new ImageOrigin(url, local);
    const [a, b] = await Promise.all([o.fetchVersion('bee', '1.0'), o.fetchVersion('bee', '1.0')]);
    expect(a).toBe(b);
    expect(a.bytes).toBe(800_000);
    expect(requests.filter((r) => r === 'bee/1.0/vmlinuz')).toHaveLength(1);
    expect(local.hasVersion('bee', '1.0')).toBe(true);
    expect(await fs.readFile(path.join(local.dir, 'bee/1.0/vmlinuz'))).toEqual(Buffer.alloc(300_000, 1));
    expect(existsSync(path.join(local.dir, 'bee/1.0', ORIGIN_MARKER))).toBe(true);
    expect((await local.resolve({ name: 'bee', version: '1.0' })).ok).toBe(true);
    // here already: nothing fetched again
    await o.fetchVersion('bee', '1.0');
    expect(requests.filter((r) => r === 'bee/1.0/manifest.json')).toHaveLength(1);
  });

  it('refuses a file whose bytes differ from the manifest, and leaves nothing of the version', async () => {
    const local = new ImageCatalog(path.join(dir, 'local'));
    const o = new ImageOrigin(url, local);
    const bad = Buffer.alloc(500_000, 2);
    bad[12345] = 9;
    tamper.set('bee/1.0/initrd.img', bad);
    await expect(o.fetchVersion('bee', '1.0')).rejects.toThrow(VerificationError);
    await expect(o.fetchVersion('bee', '1.0')).rejects.toThrow(/initrd\.img: sha256 [0-9a-f]{64} does not match the manifest's/);
    expect(local.hasVersion('bee', '1.0')).toBe(false);
    expect(await fs.readdir(path.join(local.dir, 'bee'))).toEqual([]);
    expect(await local.servePath('images/bee/1.0/vmlinuz')).toBeUndefined();
    // longer than listed: refused while streaming
    tamper.set('bee/1.0/initrd.img', Buffer.alloc(600_000, 2));
    await expect(o.fetchVersion('bee', '1.0')).rejects.toThrow(/more than the 500000 bytes the manifest lists/);
    expect(o.counters).toMatchObject({ fetched: 0, fetchFailures: 3, verifyFailures: 3 });
    tamper.clear();
    await o.fetchVersion('bee', '1.0');
    expect(local.hasVersion('bee', '1.0')).toBe(true);
  });

  it('follows the origin\'s current version', async () => {
    const local = new ImageCatalog(path.join(dir, 'local'));
    const o = new ImageOrigin(url, local);
    expect(await o.follow('bee')).toBe('2.0');
    expect(local.current('bee')).toBe('2.0');
    expect(await o.currentVersion('nope')).toBeNull();
  });

  it('keeps the cache under its limit: least recently used out first, never the current version or one built here', async () => {
    const local = new ImageCatalog(path.join(dir, 'local'));
    await addVersion(local.dir, { name: 'bee', version: '0.9', files: { vmlinuz: Buffer.alloc(900_000, 5), 'initrd.img': Buffer.alloc(10, 6) } }); // built here
    let t = 1_000;
    const o = new ImageOrigin(url, local, undefined, () => t);
    await o.fetchVersion('bee', '1.0');
    await o.follow('bee'); // 2.0, current
    await addVersion(originDir, { name: 'bee', version: '3.0', files: { vmlinuz: Buffer.alloc(100_000, 7), 'initrd.img': Buffer.alloc(100_000, 8) } });
    await o.fetchVersion('bee', '3.0');
    const cache = new ImageCache(local, 1_300_000, () => t);
    cache.touch('bee', '3.0');
    t += 1000;
    cache.touch('bee', '1.0'); // 1.0 used more recently than 3.0
    // fetched: 1.0 (800 kB) + 2.0 (820 kB, current) + 3.0 (200 kB) = 1.82 MB > 1.3 MB: 3.0 goes (least recently used), then 1.0
    const removed = await cache.trim();
    expect(removed.map((r) => r.version)).toEqual(['3.0', '1.0']);
    expect(local.hasVersion('bee', '2.0')).toBe(true);
    expect(local.hasVersion('bee', '0.9')).toBe(true);
    expect(cache.counters.evicted).toBe(2);
    expect(await cache.trim()).toEqual([]); // 820 kB of fetched versions left, the current one
  });
});
