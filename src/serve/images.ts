/**
 * Wiring of the image origin (--image-origin URL): the fetcher and its
 * cache (src/images/origin.ts), a resolver in front of the catalog that
 * says "wait" for a version on its way, and the loop that keeps the images
 * hosts reference here: at start, after every hosts reload and every
 * `pollMs`, each image hosts name (and the unknown-machine image) follows
 * the origin's current version; a pinned version is fetched once. Only
 * wiring: the decisions are in src/images/origin.ts.
 */
import type { ImageResolver } from '../bootconfig/render.js';
import type { EventSink } from '../events/types.js';
import type { HostDirectory } from '../hosts/loader.js';
import type { ImageRef } from '../hosts/types.js';
import type { ImageCatalog, Resolve } from '../images/catalog.js';
import { ImageCache, ImageOrigin, type Http } from '../images/origin.js';
import type { Logger } from '../log.js';
import type { Clock, TimerHandle } from '../net/clock.js';
import type { StatsRegistry } from '../stats/registry.js';

export interface OriginWiring {
  readonly url: string;
  /** The fetched versions' size limit (least recently used out first). */
  readonly cacheBytes: number;
  /** How often the origin's current versions are looked at (default 60 s). */
  readonly pollMs?: number;
}

export interface OriginDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly events: EventSink;
  readonly stats: StatsRegistry;
  readonly http?: Http;
}

export interface StartedOrigin {
  /** The catalog, with "wait" for versions on their way. */
  readonly resolver: ImageResolver & { servePath(relPath: string): Promise<string | undefined> };
  /** Looks at the origin now (after a hosts reload). */
  readonly sync: () => void;
  readonly stop: () => Promise<void>;
}

/** A failed attempt is not repeated for this long (a host asking every 10 s does not hammer the origin). */
const RETRY_MS = 10_000;

export function startOrigin(c: OriginWiring, deps: OriginDeps, catalog: ImageCatalog, hosts: HostDirectory | null, unknownImage: ImageRef | undefined): StartedOrigin {
  const log = deps.log.child({ svc: 'images' });
  const origin = new ImageOrigin(c.url, catalog, deps.http);
  const cache = new ImageCache(catalog, c.cacheBytes);
  catalog.onServe = (name, version) => cache.touch(name, version);
  const lastFailure = new Map<string, { at: number; error: string }>();
  let stopped = false;
  let timer: TimerHandle | null = null;
  let running: Promise<void> = Promise.resolve();

  deps.stats.register('origin', () => ({ ...origin.counters, evicted: cache.counters.evicted, evictedBytes: cache.counters.evictedBytes }));

  /** One image (pinned or following the origin's current), with its events; never throws. */
  const bring = async (ref: ImageRef): Promise<void> => {
    const key = ref.version === undefined ? ref.name : `${ref.name}@${ref.version}`;
    const t0 = deps.clock.now();
    try {
      const version = ref.version ?? (await origin.currentVersion(ref.name));
      if (version === null) throw new Error(`the image origin has no current version of ${ref.name}`);
      if (catalog.hasVersion(ref.name, version)) {
        if (ref.version === undefined && catalog.current(ref.name) !== version) await catalog.setCurrent(ref.name, version);
        lastFailure.delete(key);
        return;
      }
      deps.events.publish({ type: 'image.fetch', image: ref.name, version, state: 'started' });
      log.info({ image: ref.name, version, origin: c.url }, 'image: fetching from the origin');
      const r = await origin.fetchVersion(ref.name, version);
      if (ref.version === undefined) await catalog.setCurrent(ref.name, version);
      lastFailure.delete(key);
      const ms = Math.round(deps.clock.now() - t0);
      deps.events.publish({ type: 'image.fetch', image: ref.name, version, state: 'finished', bytes: r.bytes, durationMs: ms });
      log.info({ image: ref.name, version, bytes: r.bytes, ms }, 'image: fetched from the origin and verified');
      for (const e of await cache.trim()) {
        deps.events.publish({ type: 'image.fetch', image: e.name, version: e.version, state: 'evicted', bytes: e.bytes });
        log.info({ image: e.name, version: e.version, bytes: e.bytes, cacheBytes: c.cacheBytes }, 'image: removed from the cache (least recently used)');
      }
    } catch (err) {
      const error = (err as Error).message;
      const prev = lastFailure.get(key);
      lastFailure.set(key, { at: deps.clock.now(), error });
      deps.events.publish({ type: 'image.fetch', image: ref.name, version: ref.version ?? null, state: 'failed', error });
      if (prev?.error !== error) log.warn({ image: ref.name, version: ref.version, origin: c.url, err: error }, 'image: fetch from the origin failed; retrying');
    }
  };

  /** Every image hosts reference, one after another (the fetches themselves share by version). */
  const sync = (): void => {
    if (stopped) return;
    const refs = new Map<string, ImageRef>();
    for (const h of hosts?.current.hosts ?? []) if (h.netboot && h.image.name !== 'none') refs.set(h.image.version === undefined ? h.image.name : `${h.image.name}@${h.image.version}`, h.image);
    if (unknownImage) refs.set(unknownImage.version === undefined ? unknownImage.name : `${unknownImage.name}@${unknownImage.version}`, unknownImage);
    running = running.then(async () => {
      for (const ref of refs.values()) if (!stopped) await bring(ref);
    });
  };

  const schedule = (): void => {
    if (stopped) return;
    timer = deps.clock.setTimer(c.pollMs ?? 60_000, () => {
      sync();
      schedule();
    });
  };
  sync();
  schedule();

  const resolver = {
    async resolve(ref: ImageRef): Promise<Resolve> {
      const r = await catalog.resolve(ref);
      if (r.ok) return r;
      // not here: on its way, or asked for now (a failed attempt waits RETRY_MS before the next)
      const key = ref.version === undefined ? ref.name : `${ref.name}@${ref.version}`;
      const failed = lastFailure.get(key);
      if (!origin.fetching(ref.name, ref.version) && (failed === undefined || deps.clock.now() - failed.at > RETRY_MS)) {
        lastFailure.set(key, { at: deps.clock.now(), error: failed?.error ?? 'asked for' });
        running = running.then(() => bring(ref));
      }
      const what = ref.version === undefined ? `image ${ref.name}` : `image ${ref.name}@${ref.version}`;
      const why = failed && failed.error !== 'asked for' ? `; the last try failed: ${failed.error}` : '';
      return { ok: false, reason: `${what} is not here yet, it is being fetched from the image origin ${c.url}${why}`, wait: true };
    },
    servePath: (relPath: string) => catalog.servePath(relPath),
  };

  return {
    resolver,
    sync,
    stop: async () => {
      stopped = true;
      timer?.cancel();
      await running.catch(() => {});
    },
  };
}
