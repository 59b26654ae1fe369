/**
 * The upload policy against hostile and concurrent uploads, on a real folder:
 * the quota shared by uploads in flight, `overwrite: false` under a race,
 * partial uploads swept at start, never counted and never readable under any
 * spelling, and nothing created before the whole path is known to stay in
 * the host's directory.
 */
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/tftp/packet.js';
import type { WriteDecision } from '../../src/tftp/write-transfer.js';
import { FileUploadSink, PARTIAL_PREFIX, UploadError, sweepPartials } from '../../src/uploads/file-sink.js';
import { HostUploadDirs, usageBytes } from '../../src/uploads/host-dirs.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-uploads-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const peer = { address: '198.18.0.50', port: 1234 };
const policy = (quota = 1000, overwrite = true): HostUploadDirs => new HostUploadDirs(path.join(dir, 'up'), { whoIs: (a) => (a === peer.address ? 'web' : undefined), quotaBytes: () => quota, overwrite: () => overwrite });
const granted = (d: WriteDecision): Extract<WriteDecision, { ok: true }> => {
  if (!d.ok) throw new Error(`refused: ${d.reason}`);
  return d;
};

describe('uploads: the quota holds for uploads in flight together', () => {
  it('reserves as bytes arrive: two uploads told 1000 bytes each cannot store 1200 between them', async () => {
    await mkdir(path.join(dir, 'up'));
    const p = policy(1000);
    const a = granted(await p.authorize(peer, 'a.bin'));
    const b = granted(await p.authorize(peer, 'b.bin'));
    expect([a.maxBytes, b.maxBytes]).toEqual([1000, 1000]);
    await a.sink.write(0, Buffer.alloc(600));
    await expect(b.sink.write(0, Buffer.alloc(600))).rejects.toMatchObject({ tftpCode: ErrorCode.DISK_FULL });
    await b.sink.discard();
    await a.sink.commit();
    const c = granted(await p.authorize(peer, 'c.bin'));
    expect(c.maxBytes).toBe(400);
    await expect(c.sink.write(0, Buffer.alloc(401))).rejects.toBeInstanceOf(UploadError);
    await c.sink.discard();
    expect(await usageBytes(path.join(dir, 'up', 'web'))).toBe(600);
  });

  it('refuses a new upload at once while reservations hold the whole quota', async () => {
    await mkdir(path.join(dir, 'up'));
    const p = policy(100);
    const a = granted(await p.authorize(peer, 'a.bin'));
    await a.sink.write(0, Buffer.alloc(100));
    expect(await p.authorize(peer, 'b.bin')).toMatchObject({ ok: false, code: ErrorCode.DISK_FULL });
    await a.sink.discard();
    expect((await p.authorize(peer, 'b.bin')).ok).toBe(true);
  });
});

describe('uploads: overwrite false under a race', () => {
  it('refuses a second upload of a name being uploaded, and lets exactly one of two racers land', async () => {
    await mkdir(path.join(dir, 'up'));
    const p = policy(1 << 20, false);
    const a = granted(await p.authorize(peer, 'r.txt'));
    expect(await p.authorize(peer, 'r.txt')).toMatchObject({ ok: false, code: ErrorCode.FILE_EXISTS });
    // another writer (a second bootd on the same folder, an operator) puts the name in place first
    const target = path.join(dir, 'up', 'web', 'r.txt');
    const other = new FileUploadSink(target, { exclusive: true });
    await other.write(0, Buffer.from('first'));
    await a.sink.write(0, Buffer.from('second'));
    await other.commit();
    await expect(a.sink.commit()).rejects.toMatchObject({ tftpCode: ErrorCode.FILE_EXISTS });
    await a.sink.discard();
    expect((await readdir(path.join(dir, 'up', 'web'))).sort()).toEqual(['r.txt']);
    expect(await p.authorize(peer, 'r.txt')).toMatchObject({ ok: false, code: ErrorCode.FILE_EXISTS });
  });
});

describe('uploads: partial files', () => {
  it('are removed at start, and never count against the quota', async () => {
    const own = path.join(dir, 'up', 'web');
    await mkdir(path.join(own, 'sub'), { recursive: true });
    await writeFile(path.join(own, `${PARTIAL_PREFIX}0a1b2c-report.json`), Buffer.alloc(5000));
    await writeFile(path.join(own, 'sub', `${PARTIAL_PREFIX}3d4e5f-log.txt`), Buffer.alloc(5000));
    await writeFile(path.join(own, 'kept.txt'), 'x');
    expect(await usageBytes(own)).toBe(1);
    expect(await sweepPartials(path.join(dir, 'up'))).toBe(2);
    expect((await readdir(own)).sort()).toEqual(['kept.txt', 'sub']);
    expect(await readdir(path.join(own, 'sub'))).toEqual([]);
  });

  it.each([
    ['.upload-0a1b2c-report.json'],
    ['\\.upload-0a1b2c-report.json'],
    ['//.upload-0a1b2c-report.json'],
    ['./.upload-0a1b2c-report.json'],
    ['sub/../.upload-0a1b2c-report.json'],
    ['web/.upload-0a1b2c-report.json'],
    ['.UPLOAD-0a1b2c-report.json'],
    ['.Upload-0a1b2c-report.json/x'],
  ])('is invisible as %s', async (name) => {
    const own = path.join(dir, 'up', 'web');
    await mkdir(own, { recursive: true });
    await writeFile(path.join(own, '.upload-0a1b2c-report.json'), 'half');
    await writeFile(path.join(own, '.UPLOAD-0a1b2c-report.json'), 'half');
    const r = await policy().resolve(name, { peer });
    expect(r).toMatchObject({ ok: false, failure: 'not-found', reason: 'upload in progress' });
    expect(await policy().authorize(peer, name)).toMatchObject({ ok: false, code: ErrorCode.ACCESS_VIOLATION });
  });
});

describe('uploads: confinement before creation', () => {
  it('creates nothing when a symlink on the path leads out, not even the directories before it', async () => {
    const own = path.join(dir, 'up', 'web');
    const outside = path.join(dir, 'outside');
    await mkdir(own, { recursive: true });
    await mkdir(outside);
    await symlink(outside, path.join(own, 'esc'));
    expect(await policy().authorize(peer, 'esc/new/deep/file.txt')).toMatchObject({ ok: false, reason: 'path leaves the host directory' });
    expect(await readdir(outside)).toEqual([]);
    expect(await policy().authorize(peer, 'a/b/esc/x')).toMatchObject({ ok: true }); // a new path of plain directories is made
    expect((await readdir(own)).sort()).toEqual(['a', 'esc']);
  });

  it('does not create the host directory on a read', async () => {
    await mkdir(path.join(dir, 'up'));
    expect(await policy().resolve('nothing.txt', { peer })).toMatchObject({ ok: false, failure: 'not-found' });
    expect(await readdir(path.join(dir, 'up'))).toEqual([]);
  });

  it('follows a symlink that stays inside the host directory', async () => {
    const own = path.join(dir, 'up', 'web');
    await mkdir(path.join(own, 'real'), { recursive: true });
    await symlink(path.join(own, 'real'), path.join(own, 'alias'));
    const d = granted(await policy().authorize(peer, 'alias/f.txt'));
    await d.sink.write(0, Buffer.from('ok'));
    await d.sink.commit();
    expect(await readdir(path.join(own, 'real'))).toEqual(['f.txt']);
  });
});
