/** The architecture table (src/images/arch.ts) and the catalog's links per architecture. */
import { describe, expect, it } from 'vitest';
import { ARCH, flavourFor, isImageArch } from '../../src/images/arch.js';
import { currentLink, isRecipeEntry } from '../../src/images/catalog.js';
import { EM_AARCH64, EM_X86_64 } from '../../src/images/elf.js';

describe('architectures', () => {
  it('swaps the architecture in Debian kernel flavours, keeps one without it', () => {
    expect(flavourFor('cloud-amd64', 'arm64')).toBe('cloud-arm64');
    expect(flavourFor('amd64', 'arm64')).toBe('arm64');
    expect(flavourFor('cloud-arm64', 'amd64')).toBe('cloud-amd64');
    expect(flavourFor('rt-amd64', 'amd64')).toBe('rt-amd64');
    expect(flavourFor('test', 'arm64')).toBe('test');
  });

  it('knows each architecture\'s triplet, ELF machine, signed loaders and console', () => {
    expect(ARCH.amd64).toMatchObject({ triplet: 'x86_64-linux-gnu', elfMachine: EM_X86_64, shim: 'shimx64.efi', grub: 'grubx64.efi', console: 'ttyS0' });
    expect(ARCH.arm64).toMatchObject({ triplet: 'aarch64-linux-gnu', elfMachine: EM_AARCH64, shim: 'shimaa64.efi', grub: 'grubaa64.efi', console: 'ttyAMA0' });
    expect(isImageArch('arm64')).toBe(true);
    expect(isImageArch('riscv64')).toBe(false);
  });

  it('keeps a current link per architecture, none of them part of the recipe', () => {
    expect(currentLink('amd64')).toBe('current');
    expect(currentLink('arm64')).toBe('current-arm64');
    expect(isRecipeEntry('current-arm64')).toBe(false);
    expect(isRecipeEntry('current')).toBe(false);
    expect(isRecipeEntry('overlay')).toBe(true);
  });
});
