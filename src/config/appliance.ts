/**
 * The appliance config file (`bootd serve --config bootd.yaml`): the
 * network-wide settings, kept small. Every key is also a `bootd serve` flag;
 * a flag given on the command line wins over the file. Reference:
 * docs/configuration.md.
 */
import { z } from 'zod';
import { intField, ipv4Field, kernelArgsField, strictObject } from './fields.js';
import { parseYaml, type ConfigIssue } from './yaml-config.js';

/** A string the CLI's own parser for that flag must accept (one set of rules, one set of messages). */
function viaCli<T>(parse: (s: string) => T, expected: string) {
  return z.string({ error: expected }).transform((s, ctx) => {
    try {
      return parse(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/, got ".*"$/, '') });
      return z.NEVER;
    }
  });
}

export interface CliParsers {
  ipRange(s: string): [string, string];
  relaySubnet(s: string): unknown;
  image(s: string): unknown;
  portRange(s: string): unknown;
  listen(s: string): unknown;
  originUrl(s: string): unknown;
  byteSize(s: string): unknown;
}

export function applianceSchema(p: CliParsers) {
  return strictObject({
    interface: z.string({ error: 'expected an interface name like eth1' }).regex(/^[A-Za-z0-9_.:-]{1,15}$/, { error: 'expected an interface name like eth1' }).optional(),
    listen: ipv4Field.optional(),
    server_address: ipv4Field.optional(),
    hosts: z.string({ error: 'expected a directory' }).optional(),
    images: z.string({ error: 'expected a directory' }).optional(),
    image_origin: viaCli(p.originUrl, 'expected an http:// or https:// URL').optional(),
    image_cache: viaCli(p.byteSize, 'expected a size such as 20G or 512M').optional(),
    state: z.string({ error: 'expected a directory' }).optional(),
    state_url: z.string({ error: 'expected a postgresql:// URL' }).regex(/^postgres(ql)?:\/\//, { error: 'expected a postgresql:// URL' }).optional(),
    instance: z.string({ error: 'expected a name' }).regex(/^[A-Za-z0-9_.:\/-]{1,100}$/, { error: 'expected a name of letters, digits and . _ : / -' }).optional(),
    kernel_args: kernelArgsField.optional(),
    report_tftp_port: intField(1, 65535, 'a UDP port').optional(),
    http_port: intField(1, 65535, 'a TCP port').optional(),
    pxelinux_http: z.enum(['auto', 'lpxelinux', 'off'], { error: 'expected auto, lpxelinux or off' }).optional(),
    build_missing: z.boolean({ error: 'expected true or false' }).optional(),
    machine_ports: viaCli(p.portRange, 'expected FIRST-LAST UDP ports such as 1070-1099').optional(),
    smoke: strictObject({
      enabled: z.boolean({ error: 'expected true or false' }).optional(),
      user: z.string({ error: 'expected a user name like root' }).regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'expected a user name like root' }).optional(),
      port: intField(1, 65535, 'a TCP port').optional(),
      identity_file: z.string({ error: 'expected a path to a private key' }).min(1, { error: 'expected a path to a private key' }).optional(),
      timeout_seconds: intField(1, 3600, 'seconds').optional(),
    }).optional(),
    tftp: strictObject({
      root: z.string({ error: 'expected a directory' }).optional(),
      port: intField(0, 65535, 'a UDP port').optional(),
      max_transfers: intField(1, 100000, 'a number of transfers').optional(),
      max_per_client: intField(1, 100000, 'a number of transfers').optional(),
      client_rate: intField(1, 1000000, 'requests per second').optional(),
      transport: z.enum(['native', 'dgram'], { error: 'expected native or dgram' }).optional(),
      busy_poll_us: intField(0, 1000, 'microseconds').optional(),
    }).optional(),
    dhcp: strictObject({
      mode: z.enum(['full', 'proxy'], { error: 'expected full or proxy' }).optional(),
      range: viaCli(p.ipRange, 'expected START-END such as 198.18.0.100-198.18.0.199').optional(),
      relay_subnets: z.array(viaCli(p.relaySubnet, 'expected NETWORK/PREFIX=START-END[@ROUTER]'), { error: 'expected a list' }).optional(),
      router: ipv4Field.optional(),
      dns: ipv4Field.optional(),
      next_server: ipv4Field.optional(),
      lease_time: intField(10, 365 * 86400, 'seconds').optional(),
      unknown_hosts: z.enum(['ignore', 'lease', 'boot'], { error: 'expected ignore, lease or boot' }).optional(),
      default_loader: z.enum(['pxelinux', 'ipxe', 'grub'], { error: 'expected pxelinux, ipxe or grub' }).optional(),
      unknown_image: viaCli(p.image, 'expected an image like bee or bee@<version>').optional(),
      segment: z.string({ error: 'expected a name' }).regex(/^[A-Za-z0-9_.:\/-]{1,100}$/, { error: 'expected a name of letters, digits and . _ : / -' }).optional(),
    }).optional(),
    admin: strictObject({
      listen: viaCli(p.listen, 'expected ADDRESS:PORT such as 127.0.0.1:9267, or off').optional(),
      token_file: z.string({ error: 'expected a path to the token file' }).min(1, { error: 'expected a path to the token file' }).optional(),
      stale_after_seconds: intField(10, 7 * 86400, 'seconds').optional(),
    }).optional(),
    boot_files: strictObject({
      bios: z.string().optional(),
      efi_x64: z.string().optional(),
      efi_arm64: z.string().optional(),
      ipxe: z.string().optional(),
    }).optional(),
  });
}

/**
 * Flattens the file into `bootd serve` option names (commander's camelCase
 * of each flag), so the CLI merges it with one loop.
 */
export function loadApplianceConfig(file: string, text: string, p: CliParsers): { ok: true; options: Record<string, unknown> } | { ok: false; issues: readonly ConfigIssue[] } {
  const r = parseYaml(file, text, applianceSchema(p));
  if (!r.ok) return r;
  const v = r.value;
  const o: Record<string, unknown> = {
    interface: v.interface,
    listen: v.listen,
    serverAddress: v.server_address,
    hosts: v.hosts,
    images: v.images,
    imageOrigin: v.image_origin,
    imageCache: v.image_cache,
    state: v.state,
    stateUrl: v.state_url,
    instance: v.instance,
    segment: v.dhcp?.segment,
    kernelArgs: v.kernel_args,
    reportTftpPort: v.report_tftp_port,
    httpPort: v.http_port,
    pxelinuxHttp: v.pxelinux_http,
    buildMissing: v.build_missing,
    machinePorts: v.machine_ports,
    smoke: v.smoke?.enabled,
    smokeUser: v.smoke?.user,
    smokePort: v.smoke?.port,
    smokeKey: v.smoke?.identity_file,
    smokeTimeout: v.smoke?.timeout_seconds,
    tftpRoot: v.tftp?.root,
    tftpPort: v.tftp?.port,
    tftpMaxTransfers: v.tftp?.max_transfers,
    tftpMaxPerClient: v.tftp?.max_per_client,
    tftpClientRate: v.tftp?.client_rate,
    tftpTransport: v.tftp?.transport,
    tftpBusyPollUs: v.tftp?.busy_poll_us,
    dhcpMode: v.dhcp?.mode,
    dhcpRange: v.dhcp?.range,
    relaySubnet: v.dhcp?.relay_subnets,
    router: v.dhcp?.router,
    dns: v.dhcp?.dns,
    nextServer: v.dhcp?.next_server,
    leaseTime: v.dhcp?.lease_time,
    unknownHosts: v.dhcp?.unknown_hosts,
    unknownImage: v.dhcp?.unknown_image,
    defaultLoader: v.dhcp?.default_loader,
    biosBootFile: v.boot_files?.bios,
    efiBootFile: v.boot_files?.efi_x64,
    arm64EfiBootFile: v.boot_files?.efi_arm64,
    ipxeBootFile: v.boot_files?.ipxe,
    adminListen: v.admin?.listen,
    adminTokenFile: v.admin?.token_file,
    staleAfter: v.admin?.stale_after_seconds,
  };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return { ok: true, options: o };
}
