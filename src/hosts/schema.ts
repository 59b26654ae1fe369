/**
 * The hosts/*.yaml schema (reference: docs/hosts.md) and the pure step from
 * one file's text to a Host or a list of positioned issues. Checks that span
 * files (duplicate MAC or IP, unknown images) live in ./directory.ts.
 */
import { z } from 'zod';
import { hostnameField, intField, ipv4Field, kernelArgsField, macField, sizeField, strictObject, wordField } from '../config/fields.js';
import { parseYaml, type ConfigIssue, type YamlSource } from '../config/yaml-config.js';
import type { Host, ImageRef, Mac } from './types.js';

export const IMAGE_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
/** Versions start with a digit, so a version folder never clashes with a recipe's own folders. */
export const VERSION_RE = /^[0-9][0-9A-Za-z._-]{0,63}$/;
/** A host's name is its file name; it goes into logs, paths and commands. */
export const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** `bee` or `bee@<version>`; null when malformed. Shared by host files and `--unknown-image`. */
export function parseImageRef(s: string): ImageRef | null {
  const [name, version, ...rest] = s.split('@');
  if (rest.length > 0 || name === undefined || !IMAGE_NAME_RE.test(name) || (version !== undefined && !VERSION_RE.test(version))) return null;
  return version === undefined ? { name } : { name, version };
}

const imageField = z
  .string({ error: 'expected an image like bee, buildos or bee@<version>' })
  .transform((s, ctx) => {
    const ref = parseImageRef(s);
    if (ref === null) {
      ctx.addIssue({ code: 'custom', message: 'expected an image like bee, buildos or bee@<version>' });
      return z.NEVER;
    }
    return ref;
  });

const quirksSchema = strictObject({
  tftp_max_blksize: intField(8, 65464, 'a TFTP block size').optional(),
  tftp_no_windowsize: z.boolean({ error: 'expected true or false' }).optional(),
  dhcp_reply_delay_ms: intField(0, 10000, 'milliseconds').optional(),
});

const smokeSchema = strictObject({
  user: z.string({ error: 'expected a user name like root' }).regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'expected a user name like root' }).optional(),
  port: intField(1, 65535, 'a TCP port').optional(),
  identity_file: z.string({ error: 'expected a path to a private key' }).min(1, { error: 'expected a path to a private key' }).optional(),
  timeout_seconds: intField(1, 3600, 'seconds').optional(),
  enabled: z.boolean({ error: 'expected true or false' }).optional(),
  script: z.string({ error: 'expected a path to a shell script' }).min(1, { error: 'expected a path to a shell script' }).optional(),
});

const buildSchema = strictObject({
  quota: sizeField.optional(),
  overwrite: z.boolean({ error: 'expected true or false' }).optional(),
});

export const hostFileSchema = strictObject({
  mac: macField.optional(),
  macs: z.array(macField, { error: 'expected a list of MAC addresses' }).min(1, { error: 'expected at least one MAC address' }).optional(),
  ip: ipv4Field.optional(),
  hostname: hostnameField.optional(),
  image: imageField.optional(),
  netboot: z.boolean({ error: 'expected true or false' }).optional(),
  loader: z.enum(['pxelinux', 'ipxe', 'grub'], { error: 'expected pxelinux, ipxe or grub' }).optional(),
  secure_boot: z.boolean({ error: 'expected true or false' }).optional(),
  arch: z.enum(['amd64', 'arm64'], { error: 'expected amd64 or arm64' }).optional(),
  kernel_args: kernelArgsField.optional(),
  params: z
    .record(
      z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, { error: 'expected parameter names of lower-case letters, digits and _' }),
      z.union([wordField, z.number(), z.boolean()], { error: 'expected a parameter value: one word, a number or true/false' }),
      { error: 'expected a mapping of parameter names to values' },
    )
    .optional(),
  // build: true is build: {} (default quota), build: false is no build machine
  build: z.preprocess((v) => (v === true ? {} : v === false ? null : v), buildSchema.nullable()).optional(),
  smoke: smokeSchema.optional(),
  quirks: quirksSchema.optional(),
});

export const HOST_DEFAULTS = {
  buildQuotaBytes: 200 * 1024 * 1024,
  smoke: { user: 'root', port: 22, timeoutSeconds: 300 },
} as const;

export type HostFileResult =
  /** `singleMac`: the file says `mac:` (not `macs:`), which decides how a duplicate is reported. */
  | { readonly ok: true; readonly host: Host; readonly source: YamlSource; readonly singleMac: boolean }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

// shared by every host that sets none of them: 100,000 hosts need not hold 400,000 empty objects
const NO_ARGS: readonly string[] = Object.freeze([]);
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});
const NO_SMOKE: Host['smoke'] = Object.freeze({});
const NO_QUIRKS: Host['quirks'] = Object.freeze({});

/** One host file, validated on its own. `file` is how messages name it. */
export function parseHostFile(file: string, name: string, text: string): HostFileResult {
  if (!HOST_NAME_RE.test(name)) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: '', message: `file name ${JSON.stringify(name)} is not a host name (expected letters, digits, ".", "_" or "-")` }] };
  }
  const r = parseYaml(file, text, hostFileSchema);
  if (!r.ok) return r;
  const v = r.value;
  const issues: ConfigIssue[] = [];
  if (v.mac !== undefined && v.macs !== undefined) issues.push(r.doc.issue(['macs'], 'give either mac or macs, not both', true));
  const macs = (v.macs ?? (v.mac !== undefined ? [v.mac] : [])) as Mac[];
  if (macs.length === 0) issues.push(r.doc.issue([], 'missing; expected mac: <MAC address> (or macs: [<MAC>, ...])'));
  const seen = new Set<string>();
  macs.forEach((m, i) => {
    if (seen.has(m)) issues.push(r.doc.issue(['macs', i], `${m} is listed twice`));
    seen.add(m);
  });
  const netboot = v.netboot ?? true;
  if (v.image === undefined && netboot) issues.push(r.doc.issue([], 'missing; expected image: bee, buildos or <name>@<version> (or netboot: false)'));
  const hostname = v.hostname ?? name.toLowerCase();
  if (v.hostname === undefined && !hostnameField.safeParse(hostname).success) {
    issues.push(r.doc.issue([], `the file name ${JSON.stringify(name)} is not a valid host name; add hostname: <name>`));
  }
  // Secure Boot: the firmware runs only signed loaders; Debian signs shim and GRUB, not syslinux.efi nor iPXE
  if (v.secure_boot === true && v.loader !== undefined && v.loader !== 'grub') {
    issues.push(r.doc.issue(['loader'], `loader ${v.loader} cannot boot under Secure Boot (secure_boot: true): Debian ships no signed ${v.loader === 'ipxe' ? 'iPXE' : 'syslinux.efi'}, and the firmware refuses an unsigned loader; use loader: grub (shim, then Debian's signed GRUB)`));
  }
  if (issues.length > 0) return { ok: false, issues };
  const build = v.build === undefined || v.build === null ? null : { quotaBytes: v.build.quota ?? HOST_DEFAULTS.buildQuotaBytes, overwrite: v.build.overwrite ?? true };
  const q = v.quirks ?? {};
  const s = v.smoke ?? {};
  const host: Host = {
    name,
    file,
    macs,
    ...(v.ip !== undefined ? { ip: v.ip } : {}),
    hostname,
    // a host that never netboots needs no image; `none` is never looked up
    image: v.image ?? { name: 'none' },
    netboot,
    // secure_boot without a loader: the signed chain
    ...(v.loader !== undefined ? { loader: v.loader } : v.secure_boot === true ? { loader: 'grub' as const } : {}),
    ...(v.secure_boot !== undefined ? { secureBoot: v.secure_boot } : {}),
    ...(v.arch !== undefined ? { arch: v.arch } : {}),
    kernelArgs: v.kernel_args ?? NO_ARGS,
    params: v.params === undefined ? NO_PARAMS : Object.fromEntries(Object.entries(v.params).map(([k, val]) => [k, String(val)])),
    build,
    smoke: v.smoke === undefined ? NO_SMOKE : {
      ...(s.user !== undefined ? { user: s.user } : {}),
      ...(s.port !== undefined ? { port: s.port } : {}),
      ...(s.identity_file !== undefined ? { identityFile: s.identity_file } : {}),
      ...(s.enabled !== undefined ? { enabled: s.enabled } : {}),
      ...(s.script !== undefined ? { script: s.script } : {}),
      ...(s.timeout_seconds !== undefined ? { timeoutSeconds: s.timeout_seconds } : {}),
    },
    quirks: v.quirks === undefined ? NO_QUIRKS : {
      ...(q.tftp_max_blksize !== undefined ? { tftpMaxBlksize: q.tftp_max_blksize } : {}),
      ...(q.tftp_no_windowsize !== undefined ? { tftpNoWindowsize: q.tftp_no_windowsize } : {}),
      ...(q.dhcp_reply_delay_ms !== undefined ? { dhcpReplyDelayMs: q.dhcp_reply_delay_ms } : {}),
    },
  };
  return { ok: true, host, source: r.doc, singleMac: v.mac !== undefined };
}
