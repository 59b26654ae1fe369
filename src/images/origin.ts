/**
 * Image versions fetched from an origin (--image-origin URL): another
 * bootd's HTTP port (`http://peer:8080/images`), or any HTTP server or bucket
 * endpoint that serves the catalog's layout:
 *
 *   <origin>/<name>/current/manifest.json     the version new boots get
 *   <origin>/<name>/<version>/manifest.json   a version's manifest
 *   <origin>/<name>/<version>/<file>          its files, as the manifest lists them
 *
 * A version is fetched into `<catalog>/<name>/.<version>.fetch` and checked
 * file by file against the manifest's sha256 and size as it streams in; only
 * when every file matched is the folder fsync'ed and renamed to
 * `<catalog>/<name>/<version>`, so the catalog (and every host) sees a whole
 * verified version or none: a host never receives a byte that failed
 * verification. A fetched version carries a `.origin` marker; those are the
 * cache, kept under a size limit by removing the least recently used first
 * (never the current version of an image, never a version built here).
 */
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { IMAGE_NAME_RE, VERSION_RE } from '../hosts/schema.js';
import { CURRENT_LINK } from './catalog.js';
import { MANIFEST_FILE, parseManifest, type Manifest } from './manifest.js';

/** The marker of a version that came from the origin (its content: the URL and when). */
export const ORIGIN_MARKER = '.origin';

export interface OriginCatalog {
  readonly dir: string;
  hasVersion(name: string, version: string): boolean;
  current(name: string): string | null;
  setCurrent(name: string, version: string): Promise<void>;
}

export interface FetchResult {
  readonly name: string;
  readonly version: string;
  readonly bytes: number;
  readonly ms: number;
}

/** What goes over the network: `fetch` by default (a test passes its own). */
export type Http = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

export class VerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerificationError';
  }
}

export class ImageOrigin {
  /** Fetches in progress, by name@version: a second request joins the first. */
  private readonly inflight = new Map<string, Promise<FetchResult>>();
  readonly counters = { fetched: 0, fetchFailures: 0, verifyFailures: 0, bytes: 0, evicted: 0 };

  constructor(
    readonly url: string,
    private readonly catalog: OriginCatalog,
    private readonly http: Http = (u, init) => fetch(u, init),
    private readonly now: () => number = Date.now,
  ) {}

  private base(): string {
    return this.url.replace(/\/+$/, '');
  }

  /** The origin's current version of an image; null when it has none (404). */
  async currentVersion(name: string): Promise<string | null> {
    if (!IMAGE_NAME_RE.test(name)) throw new Error(`invalid image name ${name}`);
    const r = await this.http(`${this.base()}/${name}/${CURRENT_LINK}/${MANIFEST_FILE}`);
    if (r.status === 404) return null;
    if (!r.ok) throw new Error(`origin ${this.base()}: ${name}/current/${MANIFEST_FILE}: HTTP ${r.status}`);
    const m = JSON.parse(await r.text()) as { version?: unknown };
    if (typeof m.version !== 'string' || !VERSION_RE.test(m.version)) throw new Error(`origin ${this.base()}: ${name}/current/${MANIFEST_FILE} names no valid version`);
    return m.version;
  }

  /** Fetches a version unless the catalog has it; concurrent calls for one version share one fetch. */
  fetchVersion(name: string, version: string): Promise<FetchResult> {
    if (this.catalog.hasVersion(name, version)) return Promise.resolve({ name, version, bytes: 0, ms: 0 });
    const key = `${name}@${version}`;
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.fetchNow(name, version).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** Is a fetch of this version running? */
  fetching(name: string, version?: string): boolean {
    if (version !== undefined) return this.inflight.has(`${name}@${version}`);
    for (const k of this.inflight.keys()) if (k.startsWith(`${name}@`)) return true;
    return false;
  }

  private async fetchNow(name: string, version: string): Promise<FetchResult> {
    if (!IMAGE_NAME_RE.test(name) || !VERSION_RE.test(version)) throw new Error(`invalid image ${name}@${version}`);
    const t0 = this.now();
    const imageDir = path.join(this.catalog.dir, name);
    const staging = path.join(imageDir, `.${version}.fetch`);
    const final = path.join(imageDir, version);
    await fs.rm(staging, { recursive: true, force: true });
    await fs.mkdir(staging, { recursive: true });
    let bytes = 0;
    try {
      const mr = await this.http(`${this.base()}/${name}/${version}/${MANIFEST_FILE}`);
      if (!mr.ok) throw new Error(`origin ${this.base()}: ${name}/${version}/${MANIFEST_FILE}: HTTP ${mr.status}`);
      const manifestText = await mr.text();
      const parsed = parseManifest(`${this.base()}/${name}/${version}/${MANIFEST_FILE}`, manifestText, { name, version });
      if (!parsed.ok) throw new VerificationError(`origin's manifest of ${name}@${version} is not valid: ${parsed.issues.map((i) => i.message).join('; ')}`);
      const manifest: Manifest = parsed.manifest;
      for (const [file, want] of Object.entries(manifest.files)) {
        if (file.includes('/') || file.startsWith('.') || file === MANIFEST_FILE) throw new VerificationError(`origin's manifest of ${name}@${version} lists ${JSON.stringify(file)}, not a file name`);
        bytes += await this.fetchFile(`${this.base()}/${name}/${version}/${encodeURIComponent(file)}`, path.join(staging, file), want.sha256, want.size, `${name}@${version}/${file}`);
      }
      await fs.writeFile(path.join(staging, MANIFEST_FILE), manifestText);
      await fs.writeFile(path.join(staging, ORIGIN_MARKER), `${JSON.stringify({ origin: this.base(), fetchedAt: new Date(this.now()).toISOString() })}\n`);
      await fsyncDir(staging);
      // published whole: the catalog sees the version only once every file matched
      await fs.rename(staging, final);
      await fsyncDir(imageDir);
      this.counters.fetched++;
      this.counters.bytes += bytes;
      return { name, version, bytes, ms: this.now() - t0 };
    } catch (err) {
      this.counters.fetchFailures++;
      if (err instanceof VerificationError) this.counters.verifyFailures++;
      await fs.rm(staging, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
  }

  /** One file, hashed as it streams to disk; a wrong size or sha256 fails before anything is published. */
  private async fetchFile(url: string, to: string, sha256: string, size: number, what: string): Promise<number> {
    const r = await this.http(url);
    if (!r.ok || r.body === null) throw new Error(`origin: ${what}: HTTP ${r.status}`);
    const hash = createHash('sha256');
    let got = 0;
    const check = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        got += chunk.length;
        if (got > size) {
          cb(new VerificationError(`${what}: more than the ${size} bytes the manifest lists`));
          return;
        }
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    const out = createWriteStream(to, { mode: 0o644 });
    await pipeline(Readable.fromWeb(r.body as import('node:stream/web').ReadableStream<Uint8Array>), check, out);
    if (got !== size) throw new VerificationError(`${what}: ${got} bytes, the manifest lists ${size}`);
    const digest = hash.digest('hex');
    if (digest !== sha256) throw new VerificationError(`${what}: sha256 ${digest} does not match the manifest's ${sha256}`);
    const fh = await fs.open(to, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    return got;
  }

  /**
   * Makes the origin's current version of `name` the local current one,
   * fetching it first; returns it, or null when the origin has none.
   */
  async follow(name: string): Promise<string | null> {
    const v = await this.currentVersion(name);
    if (v === null) return null;
    await this.fetchVersion(name, v);
    if (this.catalog.current(name) !== v) await this.catalog.setCurrent(name, v);
    return v;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The cache of fetched versions, kept under `maxBytes`: the least recently
 * used go first. Use is what hosts fetched (`touch` on every served file of
 * a version); a version not used since bootd started counts from when it
 * was fetched. The current version of each image and versions built here
 * (no `.origin` marker) are never removed.
 */
export class ImageCache {
  private readonly used = new Map<string, number>();
  readonly counters = { evicted: 0, evictedBytes: 0 };

  constructor(
    private readonly catalog: OriginCatalog,
    readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A version's file was served. */
  touch(name: string, version: string): void {
    this.used.set(`${name}@${version}`, this.now());
  }

  /** Removes least recently used fetched versions until the cache fits; returns what it removed. */
  async trim(): Promise<{ name: string; version: string; bytes: number }[]> {
    const entries: { name: string; version: string; bytes: number; lastUse: number; dir: string }[] = [];
    for (const name of await fs.readdir(this.catalog.dir).catch(() => [] as string[])) {
      if (!IMAGE_NAME_RE.test(name)) continue;
      const current = this.catalog.current(name);
      for (const version of await fs.readdir(path.join(this.catalog.dir, name)).catch(() => [] as string[])) {
        if (!VERSION_RE.test(version)) continue;
        const dir = path.join(this.catalog.dir, name, version);
        const marker = await fs.stat(path.join(dir, ORIGIN_MARKER)).catch(() => null);
        if (!marker) continue; // built here: not the cache's
        let bytes = 0;
        for (const f of await fs.readdir(dir)) bytes += (await fs.stat(path.join(dir, f)).catch(() => null))?.size ?? 0;
        const lastUse = this.used.get(`${name}@${version}`) ?? marker.mtimeMs;
        entries.push({ name, version, bytes, lastUse: version === current ? Number.POSITIVE_INFINITY : lastUse, dir });
      }
    }
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    const removed: { name: string; version: string; bytes: number }[] = [];
    for (const e of entries.sort((a, b) => a.lastUse - b.lastUse)) {
      if (total <= this.maxBytes) break;
      if (e.lastUse === Number.POSITIVE_INFINITY) continue; // a current version stays
      // renamed away first: a reader either finds the whole version or none
      const gone = path.join(this.catalog.dir, e.name, `.${e.version}.evicted`);
      await fs.rename(e.dir, gone);
      await fs.rm(gone, { recursive: true, force: true });
      total -= e.bytes;
      this.used.delete(`${e.name}@${e.version}`);
      this.counters.evicted++;
      this.counters.evictedBytes += e.bytes;
      removed.push({ name: e.name, version: e.version, bytes: e.bytes });
    }
    return removed;
  }
}
