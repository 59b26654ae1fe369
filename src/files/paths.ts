/**
 * Maps a TFTP file name onto a path relative to the served root. Pure.
 *
 * Firmware sends odd names: PXELINUX with a path prefix asks for
 * `boot//boot/isolinux/ldlinux.c32`, after option 210 `/` it asks `/x`, DOS-style
 * clients use `\`. All of them map into the root. Anything that would leave the
 * root (`..` past the top), or carries control characters, is refused.
 */
export type PathResult = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

/** `raw` is the file name as decoded from the wire (latin1, one char per byte). */
export function normalizeRequestPath(raw: string): PathResult {
  if (raw.length === 0) return { ok: false, reason: 'empty file name' };
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return { ok: false, reason: `control character 0x${c.toString(16).padStart(2, '0')} in file name` };
  }
  let name: string;
  try {
    // The wire carries bytes; file systems here store UTF-8 names.
    name = decoder.decode(Buffer.from(raw, 'latin1'));
  } catch {
    return { ok: false, reason: 'file name is not valid UTF-8' };
  }
  // C1 controls (U+0080..U+009F) exist only after decoding: the byte check above cannot see them
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x80 && c <= 0x9f) return { ok: false, reason: `control character U+${c.toString(16).toUpperCase().padStart(4, '0')} in file name` };
  }
  const parts: string[] = [];
  for (const seg of name.replace(/\\/g, '/').split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length === 0) return { ok: false, reason: 'path leaves the root' };
      parts.pop();
      continue;
    }
    parts.push(seg);
  }
  if (parts.length === 0) return { ok: false, reason: 'path names the root directory' };
  return { ok: true, path: parts.join('/') };
}
