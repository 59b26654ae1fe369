import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CachedSource, FileCache, STREAM_CHUNK_BYTES, StreamSource } from '../../src/files/source.js';

let dir: string;
const big = randomBytes(3 * STREAM_CHUNK_BYTES + 12345);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-source-'));
  await writeFile(path.join(dir, 'big.bin'), big);
  await writeFile(path.join(dir, 'a.bin'), randomBytes(1000));
  await writeFile(path.join(dir, 'b.bin'), randomBytes(1000));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(src: { size: number; read(s: number, e: number): Buffer | Promise<Buffer> }, blk: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = 0; off < src.size; off += blk) parts.push(Buffer.from(await src.read(off, Math.min(off + blk, src.size))));
  return Buffer.concat(parts);
}

describe('byte sources', () => {
  it.each([[512], [1468], [65464]])('streams a file across 1 MiB chunk boundaries intact at blksize %i', async (blk) => {
    const s = await StreamSource.open(path.join(dir, 'big.bin'));
    try {
      expect(s.size).toBe(big.length);
      expect((await readAll(s, blk)).equals(big)).toBe(true);
      // going back a window (a retransmission) still works
      const again = await s.read(2 * STREAM_CHUNK_BYTES - 700, 2 * STREAM_CHUNK_BYTES + 700);
      expect(again.equals(big.subarray(2 * STREAM_CHUNK_BYTES - 700, 2 * STREAM_CHUNK_BYTES + 700))).toBe(true);
    } finally {
      s.release();
    }
  });

  it('shares one cached read between concurrent opens of the same file', async () => {
    const cache = new FileCache(64 << 20);
    const p = path.join(dir, 'big.bin');
    const st = await stat(p);
    const [a, b] = await Promise.all([cache.open(p, st), cache.open(p, st)]);
    expect(a).toBeInstanceOf(CachedSource);
    expect(cache.stats()).toMatchObject({ loads: 1, hits: 1, entries: 1 });
    expect((await readAll(a, 1468)).equals(big)).toBe(true);
    a.release();
    b.release();
  });

  it('streams instead of caching when a file exceeds the budget', async () => {
    const cache = new FileCache(1 << 20);
    const p = path.join(dir, 'big.bin');
    const src = await cache.open(p, await stat(p));
    expect(src).toBeInstanceOf(StreamSource);
    expect(cache.stats().streamed).toBe(1);
    src.release();
  });

  it('evicts idle entries, least recently used first, and never one in use', async () => {
    const cache = new FileCache(1500);
    const pa = path.join(dir, 'a.bin');
    const pb = path.join(dir, 'b.bin');
    const a = await cache.open(pa, await stat(pa));
    const b = await cache.open(pb, await stat(pb)); // a is in use: b cannot evict it, so b streams
    expect(b).toBeInstanceOf(StreamSource);
    b.release();
    a.release();
    const b2 = await cache.open(pb, await stat(pb)); // now a is idle and gets evicted
    expect(b2).toBeInstanceOf(CachedSource);
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: 1000 });
    b2.release();
  });

  it('reads a replaced file anew (key includes size and mtime)', async () => {
    const cache = new FileCache(64 << 20);
    const p = path.join(dir, 'a.bin');
    const first = await cache.open(p, await stat(p));
    first.release();
    const fresh = randomBytes(1000);
    await writeFile(p, fresh);
    await utimes(p, new Date(), new Date(Date.now() + 5000));
    const second = await cache.open(p, await stat(p));
    expect((await readAll(second, 512)).equals(fresh)).toBe(true);
    second.release();
  });

  it('serves a file while it loads: the first bytes before the whole file is read, every byte right, in any order', async () => {
    const cache = new FileCache(64 << 20);
    const p = path.join(dir, 'big.bin');
    const st = await stat(p);
    const a = await cache.open(p, st);
    // just opened: the load has not read the tail yet, so a read there waits for it
    const tail = a.read(big.length - 100, big.length);
    expect(tail).toBeInstanceOf(Promise);
    const head = await a.read(0, 512);
    expect(Buffer.from(head).equals(big.subarray(0, 512))).toBe(true);
    expect(Buffer.from(await tail).equals(big.subarray(big.length - 100))).toBe(true);
    // a second transfer joining mid-load shares the one load
    const b = await cache.open(p, st);
    expect(cache.stats()).toMatchObject({ loads: 1, hits: 1 });
    const [ra, rb] = await Promise.all([readAll(a, 1468), readAll(b, 65464)]);
    expect(ra.equals(big) && rb.equals(big)).toBe(true);
    // loaded: reads are synchronous now
    expect(Buffer.isBuffer(b.read(5, 10))).toBe(true);
    a.release();
    b.release();
  });

  it('fails the reads of a file that shrank after its stat, and forgets it', async () => {
    const cache = new FileCache(64 << 20);
    const p = path.join(dir, 'shrinks.bin');
    await writeFile(p, randomBytes(STREAM_CHUNK_BYTES * 2));
    const st = await stat(p); // the size a transfer announced
    await truncate(p, 100_000);
    const src = await cache.open(p, st);
    await expect(readAll(src, 65464)).rejects.toThrow(/shrank/);
    src.release();
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('rejects the open of a file that is gone, and caches nothing', async () => {
    const cache = new FileCache(64 << 20);
    const p = path.join(dir, 'gone.bin');
    await writeFile(p, randomBytes(1000));
    const st = await stat(p);
    await rm(p);
    await expect(cache.open(p, st)).rejects.toThrow(/ENOENT/);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, loads: 0 });
  });
});
