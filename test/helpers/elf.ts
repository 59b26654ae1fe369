/** ELF files built byte by byte for tests (a program or library of another architecture). */
/**
 * A minimal ELF-64 LE file: one PT_LOAD mapping the whole file at vaddr
 * 0x400000, a PT_INTERP, a PT_DYNAMIC with DT_NEEDED entries, DT_RUNPATH and
 * DT_STRTAB (as a virtual address) pointing at a string table.
 */
export function craftElf(machine: number, interp: string | null, needed: readonly string[], runpath?: string): Buffer {
  const strings = ['', ...needed, ...(runpath !== undefined ? [runpath] : [])];
  const strtab = Buffer.from(`${strings.join('\0')}\0`, 'latin1');
  const offsetOf = (s: string): number => Buffer.byteLength(`${strings.slice(0, strings.indexOf(s)).join('\0')}\0`, 'latin1');
  const phnum = interp === null ? 2 : 3;
  const phoff = 64;
  const interpOff = phoff + 56 * phnum;
  const interpBytes = Buffer.from(`${interp ?? ''}\0`, 'latin1');
  const strOff = interpOff + interpBytes.length;
  const dynOff = (strOff + strtab.length + 7) & ~7;
  const dyn: [bigint, bigint][] = [...needed.map((n) => [1n, BigInt(offsetOf(n))] as [bigint, bigint]), ...(runpath !== undefined ? [[29n, BigInt(offsetOf(runpath))] as [bigint, bigint]] : []), [5n, BigInt(0x400000 + strOff)], [0n, 0n]];
  const size = dynOff + dyn.length * 16;
  const b = Buffer.alloc(size);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(3, 0x10); // ET_DYN
  b.writeUInt16LE(machine, 0x12);
  b.writeBigUInt64LE(BigInt(phoff), 0x20);
  b.writeUInt16LE(64, 0x34);
  b.writeUInt16LE(56, 0x36);
  b.writeUInt16LE(phnum, 0x38);
  const ph = (i: number, type: number, off: number, vaddr: number, filesz: number): void => {
    const o = phoff + i * 56;
    b.writeUInt32LE(type, o);
    b.writeBigUInt64LE(BigInt(off), o + 8);
    b.writeBigUInt64LE(BigInt(vaddr), o + 16);
    b.writeBigUInt64LE(BigInt(filesz), o + 32);
  };
  ph(0, 1, 0, 0x400000, size); // PT_LOAD
  ph(1, 2, dynOff, 0x400000 + dynOff, dyn.length * 16); // PT_DYNAMIC
  if (interp !== null) ph(2, 3, interpOff, 0x400000 + interpOff, interpBytes.length); // PT_INTERP
  interpBytes.copy(b, interpOff);
  strtab.copy(b, strOff);
  dyn.forEach(([t, v], i) => {
    b.writeBigInt64LE(t, dynOff + i * 16);
    b.writeBigUInt64LE(v, dynOff + i * 16 + 8);
  });
  return b;
}

