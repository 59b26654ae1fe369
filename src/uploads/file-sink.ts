/**
 * An upload written beside its final name and renamed into place after the
 * last block, so readers see the old file or the whole new one, never a part
 * (rename(2) is atomic within a file system). fsync before the rename: a
 * crash right after the final ACK must not leave an empty file behind.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { UploadSink } from '../tftp/write-transfer.js';

/** Temporary names start with this; listings and usage counts skip them. */
export const PARTIAL_PREFIX = '.upload-';

export class FileUploadSink implements UploadSink {
  private fh: FileHandle | null = null;
  private readonly tmp: string;

  constructor(readonly target: string) {
    this.tmp = path.join(path.dirname(target), `${PARTIAL_PREFIX}${randomBytes(6).toString('hex')}-${path.basename(target)}`);
  }

  private async handle(): Promise<FileHandle> {
    // 'wx': never follow or reuse something that appeared under the temporary name
    this.fh ??= await fs.open(this.tmp, 'wx', 0o644);
    return this.fh;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    const fh = await this.handle();
    let done = 0;
    while (done < data.length) done += (await fh.write(data, done, data.length - done, offset + done)).bytesWritten;
  }

  async commit(): Promise<void> {
    const fh = await this.handle(); // an empty upload still creates its file
    await fh.sync();
    await fh.close();
    this.fh = null;
    await fs.rename(this.tmp, this.target);
  }

  async discard(): Promise<void> {
    if (this.fh) await this.fh.close().catch(() => {});
    this.fh = null;
    await fs.rm(this.tmp, { force: true });
  }
}
