/**
 * Kernel module signatures, as the kernel's module loader checks them under
 * Secure Boot (lockdown enforces them): a detached PKCS#7 (CMS) signature of
 * the module's bytes, then `struct module_signature`, then the magic string
 * (Linux scripts/sign-file.c, include/linux/module_signature.h,
 * kernel/module/signing.c). This is what DKMS does with its machine owner key
 * (MOK): the operator enrols the certificate once per server with `mokutil
 * --import`, and the kernel then trusts modules signed with its key.
 *
 * The signature is made by the build host's openssl with sign-file's own
 * choices: SHA-256, no signed attributes, no certificates in the message, the
 * signer named by issuer and serial number, binary content.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { run, type BuildLog } from './build-log.js';

/** Ends every signed module (include/linux/module_signature.h MODULE_SIG_STRING, with its newline). */
export const MODULE_SIG_MAGIC = '~Module signature appended~\n';
/** struct module_signature: algo, hash, id_type, signer_len, key_id_len, 3 bytes of padding, be32 sig_len. */
const SIG_INFO_BYTES = 12;
/** id_type PKEY_ID_PKCS7: the only kind the kernel accepts (the algorithm is inside the PKCS#7). */
const PKEY_ID_PKCS7 = 2;

/** The bytes appended to a module after its signature: the info block and the magic. Pure. */
export function signatureTrailer(signatureBytes: number): Buffer {
  const info = Buffer.alloc(SIG_INFO_BYTES);
  info[2] = PKEY_ID_PKCS7;
  info.writeUInt32BE(signatureBytes, 8);
  return Buffer.concat([info, Buffer.from(MODULE_SIG_MAGIC, 'latin1')]);
}

/** Bytes at the end of a signed module after its signature: the info block and the magic. */
const TRAILER_BYTES = SIG_INFO_BYTES + MODULE_SIG_MAGIC.length;

/** The signature's length from a module's last TRAILER_BYTES (or more), or null when they are no PKCS#7 trailer. Pure. */
function signatureLength(end: Buffer): number | null {
  if (end.length < TRAILER_BYTES) return null;
  const t = end.subarray(end.length - TRAILER_BYTES);
  if (t.subarray(SIG_INFO_BYTES).toString('latin1') !== MODULE_SIG_MAGIC || t[2] !== PKEY_ID_PKCS7) return null;
  return t.readUInt32BE(8);
}

/** Where a module's own bytes end (before any appended signature), or null when it carries none. Pure. */
export function unsignedLength(module: Buffer): number | null {
  const sigLen = signatureLength(module);
  if (sigLen === null) return null;
  const start = module.length - TRAILER_BYTES - sigLen;
  return start >= 0 ? start : null;
}

/**
 * Why a signing key may not be used from where it is, or null: a key inside
 * the image catalog (served over HTTP by an image origin, usually a git
 * checkout) would be published with the images. Pure.
 */
export function keyPlaceProblem(catalogDir: string, keyFile: string): string | null {
  const rel = path.relative(path.resolve(catalogDir), path.resolve(keyFile));
  if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return `nvidia: sign: key: ${keyFile} is inside the image catalog ${catalogDir}, which is served and often committed: keep the private key outside it`;
}

/** The signing certificate as recorded in a manifest. */
export interface ModuleSigner {
  /** Its subject, RFC 2253 form (`CN=bee modules,O=Example`). */
  readonly subject: string;
  /** SHA-256 of its DER form: what `mokutil --list-enrolled` shows as the fingerprint. */
  readonly sha256: string;
}

/**
 * Reads the certificate (PEM or DER, as mokutil wants it) into PEM under
 * `work` for openssl, with the subject and fingerprint for the manifest.
 */
export async function readSigner(log: BuildLog, certFile: string, work: string): Promise<{ pem: string; signer: ModuleSigner }> {
  const head = (await fs.readFile(certFile)).subarray(0, 64).toString('latin1');
  const pem = path.join(work, 'module-signer.pem');
  await run(log, 'openssl', ['x509', '-inform', head.includes('-----BEGIN') ? 'PEM' : 'DER', '-in', certFile, '-out', pem]);
  const out = await run(log, 'openssl', ['x509', '-in', pem, '-noout', '-nameopt', 'RFC2253', '-subject', '-fingerprint', '-sha256'], { capture: true });
  const subject = /^subject=\s*(.*)$/m.exec(out)?.[1]?.trim() ?? '';
  const fp = /Fingerprint=([0-9A-F:]+)/i.exec(out)?.[1] ?? '';
  return { pem, signer: { subject, sha256: fp.replace(/:/g, '').toLowerCase() } };
}

/**
 * Signs a module file in place with the key and certificate (PEM). A module
 * that is signed already is refused: a second signature appended after the
 * first would not be read by the kernel (it reads the last one and hashes
 * everything before it, the first signature included).
 */
export async function signModule(log: BuildLog, file: string, keyFile: string, certPem: string): Promise<void> {
  // only the trailer is read (nvidia.ko is 65 MB)
  const h = await fs.open(file, 'r');
  try {
    const size = (await h.stat()).size;
    const tail = Buffer.alloc(Math.min(size, TRAILER_BYTES));
    await h.read(tail, 0, tail.length, size - tail.length);
    if (signatureLength(tail) !== null) throw new Error(`${path.basename(file)} is signed already`);
  } finally {
    await h.close();
  }
  const sig = `${file}.p7s`;
  try {
    await run(log, 'openssl', ['cms', '-sign', '-binary', '-noattr', '-nocerts', '-nosmimecap', '-md', 'sha256', '-outform', 'DER', '-signer', certPem, '-inkey', keyFile, '-in', file, '-out', sig]);
    const signature = await fs.readFile(sig);
    await fs.appendFile(file, Buffer.concat([signature, signatureTrailer(signature.length)]));
  } finally {
    await fs.rm(sig, { force: true });
  }
}
