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

/**
 * Packages from the host's apt sources, for the host's architecture or,
 * given `arch`, for another one: then apt runs with that architecture alone
 * and package lists of its own (`apt-get update` into workDir/lists-<arch>,
 * once per process and again after 12 hours), so the host's dpkg
 * configuration is never changed (no `dpkg --add-architecture`).
 */
export class AptSource implements PackageSource {
  private updated = false;

  constructor(
    private readonly workDir: string,
    private readonly arch?: string,
  ) {}

  /** apt options for the foreign architecture; none for the host's own. */
  private async foreign(log: BuildLog): Promise<string[]> {
    if (this.arch === undefined) return [];
    const lists = path.join(this.workDir, `lists-${this.arch}`);
    const o = ['-o', `APT::Architecture=${this.arch}`, '-o', `APT::Architectures=${this.arch}`, '-o', `Dir::State::Lists=${lists}`, '-o', 'Debug::NoLocking=1'];
    if (!this.updated) {
      await fs.mkdir(path.join(lists, 'partial'), { recursive: true });
      const stamp = path.join(lists, '.updated');
      const age = await fs.stat(stamp).then((st) => Date.now() - st.mtimeMs, () => Infinity);
      if (age > 12 * 3600_000) {
        await run(log, 'apt-get', [...o, '-qq', 'update']);
        await fs.writeFile(stamp, '');
      }
      this.updated = true;
    }
    return o;
  }

  async resolve(log: BuildLog, packages: readonly string[]): Promise<DebRef[]> {
    await fs.mkdir(this.workDir, { recursive: true });
    const foreign = await this.foreign(log);
    const status = path.join(this.workDir, 'empty-dpkg-status');
    await fs.writeFile(status, '');
    // An empty archive folder too: apt leaves out of --print-uris every
    // package whose .deb already sits in its archive cache.
    const archives = path.join(this.workDir, 'archives');
    await fs.mkdir(path.join(archives, 'partial'), { recursive: true });
    const out = await run(
      log,
      'apt-get',
      [...foreign, '-o', `Dir::State::status=${status}`, '-o', `Dir::Cache::archives=${archives}`, '-o', 'Debug::NoLocking=1', '-o', 'APT::Install-Recommends=0', 'install', '--print-uris', '-qq', '-y', ...packages],
      { capture: true },
    );
    const refs = parsePrintUris(out);
    if (refs.length === 0) throw new Error(`apt resolved nothing for ${packages.join(' ')}`);
    return refs;
  }

  async download(log: BuildLog, refs: readonly DebRef[], dir: string): Promise<void> {
    // apt-get download writes into the working directory; run as root it
    // cannot drop to _apt for a folder _apt cannot write, so say so.
    const foreign = await this.foreign(log);
    await run(log, 'apt-get', [...foreign, '-o', 'APT::Sandbox::User=root', '-qq', 'download', ...refs.map((r) => `${r.name}:${r.arch}=${r.version}`)], { cwd: dir });
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
