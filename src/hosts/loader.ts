/**
 * Reads hosts/*.yaml from disk, keeps the current HostSet, and reloads it
 * when the directory changes. Reload is all files at once (they are small),
 * which also covers editors that save by writing a temporary file and
 * renaming it over the original.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, readSync, watch, type FSWatcher } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Clock, TimerHandle } from '../net/clock.js';
import type { ConfigIssue } from '../config/yaml-config.js';
import { assemble, HostSet, reassemble, type Assembly, type FileOutcome, type HostFileResults, type ImageIndex } from './directory.js';
import { parseHostFile, type HostFileResult } from './schema.js';
import type { Host } from './types.js';

/** Host files: `name.yaml` or `name.yml`; dot files and editor leftovers are not hosts. */
export function isHostFileName(entry: string): boolean {
  return /\.ya?ml$/.test(entry) && !entry.startsWith('.');
}

export function hostNameOf(entry: string): string {
  return entry.replace(/\.ya?ml$/, '');
}

/**
 * Largest host file read. A host file is a dozen lines; anything far larger
 * is refused by its size, before it is read or parsed, so it cannot hold up
 * the event loop (DHCP and TFTP) at this or any later reload.
 */
export const MAX_HOST_FILE_BYTES = 16 * 1024;

/** What one file gave, and the stat it gave it for (inode, size, times): an unchanged file is not read again. */
interface CachedFile {
  readonly stamp: string;
  readonly result: HostFileResult;
}

/** Files read between two yields to the event loop (DHCP and TFTP keep being served during a reload). */
const FILES_PER_SLICE = 256;

const yieldNow = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The host files of one folder as last read, by path. `read()` reads the
 * folder (every file, or only the names a watcher reported) and returns
 * every file's result in name order. A file whose inode, size, mtime and
 * ctime are what they were is not read or parsed again: a reload of 10,000
 * files after one edit reads one (docs/performance.md, session 16).
 */
export class HostFiles {
  private readonly files = new Map<string, CachedFile>();
  private order: string[] | null = null;
  /** Files read and parsed (not those found unchanged). */
  parsed = 0;

  constructor(readonly dir: string) {}

  /**
   * `only`: file names (not paths) a watcher reported; null reads the whole
   * folder (the first time, when the watcher could not say, and after a
   * failure). Rejects when the folder itself cannot be read.
   */
  async read(only: ReadonlySet<string> | null = null): Promise<HostFileResults> {
    const dir = this.dir;
    // the folder must be readable even for a targeted pass (renamed away: the caller keeps what it had)
    const names = only === null ? (await fs.readdir(dir)).filter(isHostFileName) : [...only].filter(isHostFileName);
    if (only !== null) await fs.access(dir);
    const seen = new Set<string>();
    let realDir: string | null = null;
    for (let i = 0; i < names.length; i++) {
      if (i > 0 && i % FILES_PER_SLICE === 0) await yieldNow();
      const name = names[i] as string;
      const file = path.join(dir, name);
      const got = this.readOne(file);
      if (got === 'gone') {
        this.forget(file);
        continue;
      }
      seen.add(file);
      if (got === 'symlink') {
        realDir ??= await fs.realpath(dir);
        this.keep(file, { stamp: '', result: await readLinked(file, realDir) });
      }
    }
    if (only === null) for (const f of [...this.files.keys()]) if (!seen.has(f)) this.forget(f);
    // name order, sorted again only when files came or went (a pass after one edit sorts nothing)
    if (this.order === null) this.order = [...this.files.keys()].sort();
    const order = this.order;
    const files = this.files;
    // a view, not a copy: a pass after one edit among 100,000 touches one entry
    return {
      get: (f) => files.get(f)?.result,
      has: (f) => files.has(f),
      keys: () => order[Symbol.iterator](),
    };
  }

  private keep(file: string, c: CachedFile): void {
    if (!this.files.has(file)) this.order = null;
    this.files.set(file, c);
  }

  private forget(file: string): void {
    if (this.files.delete(file)) this.order = null;
  }

  /**
   * A regular file through one descriptor (open, fstat, read, close: the
   * fewest system calls; a reload of 100,000 files is mostly these). Not
   * following a symlink (O_NOFOLLOW: the caller checks where it leads) and
   * not blocking on a FIFO (O_NONBLOCK); an unchanged file is not read.
   */
  private readOne(file: string): 'gone' | 'symlink' | 'done' {
    let fd: number;
    try {
      fd = openSync(file, OPEN_FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // deleted between readdir and open (or reported deleted): gone
      if (code === 'ENOENT') return 'gone';
      if (code === 'ELOOP') return 'symlink';
      this.keep(file, { stamp: '', result: problem(file, `cannot read: ${(err as Error).message}`) });
      return 'done';
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return 'gone'; // a folder or a FIFO named *.yaml is no host file (forgotten by the caller)
      const stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      if (this.files.get(file)?.stamp === stamp) return 'done';
      this.parsed++;
      let result: HostFileResult;
      if (st.size > MAX_HOST_FILE_BYTES) result = problem(file, `${st.size} bytes: larger than ${MAX_HOST_FILE_BYTES} bytes, not read (a host file is a few lines)`);
      else {
        const n = readSync(fd, readBuffer, 0, readBuffer.length, 0);
        result = n > MAX_HOST_FILE_BYTES ? problem(file, `larger than ${MAX_HOST_FILE_BYTES} bytes, not read (a host file is a few lines)`) : parseHostFile(file, hostNameOf(path.basename(file)), readBuffer.toString('utf8', 0, n));
      }
      this.keep(file, { stamp, result });
      return 'done';
    } catch (err) {
      this.keep(file, { stamp: '', result: problem(file, `cannot read: ${(err as Error).message}`) });
      return 'done';
    } finally {
      closeSync(fd);
    }
  }
}

const OPEN_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
/** One more byte than a host file may have, so a longer one shows. */
const readBuffer = Buffer.alloc(MAX_HOST_FILE_BYTES + 1);

function problem(file: string, message: string): HostFileResult {
  return { ok: false, issues: [{ file, line: 1, col: 1, path: '', message }] };
}

/** A regular file, read at once: a host file is a dozen lines, and a large one is refused by its size before it is read. */
function readRegular(file: string, size: number, readFrom = file): HostFileResult {
  if (size > MAX_HOST_FILE_BYTES) return problem(file, `${size} bytes: larger than ${MAX_HOST_FILE_BYTES} bytes, not read (a host file is a few lines)`);
  let text: string;
  try {
    text = readFileSync(readFrom, 'utf8');
  } catch (err) {
    return problem(file, `cannot read: ${(err as Error).message}`);
  }
  if (text.length > MAX_HOST_FILE_BYTES) return problem(file, `larger than ${MAX_HOST_FILE_BYTES} bytes, not read (a host file is a few lines)`);
  return parseHostFile(file, hostNameOf(path.basename(file)), text);
}

/**
 * A host file that is a symlink is followed when it leads to a regular file
 * inside the hosts folder, and refused with an issue otherwise: never
 * silently left out.
 */
async function readLinked(file: string, realDir: string): Promise<HostFileResult> {
  let target: string;
  try {
    target = await fs.realpath(file);
  } catch (err) {
    return problem(file, `cannot read: ${(err as Error).message}`);
  }
  if (!target.startsWith(realDir + path.sep)) return problem(file, `symlink to ${target}, outside the hosts folder: not read`);
  // before opening: a FIFO would block the open
  const st = await fs.stat(target).catch(() => null);
  if (!st?.isFile()) return problem(file, `symlink to ${target}, which is not a regular file: not read`);
  return readRegular(file, st.size, target);
}

/**
 * Parses every host file in `dir`; a file that cannot be read becomes an
 * issue. Rejects when `dir` itself cannot be read (the caller keeps what it
 * had).
 */
export async function readHostFiles(dir: string): Promise<HostFileResults> {
  return new HostFiles(dir).read();
}

/** Loads a directory once, with no history: what `bootd hosts check` runs. */
export async function loadHosts(dir: string, images?: ImageIndex): Promise<Assembly> {
  return assemble(await readHostFiles(dir), new Map(), images);
}

export interface HostDirectoryEvents {
  /** After every reload, with what changed and every issue still standing. */
  onReload?(a: Assembly, changed: { added: string[]; removed: string[]; updated: string[]; ms: number }): void;
  /**
   * A reload while watching failed (the folder was renamed or removed, or is
   * unreadable): the last good hosts keep serving, and the folder is tried
   * again every `retryMs` until it reads.
   */
  onReloadFailed?(err: Error, serving: number): void;
}

/**
 * Hosts added, removed and changed between two assemblies. An outcome a pass
 * did not touch is the same object in both (reassemble keeps them), so a
 * pass after one edit compares one host, not 100,000.
 */
function changesBetween(before: readonly FileOutcome[], after: readonly FileOutcome[]): { added: string[]; removed: string[]; updated: string[] } {
  const b = new Map<string, Host>();
  const n = new Map<string, Host>();
  const sameFiles = before.length === after.length && before.every((o, i) => o.file === after[i]?.file);
  for (let i = 0; i < after.length; i++) {
    const x = after[i] as FileOutcome;
    const y = before[i];
    if (sameFiles && x === y) continue;
    if (x.host) n.set(x.host.name, x.host);
    if (sameFiles && y?.host) b.set(y.host.name, y.host);
  }
  if (!sameFiles) for (const o of before) if (o.host) b.set(o.host.name, o.host);
  const updated: string[] = [];
  for (const [k, h] of n) {
    const old = b.get(k);
    if (old !== undefined && old !== h && JSON.stringify(old) !== JSON.stringify(h)) updated.push(k);
  }
  return { added: [...n.keys()].filter((k) => !b.has(k)), removed: [...b.keys()].filter((k) => !n.has(k)), updated };
}

/**
 * The live host directory. `current` is always a complete, valid HostSet;
 * readers never see a half-applied reload.
 */
export class HostDirectory {
  private set: HostSet = HostSet.empty;
  private assembly: Assembly | null = null;
  private issuesNow: readonly ConfigIssue[] = [];
  private watcher: FSWatcher | null = null;
  private timer: TimerHandle | null = null;
  private reloading: Promise<void> | null = null;
  /** What the next pass reads: the names a watcher reported, or everything. */
  private pending: Set<string> | 'all' | null = null;
  private signal: AbortSignal | null = null;
  private failing = false;
  private readonly files: HostFiles;

  constructor(
    readonly dir: string,
    private readonly deps: { readonly clock: Clock; readonly images?: ImageIndex; readonly debounceMs?: number; readonly retryMs?: number } & HostDirectoryEvents,
  ) {
    this.files = new HostFiles(dir);
  }

  get current(): HostSet {
    return this.set;
  }

  get issues(): readonly ConfigIssue[] {
    return this.issuesNow;
  }

  /** Host files read and parsed so far (a pass after one edit reads one). */
  get filesParsed(): number {
    return this.files.parsed;
  }

  /** Reads the whole directory now. Concurrent calls coalesce into one more pass. */
  reload(): Promise<void> {
    return this.request('all');
  }

  /** Reads `names` (or everything) in the next pass; passes run one at a time. */
  private request(what: Set<string> | 'all'): Promise<void> {
    if (what === 'all' || this.pending === 'all') this.pending = 'all';
    else this.pending = new Set([...(this.pending ?? []), ...what]);
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      while (this.pending !== null) {
        const p = this.pending;
        this.pending = null;
        try {
          await this.reloadOnce(p === 'all' ? null : p);
        } catch (err) {
          // a failed pass reads everything next time (what it skipped is unknown)
          this.pending = 'all';
          throw err;
        }
      }
    })().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async reloadOnce(only: ReadonlySet<string> | null): Promise<void> {
    const t0 = this.deps.clock.now();
    const results = await this.files.read(only);
    const prev = this.assembly;
    // a watcher's pass starts from the last assembly (a few map operations); a full pass assembles anew
    const a =
      (only !== null && prev ? reassemble(prev, results, new Set([...only].filter(isHostFileName).map((n) => path.join(this.dir, n))), this.deps.images) : null) ??
      assemble(results, new Map((prev?.files ?? []).flatMap((f) => (f.host ? [[f.file, f.host] as const] : []))), this.deps.images);
    this.assembly = a;
    this.set = a.set;
    this.issuesNow = a.issues;
    this.deps.onReload?.(a, { ...changesBetween(prev?.files ?? [], a.files), ms: Math.round(this.deps.clock.now() - t0) });
  }

  /** Reloads on every change in the directory until `signal` aborts. */
  watch(signal: AbortSignal): void {
    if (this.signal || signal.aborted) return;
    this.signal = signal;
    this.startWatcher();
    signal.addEventListener(
      'abort',
      () => {
        this.watcher?.close();
        this.watcher = null;
        this.timer?.cancel();
        this.timer = null;
      },
      { once: true },
    );
  }

  private startWatcher(): void {
    this.watcher?.close();
    this.watcher = null;
    try {
      // inotify names the file: a pass reads that file alone; no name (an overflow, the folder itself): everything
      this.watcher = watch(this.dir, { persistent: false }, (_ev, name) => this.schedule(undefined, typeof name === 'string' && name !== '' ? name : null));
      this.watcher.on('error', () => this.schedule());
    } catch {
      // the folder is gone: the retry timer looks again
    }
  }

  /** Names reported since the last pass was scheduled; null: read everything. */
  private batch: Set<string> | null = new Set();

  /**
   * Waits for a quiet moment (a save is often several events: write,
   * rename, chmod; 20 ms by default, so an edit is live well within 50 ms),
   * then reads the files named meanwhile, or everything when one event could
   * not name its file or the last pass failed.
   */
  private schedule(delayMs = this.deps.debounceMs ?? 20, name: string | null = null): void {
    if (this.signal?.aborted) return;
    if (name === null || this.failing) this.batch = null;
    else this.batch?.add(name);
    this.timer?.cancel();
    this.timer = this.deps.clock.setTimer(delayMs, () => {
      this.timer = null;
      const what = this.batch ?? 'all';
      this.batch = new Set();
      this.request(what).then(
        () => {
          if (!this.failing) return;
          // back: a renamed-back or recreated folder is another inode, watch it afresh
          this.failing = false;
          this.startWatcher();
        },
        (err: unknown) => {
          this.failing = true;
          this.deps.onReloadFailed?.(err instanceof Error ? err : new Error(String(err)), this.set.size);
          this.schedule(this.deps.retryMs ?? 5000);
        },
      );
    });
  }
}
