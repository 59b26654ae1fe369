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
import { craftElf as craft } from '../helpers/elf.js';

describe('ELF facts for copy_exec', () => {
  it('an AArch64 program: machine, its loader, DT_NEEDED in order, DT_RUNPATH', async () => {
    const f = craft(EM_AARCH64, '/lib/ld-linux-aarch64.so.1', ['libjq.so.1', 'libc.so.6'], '$ORIGIN/../lib');
    expect(await readElf(bufferReader(f))).toEqual({ machine: EM_AARCH64, interpreter: '/lib/ld-linux-aarch64.so.1', needed: ['libjq.so.1', 'libc.so.6'], runpath: ['$ORIGIN/../lib'], soname: null });
  });

  it('a library has no interpreter; a static program has neither interpreter nor DT_NEEDED', async () => {
    expect(await readElf(bufferReader(craft(EM_AARCH64, null, ['libc.so.6'])))).toMatchObject({ interpreter: null, needed: ['libc.so.6'] });
    expect(await readElf(bufferReader(craft(EM_X86_64, null, [])))).toEqual({ machine: EM_X86_64, interpreter: null, needed: [], runpath: [], soname: null });
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
