/**
 * RFC 1350 netascii (RFC 764 NVT ASCII) for reads: LF becomes CR LF and a
 * bare CR becomes CR NUL. Pure.
 */
export function toNetascii(input: Buffer): Buffer {
  const extra = lineEnds(input, 0, input.length);
  if (extra === 0) return input;
  const out = Buffer.allocUnsafe(input.length + extra);
  convert(input, 0, input.length, out, 0);
  return out;
}

/** LF and CR bytes in input[start, end): each becomes two bytes. */
function lineEnds(input: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = input[i];
    if (c === 0x0a || c === 0x0d) n++;
  }
  return n;
}

/** Converts input[start, end) into out at `o`; returns the next output offset. */
function convert(input: Buffer, start: number, end: number, out: Buffer, o: number): number {
  for (let i = start; i < end; i++) {
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
  return o;
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

/** Bytes converted per step of toNetasciiYielding before the event loop gets a turn. */
const STEP_BYTES = 1 << 20;

/**
 * toNetascii in steps of STEP_BYTES with the event loop served in between
 * (`yieldFn`, setImmediate by default): a large text file does not hold up
 * DHCP and the other transfers while it is converted.
 */
export async function toNetasciiYielding(input: Buffer, yieldFn: () => Promise<void> = () => new Promise((r) => setImmediate(r))): Promise<Buffer> {
  let extra = 0;
  for (let start = 0; start < input.length; start += STEP_BYTES) {
    const end = Math.min(input.length, start + STEP_BYTES);
    extra += lineEnds(input, start, end);
    if (end < input.length) await yieldFn();
  }
  if (extra === 0) return input;
  const out = Buffer.allocUnsafe(input.length + extra);
  let o = 0;
  for (let start = 0; start < input.length; start += STEP_BYTES) {
    const end = Math.min(input.length, start + STEP_BYTES);
    o = convert(input, start, end, out, o);
    if (end < input.length) await yieldFn();
  }
  return out;
}

/**
 * Netascii copies of files, shared by every transfer of the same file
 * version (path, size, mtime) while any of them runs: forty concurrent
 * netascii reads of one file cost one conversion and one copy, not forty.
 * The copy is dropped when its last reader releases it.
 */
export class NetasciiShare {
  private readonly entries = new Map<string, { readonly buf: Promise<Buffer>; users: number }>();

  /** The converted bytes and a release function; `load` gives the raw bytes, called once per version. */
  async get(key: string, load: () => Promise<Buffer>): Promise<{ buf: Buffer; release: () => void }> {
    let e = this.entries.get(key);
    if (!e) {
      const created = { buf: load().then((raw) => toNetasciiYielding(raw)), users: 0 };
      e = created;
      this.entries.set(key, created);
      created.buf.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    e.users++;
    const entry = e;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (--entry.users === 0 && this.entries.get(key) === entry) this.entries.delete(key);
    };
    try {
      return { buf: await entry.buf, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Versions held now (for tests). */
  get size(): number {
    return this.entries.size;
  }
}
