/**
 * Packing a tree into the archive format the kernel unpacks as an initrd
 * (newc cpio, Documentation/driver-api/early-userspace), the same way for
 * the initrd and for payloads beside it (src/images/nvidia-payload.ts).
 */
import { run, type BuildLog } from './build-log.js';

/** Packs a tree into a newc cpio archive (sorted, reproducible, owned by root), compressed by `compress`; `onFile` sees each name. */
export async function packTree(log: BuildLog, tree: string, file: string, compress: string, onFile?: () => void): Promise<void> {
  // newc is the format the kernel unpacks (Documentation/driver-api/early-userspace).
  // Sorted names and --reproducible make the archive depend only on the tree;
  // built as non-root the files belong to the builder, so they are made root's.
  const owner = process.getuid?.() === 0 ? '' : '--owner=0:0';
  // cpio -v names each file on stderr as it goes: the progress counter.
  const script = `set -o pipefail; cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --reproducible --quiet -v ${owner} | ${compress} > "$2"`;
  await run(log, 'bash', ['-c', script, 'pack', tree, file], { unlogged: true, ...(onFile ? { onLine: onFile } : {}) });
}

