/**
 * A machine owner key written into a UEFI variable store (src/lab/mok.ts):
 * the EFI_SIGNATURE_LIST layout, and MokList appended to Debian's own
 * OVMF_VARS with every variable before it kept. The lab boot that shows shim
 * and the kernel reading it is in test/lab/netboot.test.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SHIM_LOCK_GUID, readVariables, withMokList, x509SignatureList } from '../../src/lab/mok.js';
import { OVMF_VARS_MS } from '../../src/lab/qemu.js';

const cert = Buffer.from('3082010a0282010100c0ffee', 'hex'); // bytes standing in for a DER certificate

describe('MokList in a UEFI variable store', () => {
  it('is one EFI_SIGNATURE_LIST of type X.509, owned by shim, sizes as UEFI 2.x section 32.4.1 gives them', () => {
    const l = x509SignatureList(cert);
    expect(l.subarray(0, 16).toString('hex')).toBe('a159c0a5e494a74a87b5ab155c2bf072'); // EFI_CERT_X509_GUID as stored
    expect(l.readUInt32LE(16)).toBe(l.length);
    expect(l.readUInt32LE(20)).toBe(0);
    expect(l.readUInt32LE(24)).toBe(16 + cert.length);
    expect(l.subarray(28, 44).equals(SHIM_LOCK_GUID)).toBe(true);
    expect(SHIM_LOCK_GUID.toString('hex')).toBe('50ab5d6046e00043abb63dd810dd8b23'); // 605dab50-e046-4300-abb6-3dd810dd8b23
    expect(l.subarray(44).equals(cert)).toBe(true);
  });

  it('refuses what is not an edk2 variable store', () => {
    expect(() => withMokList(Buffer.alloc(4096, 0xff), cert)).toThrow(/not a UEFI variable store/);
  });

  it.skipIf(!existsSync(OVMF_VARS_MS))('is appended to Debian\'s OVMF_VARS (Secure Boot keys enrolled) after the last variable, NV and boot services only, nothing else changed', () => {
    const vars = readFileSync(OVMF_VARS_MS);
    const before = readVariables(vars);
    expect(before.variables.map((v) => v.name)).toEqual(expect.arrayContaining(['PK', 'KEK', 'db', 'dbx', 'SecureBootEnable']));
    const out = withMokList(vars, cert);
    expect(out.length).toBe(vars.length);
    expect(out.subarray(0, before.free).equals(vars.subarray(0, before.free))).toBe(true);
    const after = readVariables(out);
    expect(after.variables.length).toBe(before.variables.length + 1);
    const mok = after.variables.at(-1);
    expect(mok?.name).toBe('MokList');
    expect(mok?.vendor.equals(SHIM_LOCK_GUID)).toBe(true);
    expect(mok?.attributes).toBe(0x3);
    expect(mok?.state).toBe(0x3f);
    expect(mok?.data.equals(x509SignatureList(cert))).toBe(true);
    expect(after.free).toBeGreaterThan(before.free);
    expect(out.subarray(after.free, after.free + 64).every((b) => b === 0xff)).toBe(true);
    expect(() => withMokList(out, cert)).toThrow(/has a MokList already/);
  });
});
