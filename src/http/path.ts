/**
 * The path of an HTTP request target as the bytes it names. Pure.
 *
 * Percent-escapes are decoded to bytes, not to UTF-16 code units: the file
 * tree is resolved from bytes (src/tftp/paths.ts decodes UTF-8 and refuses
 * control characters, as for a TFTP name), so `%C4%AE` is the two bytes of
 * "Į" and never collapses to a dot, and a UTF-8 file name is reachable by
 * its ordinary percent-encoding. Node hands the request line over one char
 * per byte (latin1), so unescaped bytes keep their values too.
 */

/** The target's path (query dropped) as a latin1 string of its bytes, or null for a malformed escape. */
export function requestPathBytes(target: string): string | null {
  const q = target.indexOf('?');
  const p = q < 0 ? target : target.slice(0, q);
  const bytes: number[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 0x25) {
      const hex = p.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c > 0xff) {
      return null; // not from the wire
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString('latin1');
}
