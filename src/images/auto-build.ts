/**
 * Builds, inside a running `bootd serve`, the images that hosts/*.yaml
 * reference but that have never been built (opt-in: --build-missing;
 * building buildos downloads packages and runs debootstrap for minutes, so
 * an appliance does it only when told to). Same builder as
 * `bootd images build`; one build at a time; the per-image lock keeps it
 * from racing a CLI build. A failed build is not retried until its recipe
 * folder changes, so a broken recipe does not rebuild in a loop.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { NO_EVENTS, type EventSink } from '../events/types.js';
import { BuildRefused, buildImage, type BuildOptions, type BuildResult } from './builder.js';
import { silentProgress, type BuildProgress } from './progress.js';
import type { ImageCatalog } from './catalog.js';

export type Builder = (opts: BuildOptions) => Promise<BuildResult>;

export class MissingImageBuilder {
  private readonly queue: string[] = [];
  private running: string | null = null;
  /** Image name -> recipe mtime at its failed build. */
  private readonly failed = new Map<string, number>();
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly catalog: ImageCatalog,
    private readonly base: Omit<BuildOptions, 'name' | 'imagesDir'>,
    private readonly log: Logger,
    private readonly build: Builder = buildImage,
    /** Where builds are published as they start, finish or fail. */
    private readonly events: EventSink = NO_EVENTS,
  ) {}

  /** Queues every named image that has a recipe and no current version. */
  request(names: Iterable<string>): void {
    for (const name of new Set(names)) {
      if (this.running === name || this.queue.includes(name)) continue;
      if (this.catalog.current(name) !== null || !this.catalog.knows(name)) continue;
      const mtime = this.recipeMtime(name);
      if (mtime !== null && this.failed.get(name) === mtime) continue;
      this.queue.push(name);
      this.log.info({ svc: 'images', image: name }, 'image referenced by a host is not built; building it');
    }
    if (this.running === null && this.queue.length > 0) this.idle = this.drain();
  }

  /** Resolves when the queue is empty (tests, shutdown). */
  whenIdle(): Promise<void> {
    return this.idle;
  }

  private recipeMtime(name: string): number | null {
    try {
      return statSync(path.join(this.catalog.dir, name, 'recipe.yaml')).mtimeMs;
    } catch {
      return null;
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const name = this.queue.shift() as string;
      this.running = name;
      const t0 = Date.now();
      this.events.publish({ type: 'image.build', image: name, state: 'started' });
      try {
        const r = await this.build({ ...this.base, imagesDir: this.catalog.dir, name, progress: stepEvents(name, this.events, this.base.progress ?? silentProgress) });
        this.failed.delete(name);
        this.events.publish({ type: 'image.build', image: name, state: 'finished', version: r.version, durationMs: Date.now() - t0 });
        this.log.info({ svc: 'images', image: name, version: r.version, seconds: Math.round((Date.now() - t0) / 100) / 10, log: r.logFile }, 'image built; hosts that use it boot it now');
      } catch (err) {
        const mtime = this.recipeMtime(name);
        if (mtime !== null) this.failed.set(name, mtime);
        this.events.publish({ type: 'image.build', image: name, state: 'failed', durationMs: Date.now() - t0, error: (err as Error).message });
        const level = err instanceof BuildRefused ? 'warn' : 'error';
        this.log[level]({ svc: 'images', image: name }, `image build failed (not retried until the recipe changes): ${(err as Error).message}`);
      } finally {
        this.running = null;
      }
    }
  }
}

/** The build's progress, with each step also published as an `image.build` event. */
function stepEvents(image: string, events: EventSink, inner: BuildProgress): BuildProgress {
  return {
    step: (index, total, step) => {
      events.publish({ type: 'image.build', image, state: 'step', step, index, total });
      inner.step(index, total, step);
    },
    count: (done, total, unit) => inner.count(done, total, unit),
    detail: (text) => inner.detail(text),
    stepDone: (ms) => inner.stepDone(ms),
    stepFailed: (ms) => inner.stepFailed(ms),
  };
}
