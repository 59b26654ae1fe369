/**
 * ELF facts an image build needs (src/images/elf.ts), read without running
 * anything: from real programs of this machine, and from an AArch64 file
 * built here byte by byte (a program of another architecture, the case of
 * issue 25: the build host cannot run it, so it must read it).
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { EM_AARCH64, EM_X86_64, bufferReader, readElf } from '../../src/images/elf.js';

/**
 * A minimal ELF-64 LE file: one PT_LOAD mapping the whole file at vaddr
 * 0x400000, a PT_INTERP, a PT_DYNAMIC with DT_NEEDED entries, DT_RUNPATH and
 * DT_STRTAB (as a virtual address) pointing at a string table.
 */
function craft(machine: number, interp: string | null, needed: readonly string[], runpath?: string): Buffer {
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

describe('ELF facts for copy_exec', () => {
  it('an AArch64 program: machine, its loader, DT_NEEDED in order, DT_RUNPATH', async () => {
    const f = craft(EM_AARCH64, '/lib/ld-linux-aarch64.so.1', ['libjq.so.1', 'libc.so.6'], '$ORIGIN/../lib');
    expect(await readElf(bufferReader(f))).toEqual({ machine: EM_AARCH64, interpreter: '/lib/ld-linux-aarch64.so.1', needed: ['libjq.so.1', 'libc.so.6'], runpath: ['$ORIGIN/../lib'] });
  });

  it('a library has no interpreter; a static program has neither interpreter nor DT_NEEDED', async () => {
    expect(await readElf(bufferReader(craft(EM_AARCH64, null, ['libc.so.6'])))).toMatchObject({ interpreter: null, needed: ['libc.so.6'] });
    expect(await readElf(bufferReader(craft(EM_X86_64, null, [])))).toEqual({ machine: EM_X86_64, interpreter: null, needed: [], runpath: [] });
  });

  it('not ELF is null; 32-bit or damaged files are errors naming the file', async () => {
    expect(await readElf(bufferReader(Buffer.from('#!/bin/sh\necho hi\n')))).toBeNull();
    const elf32 = craft(EM_X86_64, null, []);
    elf32[4] = 1;
    await expect(readElf(bufferReader(elf32), 'x32')).rejects.toThrow(/^x32: only 64-bit little-endian ELF files/);
    const cut = craft(EM_AARCH64, '/lib/ld-linux-aarch64.so.1', ['libc.so.6']).subarray(0, 100);
    await expect(readElf(bufferReader(cut), 'cut')).rejects.toThrow(/^cut: truncated program headers/);
  });

  it('agrees with the system\'s own loader on a real program of this machine', async () => {
    const info = await readElf(bufferReader(await readFile('/usr/bin/ssh')));
    expect(info?.machine).toBe(EM_X86_64);
    expect(info?.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
    // ld.so --list (transitive) holds every direct DT_NEEDED
    const listed = execFileSync('/lib64/ld-linux-x86-64.so.2', ['--list', '/usr/bin/ssh'], { encoding: 'utf8' });
    for (const n of info?.needed ?? []) expect(listed).toContain(`${n} => `);
    expect(info?.needed).toContain('libc.so.6');
  });
});
