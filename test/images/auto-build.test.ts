import type { BootEvent } from '../../src/events/types.js';
import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MissingImageBuilder } from '../../src/images/auto-build.js';
import type { BuildOptions, BuildResult } from '../../src/images/builder.js';
import { ImageCatalog } from '../../src/images/catalog.js';
import { silentLogger } from '../../src/log.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';

describe('serve builds images that hosts reference but that were never built', () => {
  let dir: string;
  let catalog: ImageCatalog;
  let calls: string[];
  let fail: boolean;
  const builder = async (o: BuildOptions): Promise<BuildResult> => {
    calls.push(o.name);
    o.progress?.step(1, 2, 'resolve');
    if (fail) throw new Error('step "root" failed');
    o.progress?.step(2, 2, 'root');
    await addVersion(dir, { name: o.name, version: '20261122.100000', current: true });
    return { name: o.name, version: '20261122.100000' } as BuildResult;
  };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bootd-autobuild-'));
    catalog = new ImageCatalog(dir);
    calls = [];
    fail = false;
    await addRecipe(dir, 'bee');
    await addRecipe(dir, 'buildos');
    await addVersion(dir, { name: 'buildos', version: '1', current: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('builds only images with a recipe and no current version, once each, publishing its steps and result', async () => {
    const events: BootEvent[] = [];
    const b = new MissingImageBuilder(catalog, { stateDir: path.join(dir, 'state') }, silentLogger, builder, { publish: (e) => void events.push(e) });
    b.request(['bee', 'bee', 'buildos', 'nosuch']);
    b.request(['bee']); // already queued or running
    await b.whenIdle();
    expect(calls).toEqual(['bee']);
    expect(catalog.current('bee')).toBe('20261122.100000');
    b.request(['bee']);
    await b.whenIdle();
    expect(calls).toEqual(['bee']);
    expect(events.map((e) => (e.type === 'image.build' ? `${e.image} ${e.state} ${e.step ?? e.version ?? ''}` : e.type))).toEqual(['bee started ', 'bee step resolve', 'bee step root', 'bee finished 20261122.100000']);
  });

  it('a failed build is not retried until the recipe changes', async () => {
    fail = true;
    const events: BootEvent[] = [];
    const b = new MissingImageBuilder(catalog, { stateDir: path.join(dir, 'state') }, silentLogger, builder, { publish: (e) => void events.push(e) });
    b.request(['bee']);
    await b.whenIdle();
    expect(events.at(-1)).toMatchObject({ type: 'image.build', image: 'bee', state: 'failed', error: 'step "root" failed' });
    b.request(['bee']);
    await b.whenIdle();
    expect(calls).toEqual(['bee']);
    const later = new Date(Date.now() + 5000);
    utimesSync(path.join(dir, 'bee', 'recipe.yaml'), later, later);
    fail = false;
    b.request(['bee']);
    await b.whenIdle();
    expect(calls).toEqual(['bee', 'bee']);
    expect(catalog.current('bee')).not.toBeNull();
  });
});
