import { chmod, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A fresh scratch directory for a network test, readable by the processes it
 * starts in other namespaces, with an empty `root/` for bootd's TFTP root.
 */
export async function makeWorkDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `bootd-${prefix}-`));
  await chmod(dir, 0o755);
  await mkdir(path.join(dir, 'root'));
  return dir;
}

/** Polls `cond` every 100 ms (or `everyMs`) until it holds, or throws naming `what` after `ms`. */
export async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string, everyMs = 100): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
