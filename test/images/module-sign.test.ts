/**
 * Module signatures as the kernel reads them (src/images/module-sign.ts):
 * the trailer's layout, signing with a key made here, the signature checked
 * by openssl against the module's own bytes, certificates in PEM and DER.
 * A real module signed and read back by kmod's modinfo is in
 * test/images/real-build.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildLog } from '../../src/images/build-log.js';
import { MODULE_SIG_MAGIC, keyPlaceProblem, readSigner, signModule, signatureTrailer, unsignedLength } from '../../src/images/module-sign.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!hasOpenssl) console.warn('SKIPPED module signing with a real key: no openssl on this machine (scripts/setup.sh installs it)');

describe('module signature trailer', () => {
  it('is struct module_signature (PKCS#7, signature length big-endian) and the magic, as sign-file writes it', () => {
    const t = signatureTrailer(0x1234);
    expect(t.length).toBe(12 + MODULE_SIG_MAGIC.length);
    expect([...t.subarray(0, 8)]).toEqual([0, 0, 2, 0, 0, 0, 0, 0]);
    expect(t.readUInt32BE(8)).toBe(0x1234);
    expect(t.subarray(12).toString('latin1')).toBe('~Module signature appended~\n');
  });

  it('finds where a signed module\'s own bytes end, and says when there is no signature', () => {
    const body = Buffer.from('\x7fELF module bytes');
    const sig = Buffer.alloc(300, 7);
    expect(unsignedLength(Buffer.concat([body, sig, signatureTrailer(sig.length)]))).toBe(body.length);
    expect(unsignedLength(body)).toBeNull();
    // a length that points before the file's start is not a signature
    expect(unsignedLength(Buffer.concat([body, signatureTrailer(10_000)]))).toBeNull();
  });

  it('refuses a key inside the image catalog (served, often committed), takes one outside', () => {
    expect(keyPlaceProblem('/srv/bootd/images', '/srv/bootd/images/bee/MOK.priv')).toMatch(/inside the image catalog \/srv\/bootd\/images/);
    expect(keyPlaceProblem('/srv/bootd/images', '/srv/bootd/images-keys/MOK.priv')).toBeNull();
    expect(keyPlaceProblem('/srv/bootd/images', '/etc/bootd/mok/MOK.priv')).toBeNull();
  });
});

describe.skipIf(!hasOpenssl)('signing with a machine owner key (openssl)', () => {
  let dir: string;
  let log: BuildLog;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'bootd-modsign-'));
    log = new BuildLog(path.join(dir, 'build.log'));
    // what `mokutil` users make: a self-signed certificate for code signing, and its DER form to enrol
    execFileSync('openssl', ['req', '-new', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '36500', '-subj', '/CN=bootd test modules/O=bootd', '-keyout', path.join(dir, 'MOK.priv'), '-out', path.join(dir, 'MOK.pem')], { stdio: 'pipe' });
    execFileSync('openssl', ['x509', '-in', path.join(dir, 'MOK.pem'), '-outform', 'DER', '-out', path.join(dir, 'MOK.der')]);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('appends a detached signature that openssl verifies over exactly the module\'s bytes, and will not sign twice', async () => {
    const mod = path.join(dir, 'm.ko');
    const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) & 255));
    writeFileSync(mod, body);
    const { pem } = await readSigner(log, path.join(dir, 'MOK.der'), dir);
    await signModule(log, mod, path.join(dir, 'MOK.priv'), pem);
    const signed = readFileSync(mod);
    const end = unsignedLength(signed);
    expect(end).toBe(body.length);
    expect(signed.subarray(0, body.length).equals(body)).toBe(true);
    const sigLen = signed.readUInt32BE(signed.length - MODULE_SIG_MAGIC.length - 4);
    writeFileSync(path.join(dir, 'sig.der'), signed.subarray(body.length, body.length + sigLen));
    writeFileSync(path.join(dir, 'content'), body);
    const verify = (content: string) => spawnSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', path.join(dir, 'sig.der'), '-content', content, '-certfile', path.join(dir, 'MOK.pem'), '-CAfile', path.join(dir, 'MOK.pem'), '-purpose', 'any', '-out', '/dev/null'], { encoding: 'utf8' });
    expect(verify(path.join(dir, 'content')).status, verify(path.join(dir, 'content')).stderr).toBe(0);
    // one byte changed: the signature no longer holds
    const tampered = Buffer.from(body);
    tampered[100] = (tampered[100] as number) ^ 1;
    writeFileSync(path.join(dir, 'tampered'), tampered);
    expect(verify(path.join(dir, 'tampered')).status).not.toBe(0);
    // sign-file's choices: SHA-256, no signed attributes, no certificate inside
    const asn1 = execFileSync('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', path.join(dir, 'sig.der')], { encoding: 'utf8' });
    expect(asn1).toMatch(/algorithm: sha256/);
    expect(asn1).toMatch(/signedAttrs:\s*<ABSENT>/);
    expect(asn1).toMatch(/certificates:\s*<ABSENT>/);
    await expect(signModule(log, mod, path.join(dir, 'MOK.priv'), pem)).rejects.toThrow(/signed already/);
  });

  it('reads the certificate from PEM or DER with the subject and the fingerprint mokutil shows', async () => {
    const der = await readSigner(log, path.join(dir, 'MOK.der'), path.join(dir));
    const fromPem = await readSigner(log, path.join(dir, 'MOK.pem'), path.join(dir));
    expect(der.signer).toEqual(fromPem.signer);
    expect(der.signer.subject).toBe('O=bootd,CN=bootd test modules');
    const fp = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', path.join(dir, 'MOK.der'), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    expect(der.signer.sha256).toBe(/=([0-9A-F:]+)/.exec(fp)?.[1]?.replace(/:/g, '').toLowerCase());
  });

  it('a key that does not match the certificate fails the build with openssl\'s reason', async () => {
    execFileSync('openssl', ['genrsa', '-out', path.join(dir, 'other.priv'), '2048'], { stdio: 'pipe' });
    writeFileSync(path.join(dir, 'n.ko'), Buffer.from('module'));
    const { pem } = await readSigner(log, path.join(dir, 'MOK.pem'), dir);
    await expect(signModule(log, path.join(dir, 'n.ko'), path.join(dir, 'other.priv'), pem)).rejects.toThrow(/openssl cms -sign.*exited with/s);
    expect(readFileSync(path.join(dir, 'n.ko'), 'utf8')).toBe('module');
  });
});
