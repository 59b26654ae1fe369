/**
 * Byte sources for read transfers, and the shared file cache.
 *
 * Boot storms are the design case: a hundred machines fetch the same 100 MB
 * initrd at once. The cache reads each file once (asynchronously, off the event
 * loop) and every transfer sends slices of that one Buffer, so memory is one
 * copy and a DATA packet costs no read at all. Files larger than the cache's
 * budget are streamed in 1 MiB chunks with read-ahead instead. docs/performance.md
 * has the measurement that chose this.
 */
import { close, openSync, promises as fs, read, type Stats } from 'node:fs';

export interface BlockSource {
  readonly size: number;
  /** Bytes [start, end). Synchronous when the bytes are in memory. */
  read(start: number, end: number): Buffer | Promise<Buffer>;
  /** The whole file as one Buffer when it is all in memory, else null (not yet loaded, or streamed). */
  whole?(): Buffer | null;
  /** Gives the bytes back to the cache (or closes the file). Idempotent. */
  release(): void;
}

export class BufferSource implements BlockSource {
  constructor(
    private readonly buf: Buffer,
    private readonly onRelease: () => void = () => {},
  ) {}
  private released = false;
  get size(): number {
    return this.buf.length;
  }
  read(start: number, end: number): Buffer {
    return this.buf.subarray(start, end);
  }
  whole(): Buffer {
    return this.buf;
  }
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }
}

export const STREAM_CHUNK_BYTES = 1 << 20;
const STREAM_KEEP_CHUNKS = 4;

/** Streams a file in fixed chunks with one chunk of read-ahead. */
export class StreamSource implements BlockSource {
  private readonly chunks = new Map<number, Promise<Buffer>>();
  private readonly ready = new Map<number, Buffer>();
  private closed = false;

  private constructor(
    private readonly fh: fs.FileHandle,
    readonly size: number,
  ) {}

  static async open(realPath: string): Promise<StreamSource> {
    const fh = await fs.open(realPath, 'r');
    const st = await fh.stat();
    return new StreamSource(fh, st.size);
  }

  read(start: number, end: number): Buffer | Promise<Buffer> {
    const first = Math.floor(start / STREAM_CHUNK_BYTES);
    const last = Math.floor(Math.max(start, end - 1) / STREAM_CHUNK_BYTES);
    // read-ahead: once a transfer is in a chunk, fetch the next one
    if ((last + 1) * STREAM_CHUNK_BYTES < this.size) void this.chunk(last + 1).catch(() => {});
    if (first === last) {
      const c = this.ready.get(first);
      if (c) return c.subarray(start - first * STREAM_CHUNK_BYTES, end - first * STREAM_CHUNK_BYTES);
    }
    return (async () => {
      const parts: Buffer[] = [];
      for (let i = first; i <= last; i++) {
        const c = await this.chunk(i);
        const base = i * STREAM_CHUNK_BYTES;
        parts.push(c.subarray(Math.max(0, start - base), Math.min(c.length, end - base)));
      }
      return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    })();
  }

  private chunk(i: number): Promise<Buffer> {
    let p = this.chunks.get(i);
    if (p) return p;
    if (this.closed) return Promise.reject(new Error('source released'));
    const len = Math.max(0, Math.min(STREAM_CHUNK_BYTES, this.size - i * STREAM_CHUNK_BYTES));
    p = (async () => {
      const buf = Buffer.allocUnsafe(len);
      let off = 0;
      while (off < len) {
        const { bytesRead } = await this.fh.read(buf, off, len - off, i * STREAM_CHUNK_BYTES + off);
        if (bytesRead === 0) break; // file shrank under us: send what is there
        off += bytesRead;
      }
      const b = buf.subarray(0, off);
      this.ready.set(i, b);
      return b;
    })();
    this.chunks.set(i, p);
    // keep the window of chunks small: drop the oldest
    while (this.chunks.size > STREAM_KEEP_CHUNKS) {
      const oldest = Math.min(...this.chunks.keys());
      this.chunks.delete(oldest);
      this.ready.delete(oldest);
    }
    return p;
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunks.clear();
    this.ready.clear();
    void this.fh.close().catch(() => {});
  }
}

/**
 * Bytes of a cache load per read(2): the first small, so the first reply need
 * not wait for more, then 4 MiB (1 MiB reads made a fast client's whole 14 MB
 * take longer: more trips through the thread pool; docs/performance.md, session 9).
 */
const LOAD_FIRST_BYTES = 256 << 10;
const LOAD_CHUNK_BYTES = 4 << 20;

interface CacheEntry {
  readonly key: string;
  readonly path: string;
  /** The whole file once `loaded === bytes`; filled from the front while it loads. */
  readonly buf: Buffer;
  /** Bytes at the front of `buf` already read. */
  loaded: number;
  /** Reads waiting for bytes beyond `loaded`. */
  waiters: { readonly end: number; readonly wake: (err?: Error) => void }[];
  /** The load in progress; null once done (or failed: the entry is then dropped). */
  loading: Promise<void> | null;
  failed: Error | null;
  refs: number;
  lastUsed: number;
  readonly bytes: number;
}

/**
 * One transfer's view of a cache entry: bytes already loaded are returned at
 * once; a read beyond them waits for the load, so the first DATA block or
 * HTTP slice goes out after the first 256 KiB are read, not after the whole
 * kernel (a 14 MB kernel took some 25 ms to read whole: docs/performance.md).
 */
export class CachedSource implements BlockSource {
  private released = false;
  constructor(
    private readonly e: CacheEntry,
    private readonly onRelease: () => void,
  ) {}
  get size(): number {
    return this.e.bytes;
  }
  /** Bytes at the front already in memory: a read that ends there is answered at once. */
  get loaded(): number {
    return this.e.loaded;
  }
  read(start: number, end: number): Buffer | Promise<Buffer> {
    const e = this.e;
    if (end <= e.loaded) return e.buf.subarray(start, end);
    if (e.failed) return Promise.reject(e.failed);
    return new Promise<Buffer>((resolve, reject) => {
      e.waiters.push({ end, wake: (err) => (err ? reject(err) : resolve(e.buf.subarray(start, end))) });
    });
  }
  whole(): Buffer | null {
    return this.e.loaded === this.e.bytes ? this.e.buf : null;
  }
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }
}

export interface FileCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly loads: number;
  readonly streamed: number;
}

/**
 * Whole-file cache shared by concurrent transfers, bounded in bytes. An entry
 * is keyed by device, inode, size and mtime, so a replaced file is read anew
 * while transfers of the old one finish from the old bytes. Entries in use are
 * never evicted; when the budget is full of them, new files are streamed.
 */
export class FileCache {
  private readonly entries = new Map<string, CacheEntry>();
  private bytes = 0;
  private hits = 0;
  private loads = 0;
  private streamed = 0;
  private tick = 0;

  constructor(private readonly maxBytes: number) {}

  stats(): FileCacheStats {
    return { entries: this.entries.size, bytes: this.bytes, hits: this.hits, loads: this.loads, streamed: this.streamed };
  }

  /** The file from the cache, or streamed from disk when it does not fit the budget. */
  async open(realPath: string, stat: Stats): Promise<BlockSource> {
    return (await this.openBuffer(realPath, stat)) ?? StreamSource.open(realPath);
  }

  /**
   * The file from the cache (loading, or loaded); null, without opening
   * anything, when it does not fit the budget (the caller streams it its own
   * way: HTTP pipes a read stream). Rejects when the file cannot be opened.
   */
  async openBuffer(realPath: string, stat: Stats): Promise<CachedSource | null> {
    const key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    let e = this.entries.get(key);
    if (e) {
      this.hits++;
    } else {
      if (stat.size > this.maxBytes || !this.makeRoom(stat.size, realPath)) {
        this.streamed++;
        return null;
      }
      // open(2) on the loop, as the name was resolved (fileroot.ts): a thread-pool
      // round trip here measured 0.2-2.6 ms before the first answer of a boot's
      // every file (docs/performance.md, session 11). The reads stay off the loop.
      const fd = openSync(realPath, 'r');
      this.loads++;
      e = { key, path: realPath, buf: Buffer.allocUnsafe(stat.size), loaded: 0, waiters: [], loading: null, failed: null, refs: 0, lastUsed: 0, bytes: stat.size };
      e.loading = this.load(e, fd);
      this.entries.set(key, e);
      this.bytes += e.bytes;
    }
    const entry = e;
    if (entry.failed) throw entry.failed;
    entry.refs++;
    entry.lastUsed = ++this.tick;
    return new CachedSource(entry, () => {
      entry.refs--;
      entry.lastUsed = ++this.tick;
    });
  }

  /** Fills the entry front to back, waking each read whose bytes have arrived. */
  private async load(e: CacheEntry, fd: number): Promise<void> {
    try {
      while (e.loaded < e.bytes) {
        const want = Math.min(e.loaded === 0 ? LOAD_FIRST_BYTES : LOAD_CHUNK_BYTES, e.bytes - e.loaded);
        const bytesRead = await readAt(fd, e.buf, e.loaded, want, e.loaded);
        // the key holds the size the transfers announced (tsize, Content-Length): a shorter file changed under us
        if (bytesRead === 0) throw new Error(`${e.path} shrank while it was read`);
        e.loaded += bytesRead;
        if (e.waiters.length > 0) {
          const ready = e.waiters.filter((w) => w.end <= e.loaded);
          e.waiters = e.waiters.filter((w) => w.end > e.loaded);
          for (const w of ready) w.wake();
        }
      }
    } catch (err) {
      e.failed = err instanceof Error ? err : new Error(String(err));
      this.drop(e);
      const waiting = e.waiters;
      e.waiters = [];
      for (const w of waiting) w.wake(e.failed);
    } finally {
      e.loading = null;
      await new Promise<void>((done) => close(fd, () => done()));
    }
  }

  /** Evicts unused entries (stale versions of `path` first, then least recently used) until `size` fits. */
  private makeRoom(size: number, path: string): boolean {
    for (const e of this.entries.values()) if (e.path === path && e.refs === 0) this.drop(e);
    if (this.bytes + size <= this.maxBytes) return true;
    const idle = [...this.entries.values()].filter((e) => e.refs === 0 && e.loading === null).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of idle) {
      this.drop(e);
      if (this.bytes + size <= this.maxBytes) return true;
    }
    return this.bytes + size <= this.maxBytes;
  }

  private drop(e: CacheEntry): void {
    if (this.entries.get(e.key) === e) {
      this.entries.delete(e.key);
      this.bytes -= e.bytes;
    }
  }
}

/** pread(2) in the thread pool, as FileHandle.read, for a descriptor opened with openSync. */
function readAt(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}
