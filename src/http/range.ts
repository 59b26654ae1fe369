/**
 * The HTTP Range header (RFC 9110 section 14), pure. bootd serves one range
 * per request: iPXE and EDK2's HttpBootDxe ask for at most one, and a
 * multi-range request may be answered with the whole file (section 14.2).
 */

export type RangeDecision =
  /** No Range header, or one we answer with the whole file (multiple ranges, other units, unparsable). */
  | { readonly kind: 'full' }
  /** `start` and `end` inclusive, as in Content-Range. */
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  /** RFC 9110 section 15.5.17: 416 with `Content-Range: bytes *\/size`. */
  | { readonly kind: 'unsatisfiable' };

const SPEC = /^bytes=(\d*)-(\d*)$/;

export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const m = SPEC.exec(header.trim());
  // RFC 9110 section 14.2: a server MAY ignore the Range header field
  if (!m) return { kind: 'full' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    // suffix range: the last N bytes
    const n = Number(b);
    if (n === 0) return { kind: 'unsatisfiable' };
    return size === 0 ? { kind: 'unsatisfiable' } : { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return { kind: 'full' }; // invalid range-spec: ignore it (section 14.1.1)
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}
