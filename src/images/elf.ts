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
  /** DT_SONAME: the name programs ask the loader for (libnvidia-ml.so.1); null for programs. */
  readonly soname: string | null;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_SONAME = 14n;
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
  if (!dynamic) return { machine, interpreter, needed: [], runpath: [], soname: null };
  const dyn = await read(dynamic.offset, dynamic.size);
  const neededAt: bigint[] = [];
  let strtab: bigint | null = null;
  let runpathAt: bigint | null = null;
  let rpathAt: bigint | null = null;
  let sonameAt: bigint | null = null;
  for (let o = 0; o + 16 <= dyn.length; o += 16) {
    const tag = dyn.readBigInt64LE(o);
    const val = dyn.readBigUInt64LE(o + 8);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededAt.push(val);
    else if (tag === DT_STRTAB) strtab = val;
    else if (tag === DT_RUNPATH) runpathAt = val;
    else if (tag === DT_RPATH) rpathAt = val;
    else if (tag === DT_SONAME) sonameAt = val;
  }
  if (neededAt.length === 0 && runpathAt === null && rpathAt === null && sonameAt === null) return { machine, interpreter, needed: [], runpath: [], soname: null };
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
  return { machine, interpreter, needed, runpath, soname: sonameAt === null ? null : await str(sonameAt) };
}

const SHT_NOBITS = 8;

/**
 * The `.modinfo` section of a kernel module (`vermagic=…`, `depends=…`,
 * `license=…`: NUL-separated key=value strings, as modinfo(8) prints them),
 * found through the section headers (e_shoff, e_shstrndx). null: no such
 * section (not a module). Keys that repeat (alias) keep every value.
 */
export async function readModinfo(read: ReadAt, name = 'module'): Promise<Map<string, string[]> | null> {
  const eh = await read(0, 64);
  if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${name}: not an ELF file`);
  if (eh[4] !== 2 || eh[5] !== 1) throw new Error(`${name}: only 64-bit little-endian ELF files are supported`);
  const shoff = Number(eh.readBigUInt64LE(0x28));
  const shentsize = eh.readUInt16LE(0x3a);
  const shnum = eh.readUInt16LE(0x3c);
  const shstrndx = eh.readUInt16LE(0x3e);
  if (shentsize < 64 || shnum === 0 || shnum > 65535 || shstrndx >= shnum) throw new Error(`${name}: implausible section headers`);
  const sh = await read(shoff, shentsize * shnum);
  if (sh.length < shentsize * shnum) throw new Error(`${name}: truncated section headers`);
  const sec = (i: number) => ({ nameAt: sh.readUInt32LE(i * shentsize), type: sh.readUInt32LE(i * shentsize + 4), offset: Number(sh.readBigUInt64LE(i * shentsize + 24)), size: Number(sh.readBigUInt64LE(i * shentsize + 32)) });
  const names = sec(shstrndx);
  const strs = await read(names.offset, Math.min(names.size, 1 << 20));
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    const end = strs.indexOf(0, s.nameAt);
    if (strs.toString('latin1', s.nameAt, end < 0 ? strs.length : end) !== '.modinfo' || s.type === SHT_NOBITS) continue;
    const body = await read(s.offset, Math.min(s.size, 1 << 20));
    const out = new Map<string, string[]>();
    for (const entry of body.toString('latin1').split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const k = entry.slice(0, eq);
      out.set(k, [...(out.get(k) ?? []), entry.slice(eq + 1)]);
    }
    return out;
  }
  return null;
}

/** readElf over a buffer (tests, small files). */
export function bufferReader(b: Buffer): ReadAt {
  return async (offset, length) => b.subarray(offset, Math.min(b.length, offset + length));
}
