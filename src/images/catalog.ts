/**
 * The image catalog: `<dir>/<name>/recipe.yaml` says an image exists (issue
 * 4 builds it), `<dir>/<name>/<version>/` holds a built version with its
 * manifest.json, and `<dir>/<name>/current` is a symlink to the version new
 * boots get. Versions are immutable once published; switching `current` is
 * one rename(2), so a reader sees the old or the new version, never neither.
 *
 * Over TFTP a version's files are `images/<name>/<version>/<file>`: stable
 * paths, and only files the manifest lists. Rendered boot configs name the
 * concrete version, so a host that fetched its config keeps a consistent
 * kernel + initrd set even if `current` moves mid-download.
 */
import { existsSync, promises as fs, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ConfigIssue } from '../config/yaml-config.js';
import type { ImageIndex } from '../hosts/directory.js';
import { IMAGE_NAME_RE, VERSION_RE } from '../hosts/schema.js';
import type { ImageRef } from '../hosts/types.js';
import { MANIFEST_FILE, SMOKE_TEST_FILE, parseManifest, type Manifest } from './manifest.js';
import { IMAGE_ARCHES, type ImageArch } from './arch.js';
import { peSignatureOfFile } from './pe-signature.js';
import { loadRecipe } from './recipe.js';

export const RECIPE_FILE = 'recipe.yaml';
export const CURRENT_LINK = 'current';

/**
 * The `current` link of an architecture: `current` for amd64 (as before
 * there were others), `current-arm64` for arm64. Versions of every
 * architecture share the image's folder; each manifest says its `arch`.
 */
export function currentLink(arch: ImageArch = 'amd64'): string {
  return arch === 'amd64' ? CURRENT_LINK : `${CURRENT_LINK}-${arch}`;
}

/**
 * Whether a top-level entry of an image folder belongs to the recipe (recipe.yaml,
 * overlay/, hooks/) rather than to the builds: versions start with a digit,
 * `current`, `current-<arch>` and hidden entries (.build.lock, .<version>.partial) are the builder's.
 */
export function isRecipeEntry(name: string): boolean {
  return !VERSION_RE.test(name) && !IMAGE_ARCHES.some((a) => name === currentLink(a)) && !name.startsWith('.');
}

/** TFTP prefix under which versions are served. */
export const TFTP_PREFIX = 'images';

export interface ResolvedImage {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  readonly manifest: Manifest;
  /** TFTP paths (absolute, leading slash) of the kernel and the initrds. */
  readonly kernelPath: string;
  readonly initrdPaths: readonly string[];
}

export type Resolve =
  | { readonly ok: true; readonly image: ResolvedImage }
  /** `wait`: the version is on its way (fetched from the image origin); the host should ask again shortly. */
  | { readonly ok: false; readonly reason: string; readonly issues?: readonly ConfigIssue[]; readonly wait?: boolean };

export interface VersionSummary {
  readonly version: string;
  readonly bytes: number;
  readonly kernelVersion: string | null;
  readonly builtAt: string | null;
  readonly valid: boolean;
  /** The kernel carries a Secure Boot signature; null: not known (no kernel, not a PE file). */
  readonly kernelSigned: boolean | null;
}

export interface ImageSummary {
  readonly name: string;
  readonly recipe: boolean;
  readonly current: string | null;
  readonly versions: readonly VersionSummary[];
}

export class ImageCatalog implements ImageIndex {
  private readonly manifests = new Map<string, { mtimeMs: number; result: ReturnType<typeof parseManifest> }>();
  /** Per version folder (a built version never changes). */
  private readonly signatures = new Map<string, boolean | null>();

  constructor(readonly dir: string) {}

  /** Image names: folders with a recipe or at least one built version. */
  names(): string[] {
    let entries: string[];
    try {
      entries = readdirSync(this.dir);
    } catch {
      return [];
    }
    return entries.filter((n) => IMAGE_NAME_RE.test(n) && this.knows(n)).sort();
  }

  knows(name: string): boolean {
    if (!IMAGE_NAME_RE.test(name)) return false;
    return existsSync(path.join(this.dir, name, RECIPE_FILE)) || this.versions(name).length > 0;
  }

  hasVersion(name: string, version: string): boolean {
    return IMAGE_NAME_RE.test(name) && VERSION_RE.test(version) && existsSync(path.join(this.dir, name, version, MANIFEST_FILE));
  }

  /** Built versions, oldest name first (folders with a manifest.json). */
  versions(name: string): string[] {
    let entries: string[];
    try {
      entries = readdirSync(path.join(this.dir, name));
    } catch {
      return [];
    }
    return entries.filter((v) => VERSION_RE.test(v) && this.hasVersion(name, v)).sort();
  }

  /** The version `current` (of `arch`) points at, or null when there is none (or it points nowhere valid). */
  current(name: string, arch: ImageArch = 'amd64'): string | null {
    let target: string;
    try {
      target = readlinkSync(path.join(this.dir, name, currentLink(arch)));
    } catch {
      return null;
    }
    return VERSION_RE.test(target) && this.hasVersion(name, target) ? target : null;
  }

  /** A reference to a complete, validated version for `arch`; `current` (of that architecture) is read once. */
  async resolve(ref: ImageRef, arch: ImageArch = 'amd64'): Promise<Resolve> {
    if (!IMAGE_NAME_RE.test(ref.name)) return { ok: false, reason: `invalid image name ${ref.name}` };
    const version = ref.version ?? this.current(ref.name, arch);
    if (version === null) return { ok: false, reason: this.knows(ref.name) ? (arch === 'amd64' ? `image ${ref.name} has no current version (not built yet?)` : `image ${ref.name} has no current ${arch} version (not built yet? bootd images build ${ref.name} --arch ${arch})`) : `image ${ref.name} does not exist` };
    const dir = path.join(this.dir, ref.name, version);
    const m = await this.manifest(ref.name, version);
    if (!m.ok) return { ok: false, reason: `image ${ref.name}@${version}: invalid manifest`, issues: m.issues };
    const built = m.manifest.arch ?? 'amd64';
    if (built !== arch) return { ok: false, reason: `image ${ref.name}@${version} is built for ${built}, and this machine is ${arch}` };
    const base = `/${TFTP_PREFIX}/${ref.name}/${version}`;
    return {
      ok: true,
      image: { name: ref.name, version, dir, manifest: m.manifest, kernelPath: `${base}/${m.manifest.kernel}`, initrdPaths: m.manifest.initrds.map((f) => `${base}/${f}`) },
    };
  }

  private async manifest(name: string, version: string): Promise<ReturnType<typeof parseManifest>> {
    const file = path.join(this.dir, name, version, MANIFEST_FILE);
    let st;
    try {
      st = await fs.stat(file);
    } catch {
      return { ok: false, issues: [{ file, line: 1, col: 1, path: '', message: 'missing' }] };
    }
    const key = `${name}@${version}`;
    const hit = this.manifests.get(key);
    if (hit && hit.mtimeMs === st.mtimeMs) return hit.result;
    const result = parseManifest(file, await fs.readFile(file, 'utf8'), { name, version });
    this.manifests.set(key, { mtimeMs: st.mtimeMs, result });
    return result;
  }

  /**
   * Points `current` at `version`, atomically: a new symlink under a
   * temporary name renamed over the old one (rename(2) replaces in one
   * step, as `mv -T` does in the buildos manual's machine upgrade).
   */
  async setCurrent(name: string, version: string): Promise<void> {
    if (!this.hasVersion(name, version)) throw new Error(`image ${name} has no version ${version}`);
    const m = await this.manifest(name, version);
    if (!m.ok) throw new Error(`image ${name}@${version} has an invalid manifest`);
    // the link of the version's own architecture
    const link = currentLink(m.manifest.arch ?? 'amd64');
    const tmp = path.join(this.dir, name, `.${link}.${process.pid}.${randomBytes(4).toString('hex')}`);
    await fs.symlink(version, tmp);
    try {
      await fs.rename(tmp, path.join(this.dir, name, link));
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * The real file behind a TFTP path `images/<name>/<version>/<file>`, when
   * the version exists and its manifest lists the file; else undefined.
   */
  async servePath(relPath: string): Promise<string | undefined> {
    const parts = relPath.split('/');
    if (parts.length !== 4 || parts[0] !== TFTP_PREFIX) return undefined;
    const [, name, asked, file] = parts as [string, string, string, string];
    // `current/manifest.json` too: another instance following this one as its image origin reads it (src/images/origin.ts)
    const linkArch = IMAGE_ARCHES.find((a) => asked === currentLink(a));
    const version = linkArch !== undefined && file === MANIFEST_FILE ? this.current(name, linkArch) : asked;
    if (version === null || !IMAGE_NAME_RE.test(name) || !VERSION_RE.test(version) || !this.hasVersion(name, version)) return undefined;
    const m = await this.manifest(name, version);
    if (!m.ok || (file !== MANIFEST_FILE && !Object.hasOwn(m.manifest.files, file))) return undefined;
    this.onServe?.(name, version);
    return path.join(this.dir, name, version, file);
  }

  /** Told of every version file handed out (the fetched-image cache keeps what hosts use). */
  onServe: ((name: string, version: string) => void) | null = null;

  /**
   * The smoke test of an image version: the copy the builder put beside its
   * manifest, else (versions built before recipes named one) the recipe's
   * smoke_test file. Null when the image has none.
   */
  async smokeScript(ref: ImageRef): Promise<{ script: string; version: string } | null> {
    const r = await this.resolve(ref);
    if (!r.ok) return null;
    const own = await fs.readFile(path.join(r.image.dir, SMOKE_TEST_FILE), 'utf8').catch(() => null);
    if (own !== null) return { script: own, version: r.image.version };
    try {
      const rec = await loadRecipe(this.dir, ref.name);
      if (rec.recipe.smoke_test === undefined) return null;
      return { script: await fs.readFile(path.join(rec.dir, rec.recipe.smoke_test), 'utf8'), version: r.image.version };
    } catch {
      return null;
    }
  }

  list(): ImageSummary[] {
    return this.names().map((name) => ({
      name,
      recipe: existsSync(path.join(this.dir, name, RECIPE_FILE)),
      current: this.current(name),
      versions: this.versions(name).map((version) => this.summary(name, version)),
    }));
  }

  private summary(name: string, version: string): VersionSummary {
    const file = path.join(this.dir, name, version, MANIFEST_FILE);
    try {
      const r = parseManifest(file, readFileSync(file, 'utf8'), { name, version });
      if (!r.ok) return { version, bytes: 0, kernelVersion: null, builtAt: null, valid: false, kernelSigned: null };
      const bytes = Object.values(r.manifest.files).reduce((a, f) => a + f.size, 0);
      return { version, bytes, kernelVersion: r.manifest.kernel_version, builtAt: r.manifest.built_at, valid: true, kernelSigned: this.kernelSigned(name, version) };
    } catch {
      return { version, bytes: 0, kernelVersion: null, builtAt: null, valid: false, kernelSigned: null };
    }
  }

  /**
   * Whether the kernel of `name@version` (the current version when none is
   * given) is signed for Secure Boot: the manifest's kernel_signature, or,
   * for versions built before it was recorded, read from the kernel's PE
   * header once. null: no such version, or the kernel is not a PE file.
   */
  kernelSigned(name: string, version?: string): boolean | null {
    const v = version ?? this.current(name);
    if (v === null || !this.hasVersion(name, v)) return null;
    const dir = path.join(this.dir, name, v);
    const hit = this.signatures.get(dir);
    if (hit !== undefined) return hit;
    let signed: boolean | null = null;
    try {
      const file = path.join(dir, MANIFEST_FILE);
      const r = parseManifest(file, readFileSync(file, 'utf8'), { name, version: v });
      if (r.ok) {
        if (r.manifest.kernel_signature) signed = r.manifest.kernel_signature.signed;
        else {
          const sig = peSignatureOfFile(path.join(dir, r.manifest.kernel));
          signed = sig.pe ? sig.signed : null;
        }
      }
    } catch {
      signed = null;
    }
    this.signatures.set(dir, signed);
    return signed;
  }
}
