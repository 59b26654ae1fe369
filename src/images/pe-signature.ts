/**
 * Is a kernel (an EFI-stub bzImage, a PE/COFF file) signed for Secure Boot?
 * Reads the PE header's certificate table (PE/COFF specification, "The
 * Attribute Certificate Table (Image Only)": data directory 4, a file
 * offset, not an RVA) and the signers' names from the Authenticode
 * PKCS#7 SignedData (RFC 5652 section 5.1) inside it.
 *
 * This says a signature is present and whose it is; it does not verify it
 * (shim does that at boot, against its own keys). Debian's signed kernels
 * (linux-image-*-amd64 from linux-signed-amd64, the cloud flavour too) carry
 * "Debian Secure Boot Signer"; the -unsigned packages carry none.
 */
import { X509Certificate } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export type PeSignature =
  | { readonly pe: false; readonly reason: string }
  | { readonly pe: true; readonly signed: boolean; readonly signers: readonly string[] };

const WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002;
const CERT_TABLE_INDEX = 4;

/** Where the certificate table is, from the first bytes of the file (4 KiB hold every header). */
export function certificateTable(head: Buffer): { offset: number; size: number } | { reason: string } {
  if (head.length < 0x40 || head.readUInt16LE(0) !== 0x5a4d) return { reason: 'no MZ header' };
  const pe = head.readUInt32LE(0x3c);
  if (pe + 24 + 2 > head.length || head.readUInt32LE(pe) !== 0x00004550) return { reason: 'no PE header' };
  const opt = pe + 24;
  const magic = head.readUInt16LE(opt);
  // PE32 (0x10b): directories at 96, PE32+ (0x20b): at 112; NumberOfRvaAndSizes just before
  const dirs = magic === 0x20b ? opt + 112 : magic === 0x10b ? opt + 96 : -1;
  if (dirs < 0) return { reason: `unknown optional header magic 0x${magic.toString(16)}` };
  if (dirs + 8 * (CERT_TABLE_INDEX + 1) > head.length) return { reason: 'truncated PE header' };
  const count = head.readUInt32LE(dirs - 4);
  if (count <= CERT_TABLE_INDEX) return { offset: 0, size: 0 };
  return { offset: head.readUInt32LE(dirs + 8 * CERT_TABLE_INDEX), size: head.readUInt32LE(dirs + 8 * CERT_TABLE_INDEX + 4) };
}

/** The signature of a whole PE image in memory. */
export function peSignature(file: Buffer): PeSignature {
  const t = certificateTable(file.subarray(0, 4096));
  if ('reason' in t) return { pe: false, reason: t.reason };
  if (t.size === 0) return { pe: true, signed: false, signers: [] };
  if (t.offset + t.size > file.length) return { pe: false, reason: 'certificate table past the end of the file' };
  return fromTable(file.subarray(t.offset, t.offset + t.size));
}

/** The same, reading only the header and the certificate table of a file on disk. */
export function peSignatureOfFile(path: string): PeSignature {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(4096);
    const n = readSync(fd, head, 0, head.length, 0);
    const t = certificateTable(head.subarray(0, n));
    if ('reason' in t) return { pe: false, reason: t.reason };
    if (t.size === 0) return { pe: true, signed: false, signers: [] };
    if (t.offset + t.size > fstatSync(fd).size || t.size > 1 << 20) return { pe: false, reason: 'certificate table past the end of the file' };
    const table = Buffer.alloc(t.size);
    readSync(fd, table, 0, t.size, t.offset);
    return fromTable(table);
  } finally {
    closeSync(fd);
  }
}

/** WIN_CERTIFICATE entries (8-byte aligned), each a PKCS#7 SignedData for Authenticode. */
function fromTable(table: Buffer): PeSignature {
  const signers: string[] = [];
  let signed = false;
  for (let at = 0; at + 8 <= table.length; ) {
    const len = table.readUInt32LE(at);
    const type = table.readUInt16LE(at + 6);
    if (len < 8 || at + len > table.length) break;
    if (type === WIN_CERT_TYPE_PKCS_SIGNED_DATA) {
      signed = true;
      signers.push(...certificateSubjects(table.subarray(at + 8, at + len)));
    }
    at += (len + 7) & ~7;
  }
  return { pe: true, signed, signers };
}

interface Der {
  readonly tag: number;
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

function der(b: Buffer, at: number): Der | null {
  if (at + 2 > b.length) return null;
  const tag = b[at] as number;
  let len = b[at + 1] as number;
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || body + n > b.length) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[body + i] as number);
    body += n;
  }
  return body + len > b.length ? null : { tag, start: at, body, end: body + len };
}

function children(b: Buffer, d: Der): Der[] {
  const out: Der[] = [];
  for (let at = d.body; at < d.end; ) {
    const c = der(b, at);
    if (!c) break;
    out.push(c);
    at = c.end;
  }
  return out;
}

/**
 * ContentInfo { contentType, [0] { SignedData { version, digestAlgorithms,
 * encapContentInfo, [0] IMPLICIT certificates, ... } } }: the subjects'
 * common names of the certificates that are not CAs (the signers; the
 * chain's CA certificates, when included, are left out).
 */
function certificateSubjects(p7: Buffer): string[] {
  const ci = der(p7, 0);
  if (!ci || ci.tag !== 0x30) return [];
  const explicit = children(p7, ci)[1];
  if (!explicit || explicit.tag !== 0xa0) return [];
  const sd = children(p7, explicit)[0];
  if (!sd || sd.tag !== 0x30) return [];
  const certs = children(p7, sd).find((c) => c.tag === 0xa0);
  if (!certs) return [];
  const out: string[] = [];
  for (const c of children(p7, certs)) {
    try {
      const x = new X509Certificate(p7.subarray(c.start, c.end));
      if (x.ca) continue;
      const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
      out.push(cn ?? x.subject.replace(/\n/g, ', '));
    } catch {
      // not a certificate we can read: the signature is still there
    }
  }
  return out;
}
