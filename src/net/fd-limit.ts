/**
 * The process's soft limit on open descriptors (RLIMIT_NOFILE), read from
 * /proc/self/limits (Node has no getrlimit); `fallback` where that cannot be
 * read. Node raises the soft limit to the hard one at start, so this is what
 * the process really has.
 */
import { readFileSync } from 'node:fs';

export function openFileLimit(fallback = 1024, text?: string): number {
  let limits: string;
  try {
    limits = text ?? readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return fallback;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  if (!m) return fallback;
  return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}
