/**
 * A lowdb adapter that writes atomically and durably: the whole document goes
 * to a temporary file in the same directory, is fsynced, renamed over the old
 * one, and the directory is fsynced. A crash or `kill -9` at any moment leaves
 * either the old or the new document, never a torn one. (lowdb's own JSONFile
 * renames too, but does not fsync, so a power cut could lose an acknowledged
 * write.)
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Adapter } from 'lowdb';

export class StoreCorruptError extends Error {
  readonly code = 'ERR_STATE_CORRUPT';
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`${file} is not valid JSON (${(cause as Error).message}); move it aside to start empty`, { cause });
    this.name = 'StoreCorruptError';
  }
}

export class DurableJsonFile<T> implements Adapter<T> {
  private seq = 0;

  constructor(readonly file: string) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new StoreCorruptError(this.file, err);
    }
  }

  async write(data: T): Promise<void> {
    const dir = path.dirname(this.file);
    const tmp = path.join(dir, `.${path.basename(this.file)}.${process.pid}.${this.seq++}.tmp`);
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      try {
        await fh.writeFile(JSON.stringify(data) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.file);
    } catch (err) {
      // a full disk must not leave a half-written temporary file behind to fill it further
      await fs.unlink(tmp).catch(() => {});
      throw err;
    }
    const d = await fs.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
