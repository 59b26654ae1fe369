/**
 * Builds image catalog folders for tests: a recipe file and versions with
 * real files and a manifest.json whose sha256 and sizes match them.
 */
import { createHash } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface FakeVersion {
  readonly name: string;
  readonly version: string;
  /** File name to content; the first is the kernel, the rest are initrds. */
  readonly files?: Readonly<Record<string, string | Buffer>>;
  readonly cmdline?: readonly string[];
  /** Files listed in the manifest that are neither kernel nor initrd (bee's nvidia.img). */
  readonly payloads?: Readonly<Record<string, string>>;
  /** Point `current` here (a plain symlink; the catalog's switch is tested on its own). */
  readonly current?: boolean;
}

export async function addRecipe(dir: string, name: string): Promise<void> {
  await mkdir(path.join(dir, name), { recursive: true });
  await writeFile(path.join(dir, name, 'recipe.yaml'), `# test recipe\ndescription: ${name}\n`);
}

export async function addVersion(dir: string, v: FakeVersion): Promise<string> {
  const vdir = path.join(dir, v.name, v.version);
  await mkdir(vdir, { recursive: true });
  const files = v.files ?? { vmlinuz: `kernel of ${v.name} ${v.version}\n`, 'initrd.img': `initrd of ${v.name} ${v.version}\n` };
  const listed: Record<string, { sha256: string; size: number }> = {};
  for (const [f, content] of Object.entries(files)) {
    const b = Buffer.isBuffer(content) ? content : Buffer.from(content);
    await writeFile(path.join(vdir, f), b);
    listed[f] = { sha256: createHash('sha256').update(b).digest('hex'), size: b.length };
  }
  const [kernel, ...initrds] = Object.keys(files);
  for (const [f, content] of Object.entries(v.payloads ?? {})) {
    await writeFile(path.join(vdir, f), content);
    listed[f] = { sha256: createHash('sha256').update(content).digest('hex'), size: Buffer.byteLength(content) };
  }
  const manifest = {
    name: v.name,
    version: v.version,
    kernel,
    initrds,
    kernel_version: '6.1.0-27-cloud-amd64',
    built_at: '2026-11-22T10:00:00Z',
    recipe_commit: '0123456789abcdef0123456789abcdef01234567',
    ...(v.cmdline ? { cmdline: v.cmdline } : {}),
    files: listed,
  };
  await writeFile(path.join(vdir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  if (v.current) await symlink(v.version, path.join(dir, v.name, 'current'));
  return vdir;
}
