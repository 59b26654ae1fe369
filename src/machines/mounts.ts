/**
 * Read-only views of state directories on the main TFTP port, as buildos
 * serves /build/tftp for log access: `logs/<host>/...` (bootd's per-host
 * event log and smoke outputs), `machines/<name>/...` (what build machines
 * uploaded), `uploads/<host>/...` (reports). Partial uploads stay hidden and
 * a symlink out of a mounted directory resolves to nothing.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { Provided, VirtualFiles } from '../files/root.js';
import { isPartialPath } from '../uploads/file-sink.js';

export class MountedDirs implements VirtualFiles {
  /** prefix (one path segment, no slash) -> directory */
  constructor(private readonly mounts: ReadonlyMap<string, string>) {}

  /** Synchronous, as the root's own lookups are (fileroot.ts: metadata on the loop). */
  get(relPath: string): Provided {
    const slash = relPath.indexOf('/');
    if (slash <= 0) return undefined;
    const dir = this.mounts.get(relPath.slice(0, slash));
    if (dir === undefined) return undefined;
    const rest = relPath.slice(slash + 1);
    if (rest === '' || isPartialPath(rest)) return undefined;
    let realDir: string;
    let real: string;
    try {
      realDir = realpathSync.native(dir);
      real = realpathSync.native(path.join(dir, rest));
    } catch {
      return undefined;
    }
    if (!real.startsWith(realDir + path.sep)) return undefined;
    return { file: real };
  }
}
