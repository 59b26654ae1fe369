/**
 * RFC 1350 netascii (RFC 764 NVT ASCII) for reads: LF becomes CR LF and a
 * bare CR becomes CR NUL. Pure.
 */
export function toNetascii(input: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === 0x0a || c === 0x0d) extra++;
  }
  if (extra === 0) return input;
  const out = Buffer.allocUnsafe(input.length + extra);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i] as number;
    if (c === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (c === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else {
      out[o++] = c;
    }
  }
  return out;
}

/** Inverse, for writes: CR LF becomes LF, CR NUL becomes CR. */
export function fromNetascii(input: Buffer): Buffer {
  const out = Buffer.allocUnsafe(input.length);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i] as number;
    if (c === 0x0d && i + 1 < input.length) {
      const n = input[i + 1];
      if (n === 0x0a) {
        out[o++] = 0x0a;
        i++;
        continue;
      }
      if (n === 0x00) {
        out[o++] = 0x0d;
        i++;
        continue;
      }
    }
    out[o++] = c;
  }
  return out.subarray(0, o);
}
