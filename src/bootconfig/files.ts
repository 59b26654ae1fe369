/**
 * The generated part of the TFTP tree, rendered when asked for, from the
 * host set and catalog of that moment (so an edit or a `current` switch is
 * visible to the very next request):
 *
 *   pxelinux.cfg/01-<mac>    known hosts (PXELINUX and syslinux.efi)
 *   pxelinux.cfg/default     machines not in hosts/ (unknown-client policy)
 *   <ipxe boot file>         the iPXE dispatcher, chains ipxe/<mac>.ipxe
 *   ipxe/<mac>.ipxe          any MAC: the host's script, or the unknown policy
 *   images/<n>/<v>/<file>    files of built image versions (mapped, not copied)
 *
 * For an unknown MAC, pxelinux.cfg/01-<mac> is "not found": PXELINUX then
 * walks its hex-IP names down to `default` (WIRE.md), where the policy lives.
 *
 *   http/pxelinux.cfg/...    the same configs with kernel and initrds as
 *                            http:// URLs, for http/lpxelinux.0 (--http-port)
 *   grub/grub.cfg            GRUB's entry (Debian's signed netboot GRUB reads
 *                            only this or grub/x86_64-efi/grub.cfg): picks
 *   grub/mac-<mac>.cfg       any MAC (colons, as GRUB's ${net_default_mac}):
 *                            the host's config, or the unknown policy
 *   grub/arm64-efi/...       the same for arm64 GRUB, with the arm64 images
 *   efi/http-boot-x64.img    UEFI HTTP Boot of the signed chain: a RAM disk
 *                            with shim and GRUB (src/bootconfig/efi-disk.ts)
 */
import type { RequestContext, Provided, VirtualFiles } from '../files/root.js';
import type { HostSet } from '../hosts/directory.js';
import type { Host, Mac } from '../hosts/types.js';
import { TFTP_PREFIX } from '../images/catalog.js';
import { IMAGE_ARCHES, type ImageArch } from '../images/arch.js';
import { efiDiskPath } from './efi-disk.js';
import { targetFor, type BootPolicy, type BootTarget, type BootTemplates, type ImageResolver } from './render.js';

const PXELINUX_MAC = /^pxelinux\.cfg\/01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i;
const IPXE_MAC = /^ipxe\/([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.ipxe$/i;
const GRUB_MAC = /^grub\/mac-([0-9a-f]{2}(?::[0-9a-f]{2}){5})\.cfg$/i;
export const GRUB_CONFIG = 'grub/grub.cfg';
/** The HTTP Boot disks' names, to their architecture. */
const EFI_DISKS: ReadonlyMap<string, ImageArch> = new Map(IMAGE_ARCHES.map((a) => [efiDiskPath(a), a]));
/**
 * arm64 GRUB comes to the same grub/grub.cfg as x86's (its `-e` test of
 * `<prefix>/arm64-efi/grub.cfg` sends nothing over TFTP: seen in the lab),
 * which sends it by `${grub_cpu}` to its per-MAC configs under
 * `grub/arm64-efi/`: they boot the image's arm64 version.
 */
const GRUB_ARM64 = 'grub/arm64-efi/';
const GRUB_ARM64_MAC = /^grub\/arm64-efi\/mac-([0-9a-f]{2}(?::[0-9a-f]{2}){5})\.cfg$/i;

export interface BootFilesDeps {
  /** The hosts of this moment (hot reload swaps the set). */
  hosts(): HostSet;
  readonly images: ImageResolver & { servePath(relPath: string): Promise<string | undefined> };
  readonly templates: BootTemplates;
  policy(): BootPolicy;
  /** Name of the iPXE script in DHCP option 67 for iPXE clients (boot.ipxe). */
  readonly ipxeBootFile: string;
  /** An operator's own file of that name in the TFTP root wins over the generated dispatcher. */
  hasRootFile?(relPath: string): Promise<boolean>;
  /** `http://<server>:<port>` when bootd serves HTTP: http/pxelinux.cfg/* then point there. */
  readonly httpBase?: string;
  /** A host was told to wait for its image (it is on its way from the image origin): for its timeline. */
  onWait?(host: string, mac: Mac | undefined, reason: string): void;
  /** UEFI HTTP Boot disks of the signed chain (src/bootconfig/efi-disk.ts), by architecture. */
  readonly efiDisks?: { get(arch: ImageArch): Promise<Buffer | undefined> };
}

/** A PXELINUX target whose kernel and initrds lpxelinux.0 fetches over HTTP. */
export function overHttp<T extends { kind: string; image?: { kernelPath: string; initrdPaths: readonly string[] } }>(t: T, base: string): T {
  if (t.kind !== 'boot' || !t.image) return t;
  return { ...t, image: { ...t.image, kernelPath: `${base}${t.image.kernelPath}`, initrdPaths: t.image.initrdPaths.map((p) => `${base}${p}`) } };
}

export class BootFiles implements VirtualFiles {
  constructor(private readonly d: BootFilesDeps) {}

  async get(relPath: string, _ctx?: RequestContext): Promise<Provided> {
    let m: RegExpExecArray | null;
    if (this.d.httpBase !== undefined && relPath.startsWith(HTTP_PREFIX) && relPath.slice(HTTP_PREFIX.length).startsWith('pxelinux.cfg/')) {
      return this.pxelinuxOverHttp(relPath.slice(HTTP_PREFIX.length));
    }
    if (relPath === this.d.ipxeBootFile) {
      if (await this.d.hasRootFile?.(relPath)) return undefined;
      return Buffer.from(this.d.templates.ipxeDispatch());
    }
    const disk = EFI_DISKS.get(relPath);
    if (disk !== undefined) return this.d.efiDisks?.get(disk);
    if (relPath === GRUB_CONFIG) {
      if (await this.d.hasRootFile?.(relPath)) return undefined;
      return Buffer.from(this.d.templates.grubDispatch());
    }
    m = GRUB_MAC.exec(relPath) ?? GRUB_ARM64_MAC.exec(relPath);
    if (m) {
      const mac = (m[1] as string).toLowerCase() as Mac;
      const arch: ImageArch = relPath.startsWith(GRUB_ARM64) ? 'arm64' : 'amd64';
      return Buffer.from(this.d.templates.grub(await this.target(mac, this.d.hosts().byMac(mac), arch), this.grubDevice(), relPath));
    }
    if (relPath === 'pxelinux.cfg/default') {
      const t = await targetFor(undefined, undefined, this.d.policy(), this.d.images);
      return Buffer.from(this.d.templates.pxelinux(t));
    }
    m = PXELINUX_MAC.exec(relPath);
    if (m) {
      const mac = toMac(m[1] as string);
      const host = this.d.hosts().byMac(mac);
      if (!host) return undefined;
      return Buffer.from(this.d.templates.pxelinux(await this.target(mac, host)));
    }
    m = IPXE_MAC.exec(relPath);
    if (m) {
      const mac = toMac(m[1] as string);
      return Buffer.from(this.d.templates.ipxe(await this.target(mac, this.d.hosts().byMac(mac))));
    }
    if (relPath.startsWith(`${TFTP_PREFIX}/`)) {
      const file = await this.d.images.servePath(relPath);
      return file === undefined ? undefined : { file };
    }
    return undefined;
  }

  /** What a host boots; a host told to wait goes on its timeline. */
  private async target(mac: Mac | undefined, host: Host | undefined, arch: ImageArch = 'amd64'): Promise<BootTarget> {
    const t = await targetFor(mac, host, this.d.policy(), this.d.images, arch);
    if (t.kind === 'wait' && host) this.d.onWait?.(host.name, mac, t.reason);
    return t;
  }

  /**
   * Where GRUB loads kernels and initrds from: TFTP, always. Debian 12's
   * signed netboot GRUB is built with tftp but without the http module
   * (asked for `(http,<server>)`, it looks for grub/x86_64-efi/http.mod,
   * and under Secure Boot it may load no module at all): seen in the lab.
   */
  private grubDevice(): string {
    return `(tftp,${this.d.policy().serverIp})`;
  }

  private async pxelinuxOverHttp(rel: string): Promise<Provided> {
    const base = this.d.httpBase as string;
    if (rel === 'pxelinux.cfg/default') return Buffer.from(this.d.templates.pxelinux(overHttp(await targetFor(undefined, undefined, this.d.policy(), this.d.images), base)));
    const m = PXELINUX_MAC.exec(rel);
    const mac = m ? toMac(m[1] as string) : undefined;
    const host = mac ? this.d.hosts().byMac(mac) : undefined;
    if (!host) return undefined;
    return Buffer.from(this.d.templates.pxelinux(overHttp(await this.target(mac, host), base)));
  }
}

const HTTP_PREFIX = 'http/';

function toMac(hyphen: string): Mac {
  return hyphen.toLowerCase().replace(/-/g, ':') as Mac;
}
