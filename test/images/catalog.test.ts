import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/config/yaml-config.js';
import { ImageCatalog } from '../../src/images/catalog.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';
import { makeWorkDir } from '../helpers/workdir.js';

describe('the image catalog', () => {
  let dir: string;
  let cat: ImageCatalog;

  beforeEach(async () => {
    dir = await makeWorkDir('catalog');
    cat = new ImageCatalog(dir);
    await addRecipe(dir, 'bee');
    await addRecipe(dir, 'buildos');
    await addVersion(dir, { name: 'bee', version: '1.0', files: { vmlinuz: 'k1', 'initrd.img': 'i1', 'overlay.img': 'o1' }, current: true });
    await addVersion(dir, { name: 'bee', version: '2.0', files: { vmlinuz: 'k2', 'initrd.img': 'i2', 'overlay.img': 'o2' } });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('knows images by recipe or build, and lists versions and current', () => {
    expect(cat.names()).toEqual(['bee', 'buildos']);
    expect(cat.knows('buildos')).toBe(true);
    expect(cat.knows('nope')).toBe(false);
    expect(cat.versions('bee')).toEqual(['1.0', '2.0']);
    expect(cat.current('bee')).toBe('1.0');
    expect(cat.current('buildos')).toBeNull();
    expect(cat.list()).toEqual([
      {
        name: 'bee',
        recipe: true,
        current: '1.0',
        versions: [
          { version: '1.0', bytes: 6, kernelVersion: '6.1.0-27-cloud-amd64', builtAt: '2026-11-22T10:00:00Z', valid: true, kernelSigned: null },
          { version: '2.0', bytes: 6, kernelVersion: '6.1.0-27-cloud-amd64', builtAt: '2026-11-22T10:00:00Z', valid: true, kernelSigned: null },
        ],
      },
      { name: 'buildos', recipe: true, current: null, versions: [] },
    ]);
  });

  it('resolves current to a concrete version with stable TFTP paths', async () => {
    const r = await cat.resolve({ name: 'bee' });
    expect(r.ok && { v: r.image.version, k: r.image.kernelPath, i: r.image.initrdPaths }).toEqual({
      v: '1.0',
      k: '/images/bee/1.0/vmlinuz',
      i: ['/images/bee/1.0/initrd.img', '/images/bee/1.0/overlay.img'],
    });
  });

  it('keeps giving a pinned version after current moves', async () => {
    await cat.setCurrent('bee', '2.0');
    expect(cat.current('bee')).toBe('2.0');
    const pinned = await cat.resolve({ name: 'bee', version: '1.0' });
    const floating = await cat.resolve({ name: 'bee' });
    expect(pinned.ok && pinned.image.version).toBe('1.0');
    expect(floating.ok && floating.image.version).toBe('2.0');
  });

  it('says why an image cannot be resolved', async () => {
    expect(await cat.resolve({ name: 'buildos' })).toEqual({ ok: false, reason: 'image buildos has no current version (not built yet?)' });
    expect(await cat.resolve({ name: 'nope' })).toEqual({ ok: false, reason: 'image nope does not exist' });
  });

  it('refuses a version whose manifest does not match its folder, with the position', async () => {
    const m = path.join(dir, 'bee', '2.0', 'manifest.json');
    await writeFile(m, (await readFile(m, 'utf8')).replace('"version": "2.0"', '"version": "3.0"'));
    const r = await cat.resolve({ name: 'bee', version: '2.0' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.issues?.map(formatIssue)).toEqual([`${m}:3:14: version: expected "2.0" (the folder it is in), got "3.0"`]);
    await expect(cat.setCurrent('bee', '2.0')).rejects.toThrow('invalid manifest');
  });

  it('serves only files the manifest lists and the manifest itself (an instance following this one as its image origin reads it), under images/<name>/<version>/', async () => {
    await writeFile(path.join(dir, 'bee', '1.0', 'secret.txt'), 'not listed');
    expect(await cat.servePath('images/bee/1.0/initrd.img')).toBe(path.join(dir, 'bee', '1.0', 'initrd.img'));
    expect(await cat.servePath('images/bee/1.0/secret.txt')).toBeUndefined();
    expect(await cat.servePath('images/bee/1.0/manifest.json')).toBe(path.join(dir, 'bee', '1.0', 'manifest.json'));
    // current/ only for the manifest, which names the version; files go by their version's own path
    expect(await cat.servePath('images/bee/current/manifest.json')).toBe(path.join(dir, 'bee', cat.current('bee') as string, 'manifest.json'));
    expect(await cat.servePath('images/bee/current/vmlinuz')).toBeUndefined();
    expect(await cat.servePath('images/bee/1.0/.origin')).toBeUndefined();
    expect(await cat.servePath('images/bee/9.9/vmlinuz')).toBeUndefined();
    expect(await cat.servePath('images/bee/recipe.yaml')).toBeUndefined();
  });

  it('switches current atomically: concurrent readers always see a complete version, never none', async () => {
    const seen = new Set<string>();
    let failures = 0;
    let stop = false;
    const reader = async (): Promise<void> => {
      while (!stop) {
        const r = await cat.resolve({ name: 'bee' });
        if (!r.ok) {
          failures++;
          continue;
        }
        // the set is consistent: kernel and initrds of one version
        const kernel = await readFile(path.join(r.image.dir, r.image.manifest.kernel), 'utf8');
        const initrd = await readFile(path.join(r.image.dir, 'initrd.img'), 'utf8');
        if (kernel.slice(1) !== initrd.slice(1)) failures++;
        seen.add(r.image.version);
      }
    };
    const readers = Array.from({ length: 4 }, reader);
    for (let i = 0; i < 300; i++) await cat.setCurrent('bee', i % 2 === 0 ? '2.0' : '1.0');
    stop = true;
    await Promise.all(readers);
    expect(failures).toBe(0);
    expect([...seen].sort()).toEqual(['1.0', '2.0']);
    expect(cat.current('bee')).toBe('1.0');
  });
});
