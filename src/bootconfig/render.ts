/**
 * From a host (or an unknown MAC) to the boot config files its firmware
 * reads: the typed view model (BootTarget), the kernel command line, and the
 * templates in boot/templates/ that turn a target into PXELINUX or iPXE text.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Resolve, ResolvedImage } from '../images/catalog.js';
import { formatImageRef, macHyphen, type Host, type ImageRef, type Mac } from '../hosts/types.js';
import { render, type View } from './template.js';
import type { ImageArch } from '../images/arch.js';

/** Network-wide settings the configs depend on (from the appliance config). */
export interface BootPolicy {
  /** bootd's address as the clients see it (TFTP server, report uploads). */
  readonly serverIp: string;
  /** Kernel arguments every netbooted host gets (a serial console, say). */
  readonly kernelArgs: readonly string[];
  /** Write-enabled TFTP port where the audit image uploads its report; absent: no upload parameter. */
  readonly reportTftpPort?: number;
  /** What machines that are not in hosts/ boot: an image (with unknown_hosts: boot), or their disk. */
  readonly unknownImage?: ImageRef;
  /**
   * Where a booted image reaches its own version's files (`http://ip:port`,
   * else `tftp://ip[:port]`): images with files beyond kernel and initrds
   * (bee's nvidia.img) get `bootd.image=<this>/<tftp path of the version>/`.
   */
  readonly imageBase?: string;
}

export interface ImageResolver {
  /** `arch`: the machine's (amd64 when absent): the image's current version of that architecture. */
  resolve(ref: ImageRef, arch?: ImageArch): Promise<Resolve>;
}

interface Described {
  /** Who the file is for, in its header comment. */
  readonly subject: string;
  /** Where the operator changes it. */
  readonly source: string;
}

export type BootTarget =
  | (Described & {
      readonly kind: 'boot';
      readonly image: ResolvedImage;
      /** Kernel arguments, without initrd= (the loaders differ there). */
      readonly args: readonly string[];
      /** PXELINUX should append BOOTIF itself (unknown machine: the MAC is not in the file name). */
      readonly ipappend: boolean;
    })
  | (Described & { readonly kind: 'local'; readonly reason: string })
  /** The image is on its way (fetched from the origin): the loader asks again in `seconds`. */
  | (Described & { readonly kind: 'wait'; readonly reason: string; readonly seconds: number });

/** How long a host whose image is on its way waits before it asks again. */
export const WAIT_SECONDS = 10;

/** Linux's x86 COMMAND_LINE_SIZE, including the terminating NUL. */
export const MAX_CMDLINE = 2047;

/**
 * Kernel arguments in a fixed order, so later ones win where the kernel or
 * the image reads the last occurrence: the image's own (manifest), the
 * appliance's, what bootd adds (BOOTIF, bootd.server, the image's upload
 * target), the host's image parameters, the host's extra arguments.
 */
export function kernelArgs(image: ResolvedImage, host: Host | undefined, mac: Mac | undefined, policy: BootPolicy): string[] {
  const args = [...(image.manifest.cmdline ?? []), ...policy.kernelArgs];
  // pxelinux's IPAPPEND 2 form (01 = Ethernet): which NIC booted, for images that pick it
  if (mac !== undefined) args.push(`BOOTIF=01-${macHyphen(mac)}`);
  args.push(`bootd.server=${policy.serverIp}`);
  // files the image fetches itself at run time (payloads such as bee's NVIDIA driver), from its own version
  const m = image.manifest;
  if (policy.imageBase !== undefined && Object.keys(m.files).some((f) => f !== m.kernel && !m.initrds.includes(f))) {
    args.push(`bootd.image=${policy.imageBase}${path.posix.dirname(image.kernelPath)}/`);
  }
  if (image.name === 'bee' && policy.reportTftpPort !== undefined) {
    const who = host?.name ?? (mac !== undefined ? macHyphen(mac) : 'unknown');
    args.push(`bee.report=tftp://${policy.serverIp}:${policy.reportTftpPort}/${who}/bee-audit.json`);
  }
  if (host) for (const [k, v] of Object.entries(host.params)) args.push(`${image.name}.${k}=${v}`);
  if (host) args.push(...host.kernelArgs);
  return args;
}

/**
 * What `mac` boots. `host` is its hosts/*.yaml entry, undefined when unknown.
 * `mac` undefined: the shared config of every unknown machine
 * (pxelinux.cfg/default), where PXELINUX appends BOOTIF itself.
 * Problems never yield a broken config: they yield local boot with a reason.
 */
export async function targetFor(mac: Mac | undefined, host: Host | undefined, policy: BootPolicy, images: ImageResolver, arch: ImageArch = 'amd64'): Promise<BootTarget> {
  const subject = host ? `host ${host.name} (${mac ?? host.macs[0]})` : mac === undefined ? 'machines not in hosts/' : `unknown machine ${mac}`;
  const source = host ? host.file : 'the appliance config (unknown_hosts)';
  const local = (reason: string): BootTarget => ({ kind: 'local', subject, source, reason });
  if (host && !host.netboot) return local('netboot is off for this host');
  const ref = host ? host.image : policy.unknownImage;
  if (!ref) return local('machines not in hosts/ do not netboot');
  const r = await images.resolve(ref, arch);
  if (!r.ok) return r.wait === true ? { kind: 'wait', subject, source, reason: r.reason, seconds: WAIT_SECONDS } : local(r.reason);
  const args = kernelArgs(r.image, host, mac, policy);
  const line = [`initrd=${r.image.initrdPaths.join(',')}`, ...args].join(' ');
  if (line.length > MAX_CMDLINE) return local(`kernel command line for ${formatImageRef(ref)} is ${line.length} bytes, over Linux's ${MAX_CMDLINE}`);
  return { kind: 'boot', subject, source, image: r.image, args, ipappend: mac === undefined };
}

export type TemplateName =
  | 'pxelinux-boot.cfg' | 'pxelinux-local.cfg' | 'pxelinux-wait.cfg'
  | 'ipxe-boot.ipxe' | 'ipxe-local.ipxe' | 'ipxe-wait.ipxe' | 'ipxe-dispatch.ipxe'
  | 'grub-boot.cfg' | 'grub-local.cfg' | 'grub-wait.cfg' | 'grub-dispatch.cfg';
const TEMPLATE_NAMES: readonly TemplateName[] = [
  'pxelinux-boot.cfg', 'pxelinux-local.cfg', 'pxelinux-wait.cfg',
  'ipxe-boot.ipxe', 'ipxe-local.ipxe', 'ipxe-wait.ipxe', 'ipxe-dispatch.ipxe',
  'grub-boot.cfg', 'grub-local.cfg', 'grub-wait.cfg', 'grub-dispatch.cfg',
];

/**
 * One word of GRUB's script language: bare when it holds only characters
 * GRUB takes literally, else single-quoted (no expansion of `$`, `;`,
 * spaces or double quotes inside), a `'` written as `'\''` as in sh.
 * Kernel arguments come from hosts/*.yaml: `$x` must reach the kernel as
 * typed, not as a GRUB variable.
 */
export function grubWord(s: string): string {
  if (/^[A-Za-z0-9_=,./:@%+()-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, "'\\''")}'`;
}

/** boot/templates/ of this checkout (dist/bootconfig/ and src/bootconfig/ are both two levels down). */
export const DEFAULT_TEMPLATE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../boot/templates');

/** The loaded templates and the renderers built on them. */
export class BootTemplates {
  private constructor(private readonly t: ReadonlyMap<TemplateName, string>) {}

  /** Reads every template once; a missing one fails at startup, not at boot time. */
  static load(dir = DEFAULT_TEMPLATE_DIR): BootTemplates {
    return new BootTemplates(new Map(TEMPLATE_NAMES.map((n) => [n, readFileSync(path.join(dir, n), 'utf8')])));
  }

  private render(name: TemplateName, view: View): string {
    return render(this.t.get(name) as string, view, name);
  }

  /** PXELINUX / syslinux.efi config (pxelinux.cfg/01-<mac> or default). */
  pxelinux(target: BootTarget): string {
    if (target.kind === 'local') return this.render('pxelinux-local.cfg', { subject: target.subject, source: target.source, reason: target.reason });
    if (target.kind === 'wait') return this.render('pxelinux-wait.cfg', { subject: target.subject, source: target.source, reason: target.reason, seconds: String(target.seconds), tenths: String(target.seconds * 10) });
    const img = target.image;
    return this.render('pxelinux-boot.cfg', {
      subject: target.subject,
      source: target.source,
      image: `${img.name}@${img.version}`,
      label: img.name,
      menuLabel: `${img.name} ${img.version}`,
      kernel: img.kernelPath,
      // PXELINUX loads every initrd in the comma-separated list, in order (seed 001 style)
      initrdList: img.initrdPaths.join(','),
      append: target.args.join(' '),
      ipappend: target.ipappend,
    });
  }

  /** iPXE script for one machine (ipxe/<mac>.ipxe). */
  ipxe(target: BootTarget): string {
    if (target.kind === 'local') return this.render('ipxe-local.ipxe', { subject: target.subject, source: target.source, reason: target.reason });
    if (target.kind === 'wait') return this.render('ipxe-wait.ipxe', { subject: target.subject, source: target.source, reason: target.reason, seconds: String(target.seconds) });
    const img = target.image;
    const initrds = img.initrdPaths.map((p) => ({ name: path.posix.basename(p), path: p }));
    return this.render('ipxe-boot.ipxe', {
      subject: target.subject,
      source: target.source,
      image: `${img.name}@${img.version}`,
      kernel: img.kernelPath,
      initrdArgs: initrds.map((i) => `initrd=${i.name}`).join(' '),
      append: target.args.join(' '),
      initrds,
    });
  }

  /**
   * GRUB config for one machine (grub/mac-<mac>.cfg). `device` is where GRUB
   * fetches the kernel and initrds, `(tftp,<server>)`; `self` the file's own
   * path there, which a wait reads again.
   */
  grub(target: BootTarget, device: string, self?: string): string {
    if (target.kind === 'local') return this.render('grub-local.cfg', { subject: target.subject, source: target.source, reason: target.reason, message: grubWord(`bootd: ${target.reason}; booting from the local disk`) });
    // the wait reads this very file again, by its full name (GRUB may have come from a RAM disk, where $prefix is not bootd)
    if (target.kind === 'wait') return this.render('grub-wait.cfg', { subject: target.subject, source: target.source, reason: target.reason, seconds: String(target.seconds), message: grubWord(`bootd: ${target.reason}; asking again in ${target.seconds} s`), self: self === undefined ? '"${prefix}/mac-${net_default_mac}.cfg"' : grubWord(`${device}/${self}`) });
    const img = target.image;
    const on = (p: string): string => grubWord(/^[a-z]+:\/\//.test(p) ? p : `${device}${p.startsWith('/') ? '' : '/'}${p}`);
    return this.render('grub-boot.cfg', {
      subject: target.subject,
      source: target.source,
      image: `${img.name}@${img.version}`,
      menuLabel: grubWord(`${img.name} ${img.version}`),
      loading: grubWord(`bootd: loading ${img.name}@${img.version}`),
      kernel: on(img.kernelPath),
      initrdList: img.initrdPaths.map(on).join(' '),
      append: target.args.map(grubWord).join(' '),
    });
  }

  /** grub/grub.cfg: picks grub/mac-<mac>.cfg (arm64: grub/arm64-efi/mac-<mac>.cfg) by the boot NIC's MAC. */
  grubDispatch(): string {
    return this.render('grub-dispatch.cfg', {});
  }

  /** The script every iPXE client gets first (DHCP boot file for user class iPXE). */
  ipxeDispatch(): string {
    return this.render('ipxe-dispatch.ipxe', {});
  }
}
