/**
 * `bootd serve`: its flags, the appliance config file merged under them,
 * and the typed configuration the composition root (../app.ts) runs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { startApp, type AppConfig } from '../app.js';
import { loadApplianceConfig } from '../config/appliance.js';
import { formatIssue } from '../config/yaml-config.js';
import { DEFAULT_LOADER_FILES } from '../dhcp/boot-policy.js';
import type { UnknownHosts } from '../dhcp/server.js';
import { HOST_DEFAULTS } from '../hosts/schema.js';
import type { ImageRef } from '../hosts/types.js';
import { ensureKeyPair } from '../images/ssh-key.js';
import { createLogger, type LogFormat, type Logger } from '../log.js';
import { DEFAULT_MACHINE_PORTS } from '../machines/registry.js';
import { systemClock } from '../net/clock.js';
import { cidrOf, formatIpv4, parseIpv4 } from '../net/ipv4.js';
import { linuxMtu } from '../net/mtu.js';
import { fastUdp, loadFastUdp } from '../net/native-udp.js';
import { nodeUdp, type UdpSocketFactory } from '../net/udp.js';
import { MAX_BLKSIZE, MAX_WINDOWSIZE, MIN_BLKSIZE } from '../tftp/options.js';
import { TFTP_DEFAULTS } from '../tftp/server.js';
import { isLoopback } from '../admin/auth.js';
import { byteSize, imageRef, int, ipRange, originUrl, ipv4, kernelArgList, listenAddress, portRange, relaySubnet, reservation, type RelaySubnetArg } from './args.js';

/**
 * The IPv4 addresses of `iface`, whatever its link state. Node's
 * os.networkInterfaces() leaves out interfaces that are not RUNNING, such as
 * a bridge whose ports have no carrier yet (a lab bridge before its VMs
 * start), so ask the kernel through iproute2 and fall back to Node.
 */
function ipv4Addresses(iface: string): { address: string; netmask: string }[] {
  try {
    const out = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', iface], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const links = JSON.parse(out) as { addr_info?: { local?: string; prefixlen?: number }[] }[];
    return links.flatMap((l) => l.addr_info ?? []).flatMap((a) => (a.local && a.prefixlen !== undefined ? [{ address: a.local, netmask: formatIpv4(a.prefixlen === 0 ? 0 : (0xffffffff << (32 - a.prefixlen)) >>> 0) }] : []));
  } catch {
    return (os.networkInterfaces()[iface] ?? []).filter((a) => a.family === 'IPv4');
  }
}

/** The IPv4 address and mask DHCP serves on `iface`: the --listen address if it is there, else the first. */
function interfaceAddress(iface: string, listen: string): { address: string; netmask: string } {
  const addrs = ipv4Addresses(iface);
  if (addrs.length === 0) throw new Error(`interface ${iface} does not exist or has no IPv4 address`);
  const pick = listen === '0.0.0.0' ? addrs[0] : addrs.find((a) => a.address === listen);
  if (!pick) throw new Error(`--listen ${listen} is not an address of ${iface} (it has ${addrs.map((a) => a.address).join(', ')})`);
  return { address: pick.address, netmask: pick.netmask };
}

/** Keys whose values are paths: relative ones in a config file are relative to that file. */
const PATH_OPTIONS = ['hosts', 'images', 'state', 'tftpRoot', 'smokeKey', 'adminTokenFile'] as const;

/** Where the admin listener is when no flag or config key says: loopback only (docs/operations.md). */
const DEFAULT_ADMIN = { address: '127.0.0.1', port: 9267 } as const;

/** Options from --config, for every option not given on the command line. */
function mergeConfigFile(opts: ServeOptions, cmd: Command): void {
  // the loader checked each value against the same parser as its flag: the record is ServeOptions' shape
  const o = opts as unknown as Record<string, unknown>;
  if (o.config === undefined) return;
  const file = String(o.config);
  const r = loadApplianceConfig(file, readFileSync(file, 'utf8'), { ipRange, relaySubnet: (s) => relaySubnet(s, [])[0], image: imageRef, portRange, listen: listenAddress, originUrl, byteSize });
  if (!r.ok) throw new Error(`invalid config file:\n${r.issues.map(formatIssue).join('\n')}`);
  for (const [k, v] of Object.entries(r.options)) {
    if (cmd.getOptionValueSource(k) === 'cli') continue;
    o[k] = (PATH_OPTIONS as readonly string[]).includes(k) ? path.resolve(path.dirname(file), String(v)) : v;
    cmd.setOptionValueWithSource(k, o[k], 'config');
  }
}

/** Where clients reach bootd, for URLs in boot configs: explicit, the DHCP address, the listen address, or the first external IPv4. */
function serverAddress(o: ServeOptions, dhcpIp: string | undefined): string {
  if (o.serverAddress !== undefined) return o.serverAddress;
  if (o.nextServer !== undefined) return o.nextServer;
  if (dhcpIp !== undefined) return dhcpIp;
  if (o.listen !== '0.0.0.0') return o.listen;
  for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

export function addServeCommand(program: Command): void {
  program
  .command('serve')
  .description('run the boot servers until SIGINT/SIGTERM')
  .option('--config <file>', 'appliance config file (YAML, docs/configuration.md); flags given here win over it')
  .option('--hosts <dir>', 'hosts/*.yaml directory, watched for changes', 'hosts')
  .option('--images <dir>', 'image catalog (recipes and built versions)', 'images')
  .option('--image-origin <url>', 'fetch image versions this instance lacks from here (another bootd\'s http://HOST:PORT/images, or any HTTP server or bucket serving the catalog layout), verified against their manifests\' sha256; hosts follow the origin\'s current versions', originUrl)
  .option('--image-cache <size>', 'with --image-origin: how much room fetched versions may take; the least recently used go first (the current versions stay)', byteSize, 20 * 1024 ** 3)
  .option('--server-address <addr>', 'address clients reach bootd at, for generated configs (default: the DHCP interface address)', ipv4)
  .option('--kernel-args <args>', 'kernel arguments for every netbooted host, e.g. "console=ttyS0,115200"', kernelArgList)
  .option('--report-tftp-port <port>', 'write-enabled TFTP port (hosts upload into <state>/uploads/<host>/ only; the audit image sends its report there)', int(1, 65535))
  .option('--unknown-image <image>', 'what machines not in hosts/ boot with --unknown-hosts boot (default: their local disk)', imageRef)
  .option('--tftp-root <dir>', 'directory served over TFTP (read-only)', '/var/lib/bootd/tftp')
  .option('--tftp-port <port>', 'UDP port for TFTP requests', int(0, 65535), TFTP_DEFAULTS.port)
  .option('--listen <addr>', 'IPv4 address TFTP (and HTTP) listen on', ipv4, '0.0.0.0')
  .addOption(new Option('--pxelinux-http <how>', 'with --http-port, how PXELINUX on BIOS loads its files after the NBP: auto = iPXE firmware gets pxelinux.0 with option 210 (path prefix) at bootd\'s HTTP, so everything comes over iPXE\'s HTTP; plain PXE ROMs get http/lpxelinux.0 (kernel and initrds over HTTP) if the host is in hosts/; lpxelinux = http/lpxelinux.0 for every host in hosts/ (iPXE too); off = TFTP').choices(['auto', 'lpxelinux', 'off']).default('auto'))
  .option('--no-pxelinux-http', 'same as --pxelinux-http off')
  .option('--http-port <port>', 'also serve the TFTP tree read-only over HTTP on this TCP port; iPXE clients then load their script, kernel and initrd over HTTP', int(1, 65535))
  .option('--tftp-max-transfers <n>', 'concurrent transfers; more get ERROR "server busy"', int(1, 100000), TFTP_DEFAULTS.maxTransfers)
  .option('--tftp-max-per-client <n>', 'concurrent transfers per client address; more get ERROR "too many transfers from ADDR"', int(1, 100000), TFTP_DEFAULTS.perClient.maxTransfers)
  .option('--tftp-client-rate <n>', 'requests per second per client address (burst twice that); more are dropped unanswered', int(1, 1000000), TFTP_DEFAULTS.perClient.requestsPerSecond)
  .option('--tftp-max-blksize <n>', 'largest blksize granted (also clamped to the path MTU)', int(MIN_BLKSIZE, MAX_BLKSIZE), TFTP_DEFAULTS.maxBlksize)
  .option('--tftp-max-windowsize <n>', 'largest windowsize granted (1 disables RFC 7440)', int(1, MAX_WINDOWSIZE), TFTP_DEFAULTS.maxWindowsize)
  .option('--tftp-rto-ms <ms>', 'initial retransmission timeout', int(1, 255000), TFTP_DEFAULTS.timing.initialMs)
  .option('--tftp-min-rto-ms <ms>', 'floor of the adaptive retransmission timeout', int(1, 60000), TFTP_DEFAULTS.timing.minMs)
  .option('--tftp-max-rto-ms <ms>', 'ceiling of the retransmission timeout (unless the client negotiates timeout)', int(1, 255000), TFTP_DEFAULTS.timing.maxMs)
  .option('--no-tftp-adaptive-rto', 'use a fixed retransmission timeout (--tftp-rto-ms) instead of one from measured RTT')
  .option('--tftp-give-up-ms <ms>', 'abandon a transfer with no progress for this long', int(100, 3600000), TFTP_DEFAULTS.timing.giveUpMs)
  .addOption(new Option('--tftp-transport <kind>', 'datagram path of transfer sockets: native (the fastudp addon, cheaper per datagram; node:dgram when it is not built) or dgram').choices(['native', 'dgram']).default('native'))
  .option('--tftp-busy-poll-us <us>', 'with the native transport, how long a transfer socket keeps polling for the client\'s answer before sleeping; only while at most 2 transfers run, and not for clients that keep missing it (0: off)', int(0, 1000), 20)
  .option('--cache-mb <mb>', 'memory for the shared file cache; larger files are streamed', int(0, 1 << 20), TFTP_DEFAULTS.cacheBytes / (1 << 20))
  .option('--interface <iface>', 'serve DHCP on this interface, and on no other (no DHCP without it)')
  .addOption(new Option('--dhcp-mode <mode>', 'full: addresses and boot files; proxy: boot files beside another server').choices(['full', 'proxy']).default('full'))
  .option('--dhcp-range <start-end>', 'addresses handed out dynamically, e.g. 198.18.0.100-198.18.0.199', ipRange)
  .option('--relay-subnet <net=range[@router]>', 'a subnet served through a relay agent (chosen by giaddr), repeatable: 198.18.5.0/24=198.18.5.100-198.18.5.150@198.18.5.1', relaySubnet, [] as RelaySubnetArg[])
  .addOption(new Option('--unknown-hosts <policy>', 'clients not in the host list: ignore them, lease an address, or lease and boot').choices(['ignore', 'lease', 'boot']).default('ignore'))
  .option('--reserve <mac=ip>', 'fixed address for a MAC (repeatable); the host counts as known', reservation, new Map<string, string>())
  .option('--router <addr>', 'router (option 3) given to clients', ipv4)
  .option('--dns <addr>', 'DNS server (option 6) given to clients', ipv4)
  .option('--lease-time <seconds>', 'lease length', int(10, 365 * 86400), 3600)
  .option('--next-server <addr>', 'TFTP server for boot files (siaddr, option 66); default: this server', ipv4)
  .option('--bios-boot-file <name>', 'boot file for BIOS PXE clients (option 93 = 0)', 'pxelinux.0')
  .option('--efi-boot-file <name>', 'boot file for x64 UEFI PXE clients (option 93 = 7 or 9)', 'syslinux.efi')
  .option('--arm64-efi-boot-file <name>', 'boot file for ARM64 UEFI PXE clients (option 93 = 11) without a loader of their own; default shimaa64.efi (Debian\'s signed shim, then GRUB: docs/arm64.md)')
  .addOption(new Option('--default-loader <loader>', 'boot loader for hosts without loader: and for unknown machines: pxelinux (PXELINUX / syslinux.efi, also under iPXE), ipxe (undionly.kpxe / snponly.efi, then the iPXE script) or grub (UEFI: shim and Debian\'s signed GRUB, for Secure Boot); default: the boot files below, iPXE clients the script').choices(['pxelinux', 'ipxe', 'grub']))
  .option('--ipxe-boot-file <name>', 'what clients already running iPXE get (user class iPXE)', 'boot.ipxe')
  .option('--state <dir>', 'directory for leases, host records, inventory, machine directories and the control socket', '/var/lib/bootd')
  .option('--state-url <url>', 'keep the DHCP leases in PostgreSQL (postgresql://user@host/db, or postgresql:///db?host=/run/postgresql); the schema is applied at start. Several instances may share one database: on one segment one leads and the others stand by')
  .option('--segment <name>', 'with --state-url: the segment this instance serves; instances of one segment share it and one of them leads its DHCP (default: the interface\'s subnet, such as 198.18.0.0/24)')
  .option('--instance <name>', 'with --state-url: this instance\'s name in the database (default: <host name>/<server address>)')
  .option('--machine-ports <first-last>', 'UDP ports for build machines\' write-enabled TFTP servers', portRange, DEFAULT_MACHINE_PORTS)
  .option('--no-smoke', 'do not run images\' smoke tests when hosts come up (bootd smoke NAME still does)')
  .option('--smoke-user <user>', 'SSH user for smoke tests of hosts whose file names none (default root)')
  .option('--smoke-port <port>', 'SSH port for smoke tests (default 22)', int(1, 65535))
  .option('--smoke-key <file>', 'private key for smoke tests (default <state>/ssh/bootd_ed25519, made on first use)')
  .option('--smoke-timeout <seconds>', 'overall time for one smoke test, connection retries included (default 300)', int(1, 3600))
  .option('--build-missing', 'build images that hosts reference but that were never built (downloads packages; buildos needs root)')
  .option('--force', 'serve DHCP even if another DHCP server answers on the interface')
  .option('--dhcp-probe-ms <ms>', 'how long to listen for other DHCP servers before serving', int(100, 60000), 2000)
  .option('--admin-listen <addr:port>', `the admin listener (/metrics, the dashboard, its API), or off; off loopback it needs --admin-token-file (default ${DEFAULT_ADMIN.address}:${DEFAULT_ADMIN.port})`, listenAddress)
  .option('--admin-token-file <file>', 'file holding the admin token (at least 16 characters): every admin request must then carry it (Authorization: Bearer, or the login form\'s cookie)')
  .option('--stale-after <seconds>', 'the dashboard marks a boot stale when nothing was heard of it for this long', int(10, 7 * 86400), 900)
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  .addOption(new Option('--log-format <format>', 'log format').choices(['auto', 'json', 'pretty']).default('auto'))
  .action((o: ServeOptions, cmd: Command) => runServe(o, cmd));
}

/** The flags of `bootd serve` as commander hands them over (and --config fills them in). */
export interface ServeOptions {
  config?: string;
  hosts: string;
  images: string;
  serverAddress?: string;
  kernelArgs?: string[];
  reportTftpPort?: number;
  unknownImage?: ImageRef;
  tftpRoot: string;
  tftpPort: number;
  listen: string;
  pxelinuxHttp: 'auto' | 'lpxelinux' | 'off' | false;
  httpPort?: number;
  tftpMaxTransfers: number;
  tftpMaxPerClient: number;
  tftpClientRate: number;
  tftpMaxBlksize: number;
  tftpMaxWindowsize: number;
  tftpRtoMs: number;
  tftpMinRtoMs: number;
  tftpMaxRtoMs: number;
  tftpAdaptiveRto: boolean;
  tftpGiveUpMs: number;
  tftpTransport: 'native' | 'dgram';
  tftpBusyPollUs: number;
  cacheMb: number;
  interface?: string;
  dhcpMode: 'full' | 'proxy';
  dhcpRange?: [string, string];
  relaySubnet: RelaySubnetArg[];
  unknownHosts: UnknownHosts;
  reserve: Map<string, string>;
  router?: string;
  dns?: string;
  leaseTime: number;
  nextServer?: string;
  biosBootFile: string;
  efiBootFile: string;
  arm64EfiBootFile?: string;
  defaultLoader?: 'pxelinux' | 'ipxe' | 'grub';
  ipxeBootFile: string;
  state: string;
  stateUrl?: string;
  imageOrigin?: string;
  imageCache: number;
  segment?: string;
  instance?: string;
  machinePorts: { first: number; last: number };
  smoke: boolean;
  smokeUser?: string;
  smokePort?: number;
  smokeKey?: string;
  smokeTimeout?: number;
  buildMissing?: boolean;
  force?: boolean;
  dhcpProbeMs: number;
  adminListen?: { address: string; port: number } | 'off';
  adminTokenFile?: string;
  staleAfter: number;
  logLevel: string;
  logFormat: LogFormat;
}

async function runServe(o: ServeOptions, cmd: Command): Promise<void> {
  let log = createLogger({ level: o.logLevel, format: o.logFormat });
  let cfg: AppConfig;
  try {
    mergeConfigFile(o, cmd);
    log = createLogger({ level: o.logLevel, format: o.logFormat });
    cfg = await serveConfig(o, cmd, log);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot start');
    process.exitCode = 1;
    return;
  }
  const ac = new AbortController();
  const onSignal = (sig: string) => () => {
    log.info({ signal: sig }, 'signal received');
    ac.abort();
  };
  process.once('SIGINT', onSignal('SIGINT'));
  process.once('SIGTERM', onSignal('SIGTERM'));
  // SIGHUP (systemctl reload): hosts/*.yaml now (they are watched anyway); the config file is read at
  // start only, because most of it (ports, interface, state directory) needs new sockets. The handler
  // is in place before start: Node's default for SIGHUP would end a bootd that is still starting.
  let started: Awaited<ReturnType<typeof startApp>> | null = null;
  let hupWhileStarting = false;
  const onHup = (): void => {
    if (started === null) {
      hupWhileStarting = true; // done once started
      return;
    }
    log.info({ signal: 'SIGHUP' }, 'reloading hosts/*.yaml; changes to the config file take effect at the next restart');
    void started.hosts?.reload().catch((err: unknown) => log.error({ err: String(err) }, 'hosts reload failed'));
  };
  process.on('SIGHUP', onHup);
  try {
    started = await startApp(cfg, { log, clock: systemClock, udp: transferUdp(o.tftpTransport, o.tftpBusyPollUs, log), mtu: linuxMtu }, ac.signal);
  } catch (err) {
    process.off('SIGHUP', onHup);
    log.error({ err: (err as Error).message }, 'cannot start');
    process.exitCode = 1;
    return;
  }
  const app = started;
  if (hupWhileStarting) onHup();
  await app.stopped;
  process.off('SIGHUP', onHup);
  // stopped by itself (a listener failed while running, logged with the reason): a supervisor restarts it
  process.exitCode = app.failure() === null ? 0 : 1;
}

/** The whole configuration from the flags; throws with the reason bootd cannot start. */
async function serveConfig(o: ServeOptions, cmd: Command, log: Logger): Promise<AppConfig> {
  // the default hosts/ may be absent (TFTP-only use); a directory named by the operator must exist
  const hostsGiven = cmd.getOptionValueSource('hosts') !== 'default';
  if (!existsSync(o.hosts) && hostsGiven) throw new Error(`the hosts directory ${o.hosts} does not exist`);
  const state = path.resolve(o.state);
  const dhcp = o.interface !== undefined ? dhcpConfig(o, o.interface) : undefined;
  const cfg: AppConfig = {
    tftp: tftpConfig(o),
    ...(o.reportTftpPort !== undefined ? { uploads: { port: o.reportTftpPort, dir: path.resolve(state, 'uploads'), quotaBytes: HOST_DEFAULTS.buildQuotaBytes } } : {}),
    ...(o.httpPort !== undefined ? { http: { listen: o.listen, port: o.httpPort } } : {}),
    ...(existsSync(o.hosts) ? { hosts: { dir: path.resolve(o.hosts) } } : {}),
    images: {
      dir: path.resolve(o.images),
      ...(o.buildMissing === true ? { buildMissing: { stateDir: state, authorizedKeys: (await ensureKeyPair(state)).publicKey } } : {}),
      ...(o.imageOrigin !== undefined ? { origin: { url: o.imageOrigin, cacheBytes: o.imageCache } } : {}),
    },
    ...(dhcp ? { dhcp } : {}),
    boot: {
      serverAddress: serverAddress(o, dhcp?.server.serverIp),
      kernelArgs: o.kernelArgs ?? [],
      ...(o.reportTftpPort !== undefined ? { reportTftpPort: o.reportTftpPort } : {}),
      ...(o.unknownImage !== undefined ? { unknownImage: o.unknownImage } : {}),
      ipxeBootFile: o.ipxeBootFile,
    },
    // the after-boot records need somewhere to live: the --state directory, once DHCP or uploads run or --state is given
    ...(o.interface !== undefined || o.reportTftpPort !== undefined || cmd.getOptionValueSource('state') !== 'default' || o.stateUrl !== undefined
      ? { state: { ...stateConfig(o, state), ...(o.stateUrl !== undefined ? { db: { url: o.stateUrl, instance: dhcp?.instance ?? instanceName(o, o.listen) } } : {}) } }
      : {}),
    ...adminConfig(o, log),
    ...(o.stateUrl !== undefined
      ? { fleet: { url: o.stateUrl, instance: dhcp?.instance ?? instanceName(o, o.listen), segment: dhcp?.segment ?? null, serverIp: dhcp?.server.serverIp ?? null } }
      : {}),
  };
  if (!cfg.hosts) log.info({ hosts: o.hosts }, 'no hosts directory: only --reserve hosts are known');
  return cfg;
}

/**
 * The admin listener: on by default on loopback. Off loopback bootd refuses
 * to start without a token file; a token file that is short or readable by
 * others is refused too (a token anyone on the box can read is no token).
 */
function adminConfig(o: ServeOptions, log: Logger): Pick<AppConfig, 'admin'> {
  const given = o.adminListen;
  if (given === 'off') return {};
  const at = given ?? DEFAULT_ADMIN;
  let token: string | null = null;
  if (o.adminTokenFile !== undefined) {
    const file = o.adminTokenFile;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`--admin-token-file ${file}: ${(err as Error).message}`);
    }
    token = text.trim();
    if (token.length < 16 || /\s/.test(token)) throw new Error(`--admin-token-file ${file}: the token must be one word of at least 16 characters (e.g. openssl rand -hex 32 > ${file})`);
    if ((statSync(file).mode & 0o077) !== 0) log.warn({ svc: 'admin', file }, 'the admin token file is readable by group or others; chmod 600 it');
  } else if (!isLoopback(at.address)) {
    throw new Error(`--admin-listen ${at.address}:${at.port} is not a loopback address: give --admin-token-file (or keep the listener on 127.0.0.1)`);
  }
  return { admin: { listen: at.address, port: at.port, token, staleAfterMs: o.staleAfter * 1000, ...(given === undefined ? { optional: true } : {}) } };
}

function tftpConfig(o: ServeOptions): AppConfig['tftp'] {
  return {
    root: o.tftpRoot,
    listen: o.listen,
    port: o.tftpPort,
    maxTransfers: o.tftpMaxTransfers,
    perClient: { maxTransfers: o.tftpMaxPerClient, requestsPerSecond: o.tftpClientRate, burst: 2 * o.tftpClientRate },
    maxBlksize: o.tftpMaxBlksize,
    maxWindowsize: o.tftpMaxWindowsize,
    timing: { initialMs: o.tftpRtoMs, minMs: o.tftpMinRtoMs, maxMs: o.tftpMaxRtoMs, adaptive: o.tftpAdaptiveRto !== false, giveUpMs: o.tftpGiveUpMs },
    cacheBytes: o.cacheMb * (1 << 20),
  };
}

function stateConfig(o: ServeOptions, dir: string): NonNullable<AppConfig['state']> {
  const smokeDefaults = {
    ...(o.smokeUser !== undefined ? { user: o.smokeUser } : {}),
    ...(o.smokePort !== undefined ? { port: o.smokePort } : {}),
    ...(o.smokeKey !== undefined ? { identityFile: path.resolve(o.smokeKey) } : {}),
    ...(o.smokeTimeout !== undefined ? { timeoutSeconds: o.smokeTimeout } : {}),
  };
  return { dir, smoke: o.smoke !== false, machinePorts: o.machinePorts, smokeDefaults };
}

/** DHCP on `iface`: its address and mask from the kernel, the range checked against them. */
function dhcpConfig(o: ServeOptions, iface: string): NonNullable<AppConfig['dhcp']> {
  const proxy = o.dhcpMode === 'proxy';
  const addr = interfaceAddress(iface, o.listen);
  // proxy mode leases nothing; the range only sizes an unused pool
  const range = o.dhcpRange ?? (proxy ? ([addr.address, addr.address] as [string, string]) : undefined);
  if (!range) throw new Error('--interface needs --dhcp-range START-END in full mode');
  const mask = parseIpv4(addr.netmask) as number;
  const net = (parseIpv4(addr.address) as number) & mask;
  for (const a of range) {
    if (((parseIpv4(a) as number) & mask) !== net) throw new Error(`--dhcp-range address ${a} is not on ${iface}'s network ${addr.address}/${addr.netmask}`);
  }
  const relayed = o.relaySubnet;
  return {
    interface: iface,
    rangeStart: range[0],
    rangeEnd: range[1],
    reservations: o.reserve,
    stateDir: path.resolve(o.state),
    ...(o.stateUrl !== undefined ? { stateUrl: o.stateUrl, instance: instanceName(o, addr.address), segment: o.segment ?? cidrOf(addr.address, addr.netmask) } : {}),
    force: o.force === true,
    probeMs: o.dhcpProbeMs,
    relayedRanges: relayed.map((r) => ({ start: r.start, end: r.end })),
    server: {
      mode: proxy ? 'proxy' : 'full',
      relayed: relayed.map((r) => ({ network: r.network, mask: r.mask, ...(r.router ? { router: r.router } : {}) })),
      serverIp: addr.address,
      subnetMask: addr.netmask,
      ...(o.router ? { router: o.router } : {}),
      ...(o.dns ? { dns: [o.dns] } : {}),
      ...(o.nextServer ? { nextServer: o.nextServer } : {}),
      leaseSeconds: o.leaseTime,
      unknownHosts: o.unknownHosts,
      ...(o.defaultLoader !== undefined ? { defaultLoader: o.defaultLoader } : {}),
      bootFiles: bootFiles(o, addr.address),
    },
  };
}

/** This instance's name in a shared database: --instance, else host name and server address (unique on a machine with several). */
export function instanceName(o: Pick<ServeOptions, 'instance'>, address: string): string {
  return o.instance ?? `${os.hostname()}/${address}`;
}

function bootFiles(o: ServeOptions, dhcpAddress: string): NonNullable<AppConfig['dhcp']>['server']['bootFiles'] {
  // Debian ships no other arm64 boot loader than its signed shim and GRUB
  const arm64 = o.arm64EfiBootFile ?? 'shimaa64.efi';
  // where boot clients reach bootd's HTTP server: iPXE's script URL and PXELINUX's option 210
  const httpBase = o.httpPort !== undefined ? `http://${serverAddress(o, dhcpAddress)}:${o.httpPort}` : undefined;
  return {
    bios: o.biosBootFile,
    efi: { 'efi-x64': o.efiBootFile, ...(arm64 ? { 'efi-arm64': arm64 } : {}) },
    // iPXE follows a URL in option 67; relative names in its scripts then resolve over HTTP too
    ipxe: httpBase !== undefined && !/^[a-z]+:\/\//.test(o.ipxeBootFile) ? `${httpBase}/${o.ipxeBootFile}` : o.ipxeBootFile,
    // UEFI HTTP Boot clients (option 60 HTTPClient) get URLs on this server: without it, no boot file
    ...(httpBase !== undefined ? { httpBase } : {}),
    // PXELINUX over HTTP: under an iPXE ROM pxelinux.0 with option 210 = our HTTP URL loads everything
    // after the NBP through iPXE's HTTP; on a plain PXE ROM, lpxelinux.0 under http/ reads
    // http/pxelinux.cfg/*, where kernel and initrds are URLs (hosts in hosts/ only)
    ...(httpBase !== undefined && o.pxelinuxHttp !== false && o.pxelinuxHttp !== 'off'
      ? {
          ...(o.pxelinuxHttp === 'auto' ? { pxelinuxHttpBase: httpBase } : {}),
          knownHostLoaders: { ...DEFAULT_LOADER_FILES, pxelinux: { ...DEFAULT_LOADER_FILES.pxelinux, bios: 'http/lpxelinux.0' } },
        }
      : {}),
  };
}

/** node:dgram, or the fastudp addon for transfer sockets (--tftp-transport), saying which. */
function transferUdp(kind: string, busyPollUs: number, log: Logger): UdpSocketFactory {
  if (kind === 'dgram') {
    log.info({ svc: 'tftp', transport: 'dgram' }, 'tftp transport');
    return nodeUdp;
  }
  const { addon, reason } = loadFastUdp();
  if (!addon) log.warn({ svc: 'tftp', transport: 'dgram', reason }, 'tftp transport: fastudp addon unavailable, using node:dgram');
  else {
    addon.configure(busyPollUs);
    log.info({ svc: 'tftp', transport: 'native', busyPollUs }, 'tftp transport');
  }
  return fastUdp(nodeUdp, addon);
}
