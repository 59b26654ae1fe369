/**
 * The architectures bootd builds images for and boots (issue 25), in one
 * table: Debian's name, the multiarch triplet, the ELF machine, the names
 * of the signed UEFI loaders, and the serial console QEMU's machine has.
 * (Option 93's codes are the DHCP policy's: src/dhcp/boot-policy.ts.)
 */
import { EM_AARCH64, EM_X86_64 } from './elf.js';

export type ImageArch = 'amd64' | 'arm64';
export const IMAGE_ARCHES: readonly ImageArch[] = ['amd64', 'arm64'];

export interface ArchFacts {
  readonly triplet: string;
  readonly elfMachine: number;
  /** shim and GRUB as shim looks for it beside itself (shim-signed, grub-efi-<arch>-signed). */
  readonly shim: string;
  readonly grub: string;
  /** GRUB's platform folder under its prefix: it reads <prefix>/<platform>/grub.cfg first. */
  readonly grubPlatform: string;
  /** The serial console of QEMU's machine for this architecture (pc/q35: ttyS0, virt: ttyAMA0). */
  readonly console: string;
}

export const ARCH: Readonly<Record<ImageArch, ArchFacts>> = {
  amd64: { triplet: 'x86_64-linux-gnu', elfMachine: EM_X86_64, shim: 'shimx64.efi', grub: 'grubx64.efi', grubPlatform: 'x86_64-efi', console: 'ttyS0' },
  arm64: { triplet: 'aarch64-linux-gnu', elfMachine: EM_AARCH64, shim: 'shimaa64.efi', grub: 'grubaa64.efi', grubPlatform: 'arm64-efi', console: 'ttyAMA0' },
};

/** The machine bootd runs on, in Debian's words. */
export function hostArch(): ImageArch {
  return process.arch === 'arm64' ? 'arm64' : 'amd64';
}

/**
 * A recipe's kernel flavour for another architecture: Debian names flavours
 * after the architecture (`cloud-amd64`, `cloud-arm64`, `amd64`, `arm64`),
 * so the suffix is swapped; a flavour without one is kept.
 */
export function flavourFor(flavour: string, arch: ImageArch): string {
  const m = /(amd64|arm64)$/.exec(flavour);
  return m ? `${flavour.slice(0, m.index)}${arch}` : flavour;
}

export function isImageArch(s: string): s is ImageArch {
  return (IMAGE_ARCHES as readonly string[]).includes(s);
}
