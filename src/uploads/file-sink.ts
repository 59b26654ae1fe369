/**
 * An upload written beside its final name and renamed into place after the
 * last block, so readers see the old file or the whole new one, never a part
 * (rename(2) is atomic within a file system). fsync before the rename and
 * of the directory after it: a crash (or power loss) right after the final
 * ACK must not leave an empty file, or no file, behind.
 *
 * With `exclusive` (a host's `overwrite: false`) the file is put in place
 * with link(2), which fails if the name exists: of several uploads of one
 * name, exactly one lands; the others get ERROR 6.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode } from '../tftp/packet.js';
import type { UploadSink } from '../tftp/write-transfer.js';
import type { Reservation } from './quota.js';

/** Temporary names start with this; listings and usage counts skip them. */
export const PARTIAL_PREFIX = '.upload-';

/**
 * Does a (normalized, '/'-separated) path name a partial upload, or lie
 * under a name that looks like one? Case-insensitive, so no spelling (case,
 * `\\`, leading slashes, dots: all gone after normalization) reaches one.
 */
export function isPartialPath(normalized: string): boolean {
  return normalized.split('/').some((seg) => seg.toLowerCase().startsWith(PARTIAL_PREFIX));
}

/** An error that tells the TFTP side which code to send (write-transfer.ts). */
export class UploadError extends Error {
  constructor(
    message: string,
    readonly tftpCode: number,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

export interface FileUploadSinkOptions {
  readonly reservation?: Reservation;
  /** Fail with ERROR 6 instead of replacing an existing file. */
  readonly exclusive?: boolean;
  /** Called once when the upload is committed or discarded. */
  readonly onEnd?: () => void;
}

export class FileUploadSink implements UploadSink {
  private fh: FileHandle | null = null;
  private readonly tmp: string;
  private ended = false;

  constructor(
    readonly target: string,
    private readonly o: FileUploadSinkOptions = {},
  ) {
    this.tmp = path.join(path.dirname(target), `${PARTIAL_PREFIX}${randomBytes(6).toString('hex')}-${path.basename(target)}`);
  }

  private async handle(): Promise<FileHandle> {
    // 'wx': never follow or reuse something that appeared under the temporary name
    this.fh ??= await fs.open(this.tmp, 'wx', 0o644);
    return this.fh;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.o.reservation && !this.o.reservation.grow(offset + data.length)) {
      throw new UploadError('quota exceeded by the uploads in progress', ErrorCode.DISK_FULL);
    }
    const fh = await this.handle();
    let done = 0;
    while (done < data.length) done += (await fh.write(data, done, data.length - done, offset + done)).bytesWritten;
  }

  async commit(): Promise<void> {
    const fh = await this.handle(); // an empty upload still creates its file
    await fh.sync();
    await fh.close();
    this.fh = null;
    if (this.o.exclusive) {
      try {
        await fs.link(this.tmp, this.target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UploadError('File already exists', ErrorCode.FILE_EXISTS);
        throw err;
      }
      await fs.unlink(this.tmp);
    } else {
      await fs.rename(this.tmp, this.target);
    }
    // the new name is durable only once its directory is: before the final ACK says "stored"
    const d = await fs.open(path.dirname(this.target), 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
    this.o.reservation?.commit();
    this.end();
  }

  async discard(): Promise<void> {
    if (this.fh) await this.fh.close().catch(() => {});
    this.fh = null;
    await fs.rm(this.tmp, { force: true });
    this.o.reservation?.release();
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.o.onEnd?.();
  }
}

/** Removes partial uploads a crash left under `dir` (at start, before any port opens); returns how many. */
export async function sweepPartials(dir: string): Promise<number> {
  let n = 0;
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += await sweepPartials(p);
    else if (e.name.startsWith(PARTIAL_PREFIX)) {
      await fs.rm(p, { force: true });
      n++;
    }
  }
  return n;
}
