import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileRoot, VirtualFileTable } from '../../src/files/root.js';
import { normalizeRequestPath } from '../../src/files/paths.js';

/** Attempts to leave the root. Each must be refused, whatever the spelling. */
export const ESCAPES: string[] = [
  '..', '../', '../etc/passwd', '../../etc/passwd', '../../../../../../../../etc/passwd',
  '/..', '/../etc/passwd', '//../etc/passwd', '///../../etc/shadow', './../etc/passwd',
  'a/../../etc/passwd', 'a/b/../../../etc/passwd', 'boot/../../etc/passwd', 'boot//../../etc/passwd',
  'pxelinux.cfg/../../etc/passwd', '..\\etc\\passwd', '..\\..\\windows\\win.ini', '\\..\\etc\\passwd',
  'a\\..\\..\\etc\\passwd', '..\\/etc/passwd', '../\\etc/passwd', '.\\..\\etc', 'a/./../../etc/passwd',
  'a/.././../etc', '....//..//..//etc/passwd', '../' + 'a/'.repeat(20) + '../'.repeat(22) + 'etc/passwd',
  'x/../..', 'x/y/z/../../../..', '/x/../../', '..//..//..//etc',
  // control characters and NUL look-alikes
  'etc\npasswd', 'file\r', 'file\t', 'pxelinux.0\x01', '\x7f', '\x1b[31mred', 'a\x00b', 'tab\there',
  'boot/\x08file', 'x\x0bvt', 'x\x0cff', 'x\x1fus',
  // invalid UTF-8 byte sequences (decoded from the wire as latin1)
  '\xff\xfe', 'a\xc3', '\xc0\xaf..\xc0\xafetc', '\xe0\x80\xaf',
  // the root itself
  '', '/', '//', '.', './', '\\', './/./',
  // symlinks that resolve outside the root (set up below)
  'out-link/passwd', 'out-file', 'nested/out-link2', 'loop-a',
];

describe('request path normalisation', () => {
  it.each([
    ['/x', 'x'],
    ['//x', 'x'],
    ['boot//x', 'boot/x'],
    ['boot//boot/isolinux/ldlinux.c32', 'boot/boot/isolinux/ldlinux.c32'],
    ['\\pxelinux.cfg\\default', 'pxelinux.cfg/default'],
    ['./a/./b', 'a/b'],
    ['a/../b', 'b'],
    ['pxelinux.cfg/01-52-54-00-e2-e0-01', 'pxelinux.cfg/01-52-54-00-e2-e0-01'],
    ['f\xc3\xafle', 'fïle'], // UTF-8 bytes on the wire
  ])('maps %j to %j inside the root', (raw, want) => {
    expect(normalizeRequestPath(raw)).toEqual({ ok: true, path: want });
  });
});

describe('FileRoot confinement', () => {
  let base: string;
  let root: FileRoot;

  beforeAll(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'bootd-paths-'));
    const r = path.join(base, 'root');
    await mkdir(path.join(r, 'boot'), { recursive: true });
    await mkdir(path.join(r, 'nested'), { recursive: true });
    await mkdir(path.join(base, 'outside'));
    await writeFile(path.join(base, 'outside', 'passwd'), 'secret');
    await writeFile(path.join(r, 'boot', 'x'), 'inside');
    await writeFile(path.join(r, 'x'), 'top');
    await symlink(path.join(base, 'outside'), path.join(r, 'out-link'));
    await symlink('../outside/passwd', path.join(r, 'out-file'));
    await symlink('../../outside', path.join(r, 'nested', 'out-link2'));
    await symlink('loop-b', path.join(r, 'loop-a'));
    await symlink('loop-a', path.join(r, 'loop-b'));
    await symlink('boot/x', path.join(r, 'in-link'));
    const v = new VirtualFileTable();
    v.set('/pxelinux.cfg/default', 'DEFAULT local\n');
    root = await FileRoot.open(r, [v]);
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const ctx = { peer: { address: '198.18.0.2', port: 1234 } };

  it(`refuses all ${ESCAPES.length} escape attempts with an access violation`, async () => {
    expect(ESCAPES.length).toBeGreaterThanOrEqual(50);
    for (const raw of ESCAPES) {
      const r = await root.resolve(raw, ctx);
      expect(r, `resolving ${JSON.stringify(raw)}`).toMatchObject({ ok: false, failure: 'denied' });
    }
  });

  it('serves files by every spelling that maps into the root', async () => {
    for (const raw of ['/x', '//x', 'x', '\\x', 'boot//x', '/boot/x', 'boot\\x', 'in-link']) {
      expect(await root.resolve(raw, ctx), raw).toMatchObject({ ok: true, kind: 'file' });
    }
  });

  it('answers a missing file with ERROR 1 (PXELINUX walks ten config names)', async () => {
    expect(await root.resolve('pxelinux.cfg/0AD54D81', ctx)).toMatchObject({ ok: false, failure: 'not-found' });
    expect(await root.resolve('x/y', ctx)).toMatchObject({ ok: false, failure: 'not-found' }); // ENOTDIR
  });

  it('refuses directories (not a regular file)', async () => {
    expect(await root.resolve('boot', ctx)).toMatchObject({ ok: false, failure: 'denied', reason: 'not a regular file' });
  });

  it('serves registered virtual files before the disk, by normalised name', async () => {
    const r = await root.resolve('//pxelinux.cfg\\default', ctx);
    expect(r).toMatchObject({ ok: true, kind: 'virtual' });
    if (r.ok && r.kind === 'virtual') expect(r.content.toString()).toBe('DEFAULT local\n');
  });
});
