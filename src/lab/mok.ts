/**
 * A machine owner key enrolled in a lab VM's UEFI variable store, as
 * `mokutil --import` and MokManager leave it on a server: the `MokList`
 * variable (shim's GUID, non-volatile, boot services only) holding an
 * EFI_SIGNATURE_LIST with one X.509 certificate. shim mirrors it to
 * `MokListRT` for the kernel, which then trusts modules signed with that key.
 * MokManager's confirmation at the console is interactive; the lab writes
 * the variable into the VM's own copy of OVMF_VARS instead. Pure.
 *
 * The store is edk2's authenticated variable store behind the firmware
 * volume header (MdeModulePkg/Include/Guid/VariableFormat.h): 60-byte
 * variable headers (StartId 0x55AA), the UTF-16 name right after the header,
 * the data right after the name, the next header 4-byte aligned, free space
 * 0xFF.
 */

/** EFI GUIDs as stored: the first three fields little-endian. */
function guid(text: string): Buffer {
  const h = text.replace(/-/g, '');
  const b = Buffer.from(h, 'hex');
  return Buffer.concat([Buffer.from(b.subarray(0, 4)).reverse(), Buffer.from(b.subarray(4, 6)).reverse(), Buffer.from(b.subarray(6, 8)).reverse(), b.subarray(8)]);
}

export const SHIM_LOCK_GUID = guid('605dab50-e046-4300-abb6-3dd810dd8b23');
const EFI_CERT_X509_GUID = guid('a5c059a1-94e4-4aa7-87b5-ab155c2bf072');
const AUTH_VARIABLE_STORE_GUID = guid('aaf32c78-947b-439a-a180-2e144ec37792');
const START_ID = 0x55aa;
const VAR_ADDED = 0x3f;
const HEADER_BYTES = 60;
const EFI_VARIABLE_NON_VOLATILE = 0x1;
const EFI_VARIABLE_BOOTSERVICE_ACCESS = 0x2;

/** One EFI_SIGNATURE_LIST of one X.509 certificate, owned by shim (as MokManager writes MokList). */
export function x509SignatureList(certDer: Buffer, owner: Buffer = SHIM_LOCK_GUID): Buffer {
  const head = Buffer.alloc(28);
  EFI_CERT_X509_GUID.copy(head, 0);
  head.writeUInt32LE(28 + 16 + certDer.length, 16); // SignatureListSize
  head.writeUInt32LE(0, 20); // SignatureHeaderSize
  head.writeUInt32LE(16 + certDer.length, 24); // SignatureSize: owner + data
  return Buffer.concat([head, owner, certDer]);
}

export interface StoredVariable {
  readonly name: string;
  readonly vendor: Buffer;
  readonly attributes: number;
  readonly state: number;
  readonly data: Buffer;
  readonly offset: number;
}

/** Where the variable store starts (after the firmware volume header) and how big it is; throws when it is not one. */
function storeOf(vars: Buffer): { start: number; end: number } {
  if (vars.length < 0x48 || vars.readUInt32LE(0x28) !== 0x4856465f) throw new Error('not a UEFI variable store: no _FVH firmware volume header');
  const start = vars.readUInt16LE(0x30);
  if (!vars.subarray(start, start + 16).equals(AUTH_VARIABLE_STORE_GUID)) throw new Error('not an authenticated variable store (OVMF_VARS of edk2)');
  return { start, end: start + vars.readUInt32LE(start + 16) };
}

/** Every variable record in the store, deleted ones too (state tells), and where free space begins. */
export function readVariables(vars: Buffer): { variables: StoredVariable[]; free: number } {
  const { start, end } = storeOf(vars);
  const variables: StoredVariable[] = [];
  let at = start + 28;
  while (at + HEADER_BYTES <= end && vars.readUInt16LE(at) === START_ID) {
    const nameSize = vars.readUInt32LE(at + 36);
    const dataSize = vars.readUInt32LE(at + 40);
    const nameAt = at + HEADER_BYTES;
    const dataAt = nameAt + nameSize;
    variables.push({
      name: vars.subarray(nameAt, dataAt).toString('utf16le').replace(/\0+$/, ''),
      vendor: vars.subarray(at + 44, at + 60),
      attributes: vars.readUInt32LE(at + 4),
      state: vars[at + 2] as number,
      data: vars.subarray(dataAt, dataAt + dataSize),
      offset: at,
    });
    at = (dataAt + dataSize + 3) & ~3;
  }
  return { variables, free: at };
}

/** A copy of the store with MokList holding this certificate (DER) appended, as MokManager would leave it. */
export function withMokList(vars: Buffer, certDer: Buffer): Buffer {
  const { variables, free } = readVariables(vars);
  const { end } = storeOf(vars);
  if (variables.some((v) => v.name === 'MokList' && v.vendor.equals(SHIM_LOCK_GUID) && v.state === VAR_ADDED)) throw new Error('the store has a MokList already');
  const name = Buffer.from('MokList\0', 'utf16le');
  const data = x509SignatureList(certDer);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16LE(START_ID, 0);
  header[2] = VAR_ADDED;
  // NV and boot services only: shim refuses (deletes) a MokList the OS could have written at runtime
  header.writeUInt32LE(EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS, 4);
  header.writeUInt32LE(name.length, 36);
  header.writeUInt32LE(data.length, 40);
  SHIM_LOCK_GUID.copy(header, 44);
  const record = Buffer.concat([header, name, data]);
  if (free + record.length > end || !vars.subarray(free, free + record.length).every((b) => b === 0xff)) throw new Error(`no free space for MokList (${record.length} bytes) in the variable store`);
  const out = Buffer.from(vars);
  record.copy(out, free);
  return out;
}
