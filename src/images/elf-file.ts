/**
 * The ELF readers of ./elf.ts over files: a file handle read at offsets, so
 * only the headers, tables and sections asked for are read (a 65 MB kernel
 * module's .modinfo without the rest of it).
 */
import { promises as fs } from 'node:fs';
import { readElf, readModinfo, type ElfInfo, type ReadAt } from './elf.js';

function fileReader(h: fs.FileHandle): ReadAt {
  return async (offset, length) => {
    const b = Buffer.alloc(length);
    const { bytesRead } = await h.read(b, 0, length, offset);
    return b.subarray(0, bytesRead);
  };
}

async function withFile<T>(file: string, f: (read: ReadAt) => Promise<T>): Promise<T> {
  const h = await fs.open(file, 'r');
  try {
    return await f(fileReader(h));
  } finally {
    await h.close();
  }
}

/** readElf of a file: null when it is not an ELF file. */
export function elfOfFile(file: string): Promise<ElfInfo | null> {
  return withFile(file, (read) => readElf(read, file));
}

/** readModinfo of a kernel module file. */
export function modinfoOfFile(file: string): Promise<Map<string, string[]> | null> {
  return withFile(file, (read) => readModinfo(read, file));
}
