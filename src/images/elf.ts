/**
 * What an image build needs to know of a program, read from its ELF headers
 * instead of running anything (so a build host can assemble an image of
 * another architecture: issue 25). Pure: bytes in, facts out.
 *
 * ELF-64 little-endian only (x86-64 and AArch64 are both): the machine
 * (e_machine), the interpreter (PT_INTERP, the dynamic loader the kernel
 * starts), and from the dynamic section (PT_DYNAMIC) the DT_NEEDED names and
 * DT_RUNPATH / DT_RPATH, whose string offsets index DT_STRTAB, a virtual
 * address mapped to the file through the PT_LOAD segments (System V ABI,
 * "Dynamic Section"; elf(5)).
 */

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

export interface ElfInfo {
  readonly machine: number;
  /** PT_INTERP: null for static programs (busybox-static) and for libraries. */
  readonly interpreter: string | null;
  /** DT_NEEDED, in order. */
  readonly needed: readonly string[];
  /** DT_RUNPATH, else DT_RPATH, split on ':'. */
  readonly runpath: readonly string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

/** Reads `length` bytes at `offset` (a file, or a buffer in tests). */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

/** null: not an ELF file. Throws for an ELF file this reader does not handle (32-bit, big-endian) or a damaged one. */
export async function readElf(read: ReadAt, name = 'file'): Promise<ElfInfo | null> {
  const eh = await read(0, 64);
  if (eh.length < 16 || eh.readUInt32BE(0) !== 0x7f454c46) return null;
  if (eh[4] !== 2 || eh[5] !== 1) throw new Error(`${name}: only 64-bit little-endian ELF files are supported (x86-64, AArch64)`);
  if (eh.length < 64) throw new Error(`${name}: truncated ELF header`);
  const machine = eh.readUInt16LE(0x12);
  const phoff = Number(eh.readBigUInt64LE(0x20));
  const phentsize = eh.readUInt16LE(0x36);
  const phnum = eh.readUInt16LE(0x38);
  if (phentsize < 56 || phnum > 4096) throw new Error(`${name}: implausible program headers (${phnum} of ${phentsize} bytes)`);
  const ph = await read(phoff, phentsize * phnum);
  if (ph.length < phentsize * phnum) throw new Error(`${name}: truncated program headers`);
  const loads: { vaddr: bigint; offset: bigint; filesz: bigint }[] = [];
  let interpreter: string | null = null;
  let dynamic: { offset: number; size: number } | null = null;
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    const type = ph.readUInt32LE(o);
    const offset = ph.readBigUInt64LE(o + 8);
    const vaddr = ph.readBigUInt64LE(o + 16);
    const filesz = ph.readBigUInt64LE(o + 32);
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (type === PT_INTERP) interpreter = (await read(Number(offset), Math.min(Number(filesz), 4096))).toString('latin1').replace(/\0.*$/s, '');
    else if (type === PT_DYNAMIC) dynamic = { offset: Number(offset), size: Math.min(Number(filesz), 1 << 20) };
  }
  if (!dynamic) return { machine, interpreter, needed: [], runpath: [] };
  const dyn = await read(dynamic.offset, dynamic.size);
  const neededAt: bigint[] = [];
  let strtab: bigint | null = null;
  let runpathAt: bigint | null = null;
  let rpathAt: bigint | null = null;
  for (let o = 0; o + 16 <= dyn.length; o += 16) {
    const tag = dyn.readBigInt64LE(o);
    const val = dyn.readBigUInt64LE(o + 8);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededAt.push(val);
    else if (tag === DT_STRTAB) strtab = val;
    else if (tag === DT_RUNPATH) runpathAt = val;
    else if (tag === DT_RPATH) rpathAt = val;
  }
  if (neededAt.length === 0 && runpathAt === null && rpathAt === null) return { machine, interpreter, needed: [], runpath: [] };
  if (strtab === null) throw new Error(`${name}: dynamic section without DT_STRTAB`);
  const seg = loads.find((l) => strtab !== null && strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
  if (!seg) throw new Error(`${name}: DT_STRTAB 0x${strtab.toString(16)} is in no loaded segment`);
  const strtabOffset = Number(strtab - seg.vaddr + seg.offset);
  const str = async (at: bigint): Promise<string> => {
    const b = await read(strtabOffset + Number(at), 4096);
    const end = b.indexOf(0);
    if (end < 0) throw new Error(`${name}: unterminated string in DT_STRTAB`);
    return b.toString('latin1', 0, end);
  };
  const needed: string[] = [];
  for (const at of neededAt) needed.push(await str(at));
  const rp = runpathAt ?? rpathAt;
  const runpath = rp === null ? [] : (await str(rp)).split(':').filter((p) => p !== '');
  return { machine, interpreter, needed, runpath };
}

/** readElf over a buffer (tests, small files). */
export function bufferReader(b: Buffer): ReadAt {
  return async (offset, length) => b.subarray(offset, Math.min(b.length, offset + length));
}
