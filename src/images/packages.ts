/**
 * Where .deb packages come from, and the download cache in front of it.
 *
 * AptSource asks the build host's apt (its sources, proxy and keys) two
 * things: the dependency closure of a package list as if nothing were
 * installed (`install --print-uris` against an empty dpkg status), and the
 * .deb files themselves (`apt-get download`). Files land in the cache under
 * apt's own file name and are checked against the size and hash apt printed,
 * so a second build with nothing changed downloads nothing.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { run, type BuildLog } from './build-log.js';

export interface DebRef {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  /** File name as apt stores it (epoch colon as %3a). */
  readonly filename: string;
  readonly size: number;
  /** `MD5Sum:…` or `SHA256:…`, as apt printed it; empty when unknown. */
  readonly hash: string;
}

export interface PackageSource {
  /** The named packages and everything they depend on (no recommends). */
  resolve(log: BuildLog, packages: readonly string[]): Promise<DebRef[]>;
  /** The named packages alone, without what they depend on (build inputs such as kernel headers: unpacked, never installed). */
  resolveExact(log: BuildLog, packages: readonly string[]): Promise<DebRef[]>;
  /** Downloads these packages into `dir` under their `filename`. */
  download(log: BuildLog, refs: readonly DebRef[], dir: string): Promise<void>;
}

/** Parses one line of `apt-get --print-uris`: `'URL' FILE SIZE HASH`. */
export function parsePrintUris(text: string): DebRef[] {
  const refs: DebRef[] = [];
  for (const line of text.split('\n')) {
    const m = /^'([^']+)' (\S+\.deb) (\d+) ?(\S*)$/.exec(line.trim());
    if (!m) continue;
    const filename = m[2] as string;
    const [name, version, arch] = filename.replace(/\.deb$/, '').split('_');
    if (name === undefined || version === undefined || arch === undefined) continue;
    refs.push({ name, version: decodeURIComponent(version), arch, filename, size: Number(m[3]), hash: m[4] ?? '' });
  }
  return refs;
}

/** One Debian archive the build host's apt reads: its URI and suite (`http://deb.debian.org/debian`, `bookworm-updates`). */
export interface DebianArchive {
  readonly uri: string;
  readonly suite: string;
}

/**
 * The Debian archives in `apt-cache policy` output: each package list line
 * (` 500 URI SUITE/COMPONENT ARCH Packages`) followed by its Release line,
 * kept where the Release says `o=Debian` (the archive and its security and
 * updates suites; not third-party repositories). Pure.
 */
export function debianArchives(policy: string): DebianArchive[] {
  const out: DebianArchive[] = [];
  const seen = new Set<string>();
  const lines = policy.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*-?\d+\s+(\S+:\/\/\S+)\s+([^/\s]+)\/\S+\s+\S+\s+Packages\s*$/.exec(lines[i] as string);
    if (!m) continue;
    const release = /^\s*release\s+(.*)$/.exec(lines[i + 1] ?? '')?.[1] ?? '';
    if (!release.split(',').includes('o=Debian')) continue;
    const a = { uri: (m[1] as string).replace(/\/+$/, ''), suite: m[2] as string };
    const k = `${a.uri} ${a.suite}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(a);
  }
  return out;
}

/** A sources.list naming these archives with these components, checked against Debian's archive keyring when given. Pure. */
export function sourcesList(archives: readonly DebianArchive[], components: readonly string[], keyring?: string): string {
  const opts = keyring === undefined ? '' : `[signed-by=${keyring}] `;
  return archives.map((a) => `deb ${opts}${a.uri} ${a.suite} ${components.join(' ')}\n`).join('');
}

export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface AptSourceOptions {
  /** Build for this architecture (another than the host's): apt runs with it alone. */
  readonly arch?: string | undefined;
  /** Archive components (non-free, ...): apt reads sources of its own with them. */
  readonly components?: readonly string[] | undefined;
}

/**
 * Packages from the host's apt sources, for the host's architecture or,
 * given `arch`, for another one: then apt runs with that architecture alone
 * and package lists of its own (`apt-get update` into workDir/lists-<arch>,
 * once per process and again after 12 hours), so the host's dpkg
 * configuration is never changed (no `dpkg --add-architecture`). Given
 * `components` beyond main (a recipe's `apt: components:`), apt reads a
 * sources list of its own: every Debian archive the host's apt reads, with
 * those components, and lists of its own; the host's sources stay as they are.
 */
export class AptSource implements PackageSource {
  private options: Promise<string[]> | null = null;
  private readonly arch: string | undefined;
  private readonly components: readonly string[] | undefined;

  constructor(
    private readonly workDir: string,
    o: AptSourceOptions = {},
  ) {
    this.arch = o.arch;
    this.components = o.components !== undefined && o.components.some((c) => c !== 'main') ? o.components : undefined;
  }

  /** apt options for the foreign architecture and the extra components; none for the host's own sources. */
  private aptOptions(log: BuildLog): Promise<string[]> {
    this.options ??= this.makeOptions(log);
    return this.options;
  }

  private async makeOptions(log: BuildLog): Promise<string[]> {
    if (this.arch === undefined && this.components === undefined) return [];
    const o: string[] = ['-o', 'Debug::NoLocking=1'];
    let name = this.arch ?? 'host';
    if (this.arch !== undefined) o.push('-o', `APT::Architecture=${this.arch}`, '-o', `APT::Architectures=${this.arch}`);
    if (this.components !== undefined) {
      name += `-${this.components.join('+')}`;
      const archives = debianArchives(await run(log, 'apt-cache', ['policy'], { capture: true, unlogged: true }));
      if (archives.length === 0) throw new Error('the build host\'s apt reads no Debian archive (apt-cache policy lists none with o=Debian), so there is nothing to add the components to');
      const dir = path.join(this.workDir, `sources-${name}`);
      await fs.mkdir(path.join(dir, 'parts'), { recursive: true });
      const list = path.join(dir, 'sources.list');
      await fs.writeFile(list, sourcesList(archives, this.components, existsSync(DEBIAN_KEYRING) ? DEBIAN_KEYRING : undefined));
      log.write(`apt sources of this build (${list}): ${archives.map((a) => `${a.uri} ${a.suite}`).join(', ')} with ${this.components.join(' ')}`);
      o.push('-o', `Dir::Etc::SourceList=${list}`, '-o', `Dir::Etc::SourceParts=${path.join(dir, 'parts')}`);
    }
    const lists = path.join(this.workDir, `lists-${name}`);
    o.push('-o', `Dir::State::Lists=${lists}`);
    await fs.mkdir(path.join(lists, 'partial'), { recursive: true });
    const stamp = path.join(lists, '.updated');
    const age = await fs.stat(stamp).then((st) => Date.now() - st.mtimeMs, () => Infinity);
    if (age > 12 * 3600_000) {
      await run(log, 'apt-get', [...o, '-qq', 'update']);
      await fs.writeFile(stamp, '');
    }
    return o;
  }

  async resolve(log: BuildLog, packages: readonly string[]): Promise<DebRef[]> {
    await fs.mkdir(this.workDir, { recursive: true });
    const extra = await this.aptOptions(log);
    const status = path.join(this.workDir, 'empty-dpkg-status');
    await fs.writeFile(status, '');
    // An empty archive folder too: apt leaves out of --print-uris every
    // package whose .deb already sits in its archive cache.
    const archives = path.join(this.workDir, 'archives');
    await fs.mkdir(path.join(archives, 'partial'), { recursive: true });
    const out = await run(
      log,
      'apt-get',
      [...extra, '-o', `Dir::State::status=${status}`, '-o', `Dir::Cache::archives=${archives}`, '-o', 'Debug::NoLocking=1', '-o', 'APT::Install-Recommends=0', 'install', '--print-uris', '-qq', '-y', ...packages],
      { capture: true },
    );
    const refs = parsePrintUris(out);
    if (refs.length === 0) throw new Error(`apt resolved nothing for ${packages.join(' ')}`);
    return refs;
  }

  async resolveExact(log: BuildLog, packages: readonly string[]): Promise<DebRef[]> {
    await fs.mkdir(this.workDir, { recursive: true });
    const extra = await this.aptOptions(log);
    const out = await run(log, 'apt-get', [...extra, '-o', 'Debug::NoLocking=1', 'download', '--print-uris', '-qq', ...packages], { capture: true });
    const refs = parsePrintUris(out);
    const missing = packages.map((p) => p.replace(/=.*$/, '')).filter((p) => !refs.some((r) => r.name === p));
    if (missing.length > 0) throw new Error(`apt found no ${missing.join(', ')} in ${this.components === undefined ? 'the build host\'s sources' : `the Debian archives with ${this.components.join(' ')}`}`);
    return refs;
  }

  async download(log: BuildLog, refs: readonly DebRef[], dir: string): Promise<void> {
    // apt-get download writes into the working directory; run as root it
    // cannot drop to _apt for a folder _apt cannot write, so say so.
    const extra = await this.aptOptions(log);
    await run(log, 'apt-get', [...extra, '-o', 'APT::Sandbox::User=root', '-qq', 'download', ...refs.map((r) => `${r.name}:${r.arch}=${r.version}`)], { cwd: dir });
  }
}

export async function hashFile(file: string, algo: string): Promise<string> {
  const h = createHash(algo);
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const HASH_ALGOS: Record<string, string> = { MD5Sum: 'md5', SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };

/** Whether a cached file matches what apt says the package is. */
export async function cachedOk(file: string, ref: DebRef): Promise<boolean> {
  let st;
  try {
    st = await fs.stat(file);
  } catch {
    return false;
  }
  if (st.size !== ref.size) return false;
  const [label, want] = ref.hash.split(':');
  const algo = label === undefined ? undefined : HASH_ALGOS[label];
  if (algo === undefined || want === undefined) return true;
  return (await hashFile(file, algo)) === want.toLowerCase();
}

export interface FetchReport {
  readonly downloaded: number;
  readonly cached: number;
  readonly bytes: number;
}

/**
 * Makes every ref present and verified in `cacheDir`, downloading only what
 * is missing or damaged, a few packages per apt run so progress moves.
 */
export async function fetchPackages(
  log: BuildLog,
  source: PackageSource,
  refs: readonly DebRef[],
  cacheDir: string,
  onCount: (done: number, total: number) => void,
): Promise<FetchReport> {
  await fs.mkdir(cacheDir, { recursive: true });
  const missing: DebRef[] = [];
  for (const r of refs) if (!(await cachedOk(path.join(cacheDir, r.filename), r))) missing.push(r);
  const cached = refs.length - missing.length;
  log.write(`packages: ${refs.length} needed, ${cached} cached, ${missing.length} to download`);
  onCount(cached, refs.length);
  const incoming = path.join(cacheDir, '.incoming');
  await fs.rm(incoming, { recursive: true, force: true });
  await fs.mkdir(incoming, { recursive: true });
  let done = cached;
  let bytes = 0;
  const BATCH = 8;
  try {
    for (let i = 0; i < missing.length; i += BATCH) {
      const batch = missing.slice(i, i + BATCH);
      await source.download(log, batch, incoming);
      for (const r of batch) {
        const got = path.join(incoming, r.filename);
        if (!existsSync(got)) throw new Error(`download of ${r.name} ${r.version} produced no ${r.filename}`);
        if (!(await cachedOk(got, r))) throw new Error(`download of ${r.name} ${r.version} does not match the size and ${r.hash.split(':')[0]} apt announced`);
        // Publish into the cache only once verified: a partial file never looks cached.
        await fs.rename(got, path.join(cacheDir, r.filename));
        bytes += r.size;
        done++;
      }
      onCount(done, refs.length);
    }
  } finally {
    await fs.rm(incoming, { recursive: true, force: true });
  }
  return { downloaded: missing.length, cached, bytes };
}
