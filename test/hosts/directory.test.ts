import { mkdir, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/config/yaml-config.js';
import { assemble, type ImageIndex } from '../../src/hosts/directory.js';
import { HostDirectory, loadHosts } from '../../src/hosts/loader.js';
import { parseHostFile, type HostFileResult } from '../../src/hosts/schema.js';
import type { Host } from '../../src/hosts/types.js';
import { systemClock } from '../../src/net/clock.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const images: ImageIndex = {
  knows: (n) => n === 'bee' || n === 'buildos',
  hasVersion: (n, v) => n === 'bee' && v === '1.0',
};

function files(entries: Record<string, string>): Map<string, HostFileResult> {
  return new Map(Object.entries(entries).map(([name, text]) => [`hosts/${name}.yaml`, parseHostFile(`hosts/${name}.yaml`, name, text)]));
}

describe('the host set across files', () => {
  it('reports a duplicate MAC naming both files, and keeps serving the first', () => {
    const a = assemble(files({ a: 'mac: 52:54:00:00:00:01\nimage: bee\n', b: 'ip: 198.18.0.9\nmac: 52:54:00:00:00:01\nimage: bee\n' }), new Map(), images);
    expect(a.issues.map(formatIssue)).toEqual(['hosts/b.yaml:2:6: mac: duplicate MAC 52:54:00:00:00:01: also in hosts/a.yaml']);
    expect(a.set.byMac('52:54:00:00:00:01')?.name).toBe('a');
    expect(a.set.byName('b')).toBeUndefined();
  });

  it('reports a duplicate IP naming both files', () => {
    const a = assemble(files({ a: 'mac: 52:54:00:00:00:01\nip: 198.18.0.9\nimage: bee\n', b: 'mac: 52:54:00:00:00:02\nimage: bee\nip: 198.18.0.9\n' }), new Map(), images);
    expect(a.issues.map(formatIssue)).toEqual(['hosts/b.yaml:3:5: ip: duplicate IP 198.18.0.9: also in hosts/a.yaml']);
  });

  it('reports a MAC shared through a macs list at its list position', () => {
    const a = assemble(files({ a: 'mac: 52:54:00:00:00:01\nimage: bee\n', b: 'macs: [52:54:00:00:00:03, 52:54:00:00:00:01]\nimage: bee\n' }), new Map(), images);
    expect(a.issues.map(formatIssue)).toEqual(['hosts/b.yaml:1:27: macs[1]: duplicate MAC 52:54:00:00:00:01: also in hosts/a.yaml']);
  });

  it.each([
    ['an image with no recipe and no build', 'image: nope', 'hosts/a.yaml:2:8: image: image nope does not exist (no recipe and no built version)'],
    ['a pinned version that was never built', 'image: bee@2.0', 'hosts/a.yaml:2:8: image: image bee@2.0 does not exist (image bee has no version 2.0)'],
  ])('reports %s', (_what, line, message) => {
    const a = assemble(files({ a: `mac: 52:54:00:00:00:01\n${line}\n` }), new Map(), images);
    expect(a.issues.map(formatIssue)).toEqual([message]);
    expect(a.set.size).toBe(0);
  });

  it('accepts an image that has a recipe but no build yet, and a pinned version that exists', () => {
    const a = assemble(files({ a: 'mac: 52:54:00:00:00:01\nimage: buildos\n', b: 'mac: 52:54:00:00:00:02\nimage: bee@1.0\n' }), new Map(), images);
    expect(a.issues).toEqual([]);
    expect(a.set.size).toBe(2);
  });

  it('keeps the last good version of a file that breaks, and marks it stale', () => {
    const first = assemble(files({ a: 'mac: 52:54:00:00:00:01\nimage: bee\n', b: 'mac: 52:54:00:00:00:02\nimage: bee\n' }), new Map(), images);
    const prev = new Map<string, Host>(first.files.flatMap((f) => (f.host ? [[f.file, f.host]] : [])));
    const second = assemble(files({ a: 'mac: 52:54:00:00:00:01\nimage: [oops\n', b: 'mac: 52:54:00:00:00:02\nimage: buildos\n' }), prev, images);
    expect(second.files.find((f) => f.file === 'hosts/a.yaml')).toMatchObject({ stale: true, host: { image: { name: 'bee' } } });
    expect(second.set.byName('b')?.image).toEqual({ name: 'buildos' });
    expect(second.issues).toHaveLength(1);
  });

  it('rejects the edited file, not the unchanged one, when an edit steals a MAC', () => {
    const first = assemble(files({ a: 'mac: 52:54:00:00:00:01\nimage: bee\n', z: 'mac: 52:54:00:00:00:09\nimage: bee\n' }), new Map(), images);
    const prev = new Map<string, Host>(first.files.flatMap((f) => (f.host ? [[f.file, f.host]] : [])));
    // "a" is edited to take z's MAC; z did not change, so z keeps it and a keeps its old version
    const second = assemble(files({ a: 'mac: 52:54:00:00:00:09\nimage: bee\n', z: 'mac: 52:54:00:00:00:09\nimage: bee\n' }), prev, images);
    expect(second.issues.map(formatIssue)).toEqual(['hosts/a.yaml:1:6: mac: duplicate MAC 52:54:00:00:00:09: also in hosts/z.yaml']);
    expect(second.set.byMac('52:54:00:00:00:09')?.name).toBe('z');
    expect(second.set.byMac('52:54:00:00:00:01')?.name).toBe('a');
  });
});

describe('HostDirectory on a real folder', () => {
  let dir: string;
  let abort: AbortController;

  beforeEach(async () => {
    dir = path.join(await makeWorkDir('hosts'), 'hosts');
    await mkdir(dir);
    abort = new AbortController();
  });
  afterEach(async () => {
    abort.abort();
    await rm(path.dirname(dir), { recursive: true, force: true });
  });

  it('ignores files that are not host files', async () => {
    await writeFile(path.join(dir, 'a.yaml'), 'mac: 52:54:00:00:00:01\nimage: bee\n');
    await writeFile(path.join(dir, 'README.md'), '# not a host\n');
    await writeFile(path.join(dir, '.a.yaml.swp'), 'junk');
    await writeFile(path.join(dir, 'b.yml'), 'mac: 52:54:00:00:00:02\nimage: bee\n');
    const a = await loadHosts(dir, images);
    expect(a.issues).toEqual([]);
    expect(a.set.hosts.map((h) => h.name)).toEqual(['a', 'b']);
  });

  it('picks up an edit, keeps the old version while the file is broken, and drops a deleted file', async () => {
    const file = path.join(dir, 'web.yaml');
    await writeFile(file, 'mac: 52:54:00:00:00:01\nimage: bee\n');
    const reloads: number[] = [];
    const d = new HostDirectory(dir, { clock: systemClock, images, debounceMs: 50, onReload: (a) => reloads.push(a.issues.length) });
    await d.reload();
    d.watch(abort.signal);
    expect(d.current.byName('web')?.image.name).toBe('bee');

    // an editor's atomic save: write a temporary file, rename it over the original
    await writeFile(`${file}.tmp`, 'mac: 52:54:00:00:00:01\nimage: buildos\n');
    await rename(`${file}.tmp`, file);
    await until(() => d.current.byName('web')?.image.name === 'buildos', 5000, 'edit applied');

    await writeFile(file, 'mac: 52:54:00:00:00:01\nimage: buildos\nnetboot: perhaps\n');
    await until(() => d.issues.length === 1, 5000, 'broken file reported');
    expect(formatIssue(d.issues[0] as (typeof d.issues)[number])).toBe(`${file}:3:10: netboot: expected true or false, got "perhaps"`);
    expect(d.current.byName('web')?.image.name).toBe('buildos');

    await rm(file);
    await until(() => d.current.size === 0, 5000, 'deleted host dropped');
    expect(d.issues).toEqual([]);
    expect(reloads.length).toBeGreaterThanOrEqual(3);
  });

  it('after one edit among many reads that file alone, and a full reload reads only files that changed', async () => {
    for (let i = 0; i < 200; i++) await writeFile(path.join(dir, `h${i}.yaml`), `mac: 52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}\nimage: bee\n`);
    const changes: { updated: string[]; added: string[]; removed: string[] }[] = [];
    const d = new HostDirectory(dir, { clock: systemClock, images, debounceMs: 20, onReload: (_a, c) => changes.push(c) });
    await d.reload();
    d.watch(abort.signal);
    expect(d.filesParsed).toBe(200);
    await writeFile(path.join(dir, 'h7.yaml'), 'mac: 52:54:00:00:00:07\nimage: buildos\n');
    await until(() => d.current.byName('h7')?.image.name === 'buildos', 5000, 'the edit live');
    expect(d.filesParsed).toBe(201);
    expect(changes.at(-1)).toMatchObject({ updated: ['h7'], added: [], removed: [] });
    // a MAC taken from another file by an edit: the edited file is refused, and settled when it is edited back
    await writeFile(path.join(dir, 'h8.yaml'), 'mac: 52:54:00:00:00:07\nimage: bee\n');
    await until(() => d.issues.length === 1, 5000, 'the duplicate reported');
    expect(d.current.byMac('52:54:00:00:00:07')?.name).toBe('h7');
    expect(d.current.byName('h8')?.macs).toEqual(['52:54:00:00:00:08']); // its last good version serves, stale
    await writeFile(path.join(dir, 'h8.yaml'), 'mac: 52:54:00:00:0a:08\nimage: bee\n');
    await until(() => d.issues.length === 0 && d.current.byMac('52:54:00:00:0a:08')?.name === 'h8', 5000, 'the duplicate settled');
    expect(d.current.byMac('52:54:00:00:00:08')).toBeUndefined();
    // a new file and a removed one
    await writeFile(path.join(dir, 'new.yaml'), 'mac: 52:54:00:00:09:99\nimage: bee\n');
    await rm(path.join(dir, 'h0.yaml'));
    await until(() => d.current.byName('new') !== undefined && d.current.byName('h0') === undefined, 5000, 'added and removed');
    expect(d.current.size).toBe(200);
    const before = d.filesParsed;
    await d.reload(); // SIGHUP: reads the folder, parses nothing that did not change
    expect(d.filesParsed).toBe(before);
  });

  it('refuses a YAML alias bomb with an issue and keeps serving the other files', async () => {
    await writeFile(path.join(dir, 'a.yaml'), 'mac: 52:54:00:00:00:01\nimage: bee\n');
    const lol = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) lol.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    await writeFile(path.join(dir, 'bomb.yaml'), lol.join('\n') + '\n');
    const a = await loadHosts(dir, images);
    expect(a.set.hosts.map((h) => h.name)).toEqual(['a']);
    expect(a.issues).toHaveLength(1);
    expect(a.issues[0]?.message).toMatch(/^not accepted: .*alias/i);
  });

  it('refuses files far larger than a host file by their size, unread, and bounds the issues of a large bad one', async () => {
    await writeFile(path.join(dir, 'huge.yaml'), Array.from({ length: 300_000 }, (_, i) => `k${i}: ${i}`).join('\n'));
    await writeFile(path.join(dir, 'many.yaml'), Array.from({ length: 1_200 }, (_, i) => `k${i}: ${i}`).join('\n'));
    const a = await loadHosts(dir, images);
    const huge = a.issues.filter((i) => i.file.endsWith('huge.yaml'));
    expect(huge).toHaveLength(1);
    expect(huge[0]?.message).toMatch(/^\d+ bytes: larger than 16384 bytes, not read/);
    const many = a.issues.filter((i) => i.file.endsWith('many.yaml'));
    expect(many.length).toBeLessThanOrEqual(22);
    expect(many.at(-1)?.message).toMatch(/more/);
  });

  it('reports a duplicate key at its second place', async () => {
    await writeFile(path.join(dir, 'a.yaml'), 'mac: 52:54:00:00:00:01\nimage: bee\nimage: buildos\n');
    const a = await loadHosts(dir, images);
    expect(a.issues.map(formatIssue)).toEqual([`${path.join(dir, 'a.yaml')}:3:1: image: duplicate key "image"`]);
  });

  it('follows a symlinked host file inside the folder, refuses one that leads outside (the last good version keeps serving)', async () => {
    await mkdir(path.join(dir, 'store'));
    await writeFile(path.join(dir, 'store', 'in.txt'), 'mac: 52:54:00:00:00:07\nimage: bee\n');
    await symlink(path.join(dir, 'store', 'in.txt'), path.join(dir, 'linked.yaml'));
    const outside = path.join(path.dirname(dir), 'outside.yaml');
    await writeFile(outside, 'mac: 52:54:00:00:00:08\nimage: bee\n');
    const file = path.join(dir, 'web.yaml');
    await writeFile(file, 'mac: 52:54:00:00:00:09\nimage: bee\n');
    const d = new HostDirectory(dir, { clock: systemClock, images, debounceMs: 50 });
    await d.reload();
    expect(d.current.hosts.map((h) => h.name).sort()).toEqual(['linked', 'web']);
    // web.yaml replaced by a symlink to a file outside the folder
    await rm(file);
    await symlink(outside, file);
    await d.reload();
    expect(d.issues.map((i) => i.message)).toEqual([`symlink to ${await realpath(outside)}, outside the hosts folder: not read`]);
    expect(d.current.byName('web')?.macs).toEqual(['52:54:00:00:00:09']); // the last good version
  });

  it('keeps serving the last good hosts when the folder is renamed away or removed, and picks it up again when it is back', async () => {
    await writeFile(path.join(dir, 'a.yaml'), 'mac: 52:54:00:00:00:01\nimage: bee\n');
    const failures: string[] = [];
    const d = new HostDirectory(dir, { clock: systemClock, images, debounceMs: 20, retryMs: 100, onReloadFailed: (err, serving) => failures.push(`${serving}:${err.message}`) });
    await d.reload();
    d.watch(abort.signal);
    const away = `${dir}.away`;
    await rename(dir, away);
    await writeFile(path.join(away, 'b.yaml'), 'mac: 52:54:00:00:00:02\nimage: bee\n'); // an event in the moved folder
    await until(() => failures.length > 0, 5000, 'the failed reload reported');
    expect(failures[0]).toMatch(/^1:.*ENOENT/);
    expect(d.current.hosts.map((h) => h.name)).toEqual(['a']);
    await rename(away, dir); // back, now with b.yaml
    await until(() => d.current.size === 2, 5000, 'the folder read again');
    await writeFile(path.join(dir, 'c.yaml'), 'mac: 52:54:00:00:00:03\nimage: bee\n');
    await until(() => d.current.size === 3, 5000, 'changes seen through a new watcher');
    await rm(dir, { recursive: true });
    await until(() => failures.length > 1, 5000, 'the removal reported');
    expect(d.current.size).toBe(3);
    await mkdir(dir);
    await writeFile(path.join(dir, 'a.yaml'), 'mac: 52:54:00:00:00:01\nimage: bee\n');
    await until(() => d.current.size === 1, 5000, 'the recreated folder read');
  });
});
