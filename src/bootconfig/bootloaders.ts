/**
 * `bootd setup`: places the boot loaders from Debian packages into the TFTP
 * root. Never committed as binaries; the setup script installs the packages.
 *
 * Everything goes to the root itself: PXELINUX derives its path prefix from
 * the boot file's folder and then looks for ldlinux.c32 and pxelinux.cfg/
 * there (WIRE.md: `boot/pxelinux.0` sends it to `boot//boot/isolinux/...`).
 * With the NBP at the root no option 210 is needed.
 *
 * The one exception uses that rule on purpose: `http/lpxelinux.0` (PXELINUX
 * with HTTP) takes `http/` as its prefix, so it asks for
 * `http/pxelinux.cfg/01-<mac>`, where bootd renders the kernel and initrds
 * as http:// URLs (src/bootconfig/files.ts), and for `http/ldlinux.c32`.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface BootLoaderFile {
  /** Name in the TFTP root. */
  readonly name: string;
  readonly source: string;
  /** Where else it may be: the package unpacked by scripts/setup.sh instead of installed. */
  readonly alternates?: readonly string[];
  readonly pkg: string;
  readonly what: string;
}

/** Where scripts/setup.sh unpacks shim-signed and grub-efi-amd64-signed (not installed: see there). */
export const SIGNED_DIR = '/usr/local/lib/bootd/signed';

/** Debian 12 package paths. */
export const BOOT_LOADERS: readonly BootLoaderFile[] = [
  { name: 'pxelinux.0', source: '/usr/lib/PXELINUX/pxelinux.0', pkg: 'pxelinux', what: 'BIOS NBP (option 93 = 0)' },
  { name: 'ldlinux.c32', source: '/usr/lib/syslinux/modules/bios/ldlinux.c32', pkg: 'syslinux-common', what: "pxelinux.0's core module" },
  { name: 'syslinux.efi', source: '/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi', pkg: 'syslinux-efi', what: 'x64 UEFI NBP (option 93 = 7, 9)' },
  { name: 'ldlinux.e64', source: '/usr/lib/syslinux/modules/efi64/ldlinux.e64', pkg: 'syslinux-common', what: "syslinux.efi's core module" },
  { name: 'http/lpxelinux.0', source: '/usr/lib/PXELINUX/lpxelinux.0', pkg: 'pxelinux', what: 'BIOS NBP that loads kernel and initrd over HTTP (with --http-port)' },
  { name: 'http/ldlinux.c32', source: '/usr/lib/syslinux/modules/bios/ldlinux.c32', pkg: 'syslinux-common', what: "lpxelinux.0's core module" },
  { name: 'undionly.kpxe', source: '/usr/lib/ipxe/undionly.kpxe', pkg: 'ipxe', what: 'iPXE for BIOS, on the PXE ROM (--bios-boot-file undionly.kpxe)' },
  { name: 'snponly.efi', source: '/usr/lib/ipxe/snponly.efi', pkg: 'ipxe', what: 'iPXE for UEFI, on the firmware NIC driver (--efi-boot-file snponly.efi)' },
  // The Secure Boot chain (loader grub): shim, signed with Microsoft's UEFI CA, loads grubx64.efi
  // from its own folder; Debian's signed netboot GRUB then reads grub/grub.cfg (src/bootconfig/files.ts)
  { name: 'shimx64.efi', source: '/usr/lib/shim/shimx64.efi.signed', alternates: [`${SIGNED_DIR}/usr/lib/shim/shimx64.efi.signed`], pkg: 'shim-signed', what: 'x64 UEFI NBP under Secure Boot (loader grub; also UEFI HTTP Boot)' },
  { name: 'grubx64.efi', source: '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed', alternates: [`${SIGNED_DIR}/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed`], pkg: 'grub-efi-amd64-signed', what: "shim's second stage: Debian's signed netboot GRUB" },
  // arm64 (option 93 = 11, 19): Debian ships neither syslinux nor iPXE for it; its signed shim and GRUB, unpacked by setup.sh
  { name: 'shimaa64.efi', source: '/usr/lib/shim/shimaa64.efi.signed', alternates: [`${SIGNED_DIR}/usr/lib/shim/shimaa64.efi.signed`], pkg: 'shim-signed:arm64', what: 'arm64 UEFI NBP (option 93 = 11; every loader)' },
  { name: 'grubaa64.efi', source: '/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed', alternates: [`${SIGNED_DIR}/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed`], pkg: 'grub-efi-arm64-signed:arm64', what: "arm64 shim's second stage: Debian's signed netboot GRUB" },
];

export interface SetupResult {
  readonly placed: string[];
  readonly unchanged: string[];
  /** Missing sources, with the package that provides each. */
  readonly missing: { readonly name: string; readonly source: string; readonly pkg: string }[];
}

async function digest(file: string): Promise<string | null> {
  try {
    return createHash('sha256').update(await fs.readFile(file)).digest('hex');
  } catch {
    return null;
  }
}

/** Copies each loader into `root` (write to a temporary name, then rename: a running server never serves half a file). */
export async function placeBootLoaders(root: string, files: readonly BootLoaderFile[] = BOOT_LOADERS): Promise<SetupResult> {
  await fs.mkdir(root, { recursive: true });
  const r: SetupResult = { placed: [], unchanged: [], missing: [] };
  for (const f of files) {
    let source = f.source;
    let src = await digest(source);
    for (const alt of f.alternates ?? []) {
      if (src !== null) break;
      source = alt;
      src = await digest(alt);
    }
    if (src === null) {
      r.missing.push({ name: f.name, source: f.source, pkg: f.pkg });
      continue;
    }
    const dest = path.join(root, f.name);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    if ((await digest(dest)) === src) {
      r.unchanged.push(f.name);
      continue;
    }
    const tmp = `${dest}.tmp-${process.pid}`;
    await fs.copyFile(source, tmp);
    await fs.chmod(tmp, 0o644);
    await fs.rename(tmp, dest);
    r.placed.push(f.name);
  }
  return r;
}
