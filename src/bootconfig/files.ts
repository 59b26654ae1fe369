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
 */
import type { RequestContext, Provided, VirtualFiles } from '../tftp/fileroot.js';
import type { HostSet } from '../hosts/directory.js';
import type { Mac } from '../hosts/types.js';
import { TFTP_PREFIX } from '../images/catalog.js';
import { targetFor, type BootPolicy, type BootTemplates, type ImageResolver } from './render.js';

const PXELINUX_MAC = /^pxelinux\.cfg\/01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i;
const IPXE_MAC = /^ipxe\/([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.ipxe$/i;

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
}

export class BootFiles implements VirtualFiles {
  constructor(private readonly d: BootFilesDeps) {}

  async get(relPath: string, _ctx?: RequestContext): Promise<Provided> {
    if (relPath === this.d.ipxeBootFile) {
      if (await this.d.hasRootFile?.(relPath)) return undefined;
      return Buffer.from(this.d.templates.ipxeDispatch());
    }
    if (relPath === 'pxelinux.cfg/default') {
      const t = await targetFor(undefined, undefined, this.d.policy(), this.d.images);
      return Buffer.from(this.d.templates.pxelinux(t));
    }
    let m = PXELINUX_MAC.exec(relPath);
    if (m) {
      const mac = toMac(m[1] as string);
      const host = this.d.hosts().byMac(mac);
      if (!host) return undefined;
      return Buffer.from(this.d.templates.pxelinux(await targetFor(mac, host, this.d.policy(), this.d.images)));
    }
    m = IPXE_MAC.exec(relPath);
    if (m) {
      const mac = toMac(m[1] as string);
      return Buffer.from(this.d.templates.ipxe(await targetFor(mac, this.d.hosts().byMac(mac), this.d.policy(), this.d.images)));
    }
    if (relPath.startsWith(`${TFTP_PREFIX}/`)) {
      const file = await this.d.images.servePath(relPath);
      return file === undefined ? undefined : { file };
    }
    return undefined;
  }
}

function toMac(hyphen: string): Mac {
  return hyphen.toLowerCase().replace(/-/g, ':') as Mac;
}
