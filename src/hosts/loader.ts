/**
 * Reads hosts/*.yaml from disk, keeps the current HostSet, and reloads it
 * when the directory changes. Reload is all files at once (they are small),
 * which also covers editors that save by writing a temporary file and
 * renaming it over the original.
 */
import { watch, type FSWatcher } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Clock, TimerHandle } from '../net/clock.js';
import type { ConfigIssue } from '../config/yaml-config.js';
import { assemble, HostSet, type Assembly, type ImageIndex } from './directory.js';
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

/**
 * Parses every host file in `dir`; a file that cannot be read becomes an
 * issue. A host file that is a symlink is followed when it leads to a
 * regular file inside the hosts folder, and refused with an issue
 * otherwise: never silently left out. Rejects when `dir` itself cannot be
 * read (the caller keeps what it had).
 */
export async function readHostFiles(dir: string): Promise<Map<string, HostFileResult>> {
  const entries = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => (e.isFile() || e.isSymbolicLink()) && isHostFileName(e.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
  const realDir = entries.some((e) => e.isSymbolicLink()) ? await fs.realpath(dir) : dir;
  const out = new Map<string, HostFileResult>();
  await Promise.all(
    entries.map(async (e) => {
      const file = path.join(dir, e.name);
      const problem = (message: string): void => void out.set(file, { ok: false, issues: [{ file, line: 1, col: 1, path: '', message }] });
      let text: string;
      try {
        let target = file;
        if (e.isSymbolicLink()) {
          target = await fs.realpath(file);
          if (!target.startsWith(realDir + path.sep)) return problem(`symlink to ${target}, outside the hosts folder: not read`);
          // before opening: a FIFO would block the open
          if (!(await fs.stat(target)).isFile()) return problem(`symlink to ${target}, which is not a regular file: not read`);
        }
        const fh = await fs.open(target, 'r');
        try {
          const st = await fh.stat();
          if (!st.isFile()) return problem(`symlink to ${target}, which is not a regular file: not read`);
          if (st.size > MAX_HOST_FILE_BYTES) return problem(`${st.size} bytes: larger than ${MAX_HOST_FILE_BYTES} bytes, not read (a host file is a few lines)`);
          text = await fh.readFile('utf8');
        } finally {
          await fh.close();
        }
      } catch (err) {
        // deleted between readdir and read: the next change event reloads again
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !e.isSymbolicLink()) return;
        return problem(`cannot read: ${(err as Error).message}`);
      }
      if (text.length > MAX_HOST_FILE_BYTES) return problem(`larger than ${MAX_HOST_FILE_BYTES} bytes, not read (a host file is a few lines)`);
      out.set(file, parseHostFile(file, hostNameOf(e.name), text));
    }),
  );
  return out;
}

/** Loads a directory once, with no history: what `bootd hosts check` runs. */
export async function loadHosts(dir: string, images?: ImageIndex): Promise<Assembly> {
  return assemble(await readHostFiles(dir), new Map(), images);
}

export interface HostDirectoryEvents {
  /** After every reload, with what changed and every issue still standing. */
  onReload?(a: Assembly, changed: { added: string[]; removed: string[]; updated: string[] }): void;
  /**
   * A reload while watching failed (the folder was renamed or removed, or is
   * unreadable): the last good hosts keep serving, and the folder is tried
   * again every `retryMs` until it reads.
   */
  onReloadFailed?(err: Error, serving: number): void;
}

/**
 * The live host directory. `current` is always a complete, valid HostSet;
 * readers never see a half-applied reload.
 */
export class HostDirectory {
  private set: HostSet = HostSet.empty;
  private lastGood = new Map<string, Host>();
  private issuesNow: readonly ConfigIssue[] = [];
  private watcher: FSWatcher | null = null;
  private timer: TimerHandle | null = null;
  private reloading: Promise<void> | null = null;
  private again = false;
  private signal: AbortSignal | null = null;
  private failing = false;

  constructor(
    readonly dir: string,
    private readonly deps: { readonly clock: Clock; readonly images?: ImageIndex; readonly debounceMs?: number; readonly retryMs?: number } & HostDirectoryEvents,
  ) {}

  get current(): HostSet {
    return this.set;
  }

  get issues(): readonly ConfigIssue[] {
    return this.issuesNow;
  }

  /** Reads the directory now. Concurrent calls coalesce into one more pass. */
  async reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        await this.reloadOnce();
      } while (this.again);
    })().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    const results = await readHostFiles(this.dir);
    const a = assemble(results, this.lastGood, this.deps.images);
    const before = this.set;
    const next = new Map<string, Host>();
    for (const f of a.files) if (f.host) next.set(f.file, f.host);
    this.lastGood = next;
    this.set = a.set;
    this.issuesNow = a.issues;
    const names = (s: HostSet): Map<string, string> => new Map(s.hosts.map((h) => [h.name, JSON.stringify(h)]));
    const b = names(before);
    const n = names(a.set);
    this.deps.onReload?.(a, {
      added: [...n.keys()].filter((k) => !b.has(k)),
      removed: [...b.keys()].filter((k) => !n.has(k)),
      updated: [...n.keys()].filter((k) => b.has(k) && b.get(k) !== n.get(k)),
    });
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
      this.watcher = watch(this.dir, { persistent: false }, () => this.schedule());
      this.watcher.on('error', () => this.schedule());
    } catch {
      // the folder is gone: the retry timer looks again
    }
  }

  /** Waits for a quiet moment: a save is often several events (write, rename, chmod). */
  private schedule(delayMs = this.deps.debounceMs ?? 150): void {
    if (this.signal?.aborted) return;
    this.timer?.cancel();
    this.timer = this.deps.clock.setTimer(delayMs, () => {
      this.timer = null;
      this.reload().then(
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
