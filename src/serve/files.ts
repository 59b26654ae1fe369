/**
 * Wiring of the file servers: TFTP on the main port, the write-enabled
 * upload port, and HTTP over the same file tree and cache. Only wiring: the
 * protocols are in src/tftp/ and src/http/, the file tree in src/files/.
 */
import { promises as fs } from 'node:fs';
import type { EventSink } from '../events/types.js';
import type { Resolver } from '../files/root.js';
import type { HostLocator } from '../hosts/locate.js';
import type { HostSet } from '../hosts/directory.js';
import { HttpFileServer, httpLimitsFor } from '../http/server.js';
import type { Logger } from '../log.js';
import type { Clock } from '../net/clock.js';
import { openFileLimit } from '../net/fd-limit.js';
import { cachedMtu, type MtuLookup } from '../net/mtu.js';
import type { UdpSocketFactory } from '../net/udp.js';
import type { ClientLimits } from '../tftp/client-limits.js';
import { TftpServer } from '../tftp/server.js';
import type { TimingConfig } from '../tftp/session.js';
import { FileCache } from '../files/source.js';
import { HostUploadDirs } from '../uploads/host-dirs.js';
import { sweepPartials } from '../uploads/file-sink.js';
import path from 'node:path';

export interface TftpWiring {
  readonly root: string;
  readonly listen: string;
  readonly port: number;
  readonly maxTransfers: number;
  /** Per client address (TFTP_DEFAULTS.perClient when absent). */
  readonly perClient?: ClientLimits;
  readonly maxBlksize: number;
  readonly maxWindowsize: number;
  readonly timing: TimingConfig;
  readonly cacheBytes: number;
}

export interface FileWiringDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly udp: UdpSocketFactory;
  readonly mtu: MtuLookup;
  readonly events: EventSink;
  readonly onFatal: (server: string) => (err: Error) => void;
}

export async function startTftp(c: TftpWiring, deps: FileWiringDeps, root: Resolver, cache: FileCache, locator: HostLocator): Promise<TftpServer> {
  const tftp = new TftpServer({
    listener: await deps.udp.bind({ address: c.listen, port: c.port, recvBufferBytes: 4 << 20 }),
    udp: deps.udp,
    clock: deps.clock,
    root,
    cache,
    mtu: cachedMtu(deps.mtu),
    log: deps.log.child({ svc: 'tftp' }),
    limitsFor: (peer) => locator.tftpLimits(peer.address),
    events: { sink: deps.events, protocol: 'tftp' },
    onFatal: deps.onFatal('tftp'),
    config: {
      maxTransfers: c.maxTransfers,
      maxBlksize: c.maxBlksize,
      maxWindowsize: c.maxWindowsize,
      timing: c.timing,
      transferAddress: c.listen,
      ...(c.perClient ? { perClient: c.perClient } : {}),
    },
  });
  const addr = tftp.address;
  deps.log.info({ svc: 'tftp', listen: `${addr.address}:${addr.port}`, root: c.root }, 'tftp listening');
  return tftp;
}

/** The write-enabled port (bee.report= uploads): each host writes only into `<dir>/<host>/`, known by its address. */
export async function startUploads(u: { readonly port: number; readonly dir: string; readonly quotaBytes: number }, c: TftpWiring, deps: FileWiringDeps, locator: HostLocator, hosts: () => HostSet | undefined): Promise<TftpServer> {
  await fs.mkdir(u.dir, { recursive: true });
  // partial uploads a crash left behind: never completed, never counted, gone before the port opens
  const swept = await sweepPartials(u.dir);
  if (swept > 0) deps.log.info({ svc: 'uploads', dir: u.dir, removed: swept }, 'removed partial uploads left by a crash');
  const policy = new HostUploadDirs(u.dir, {
    whoIs: (address) => locator.uploadName(address),
    quotaBytes: (name) => hosts()?.byName(name)?.build?.quotaBytes ?? u.quotaBytes,
  });
  const uploads = new TftpServer({
    listener: await deps.udp.bind({ address: c.listen, port: u.port }),
    udp: deps.udp,
    clock: deps.clock,
    root: policy,
    cache: new FileCache(0),
    mtu: cachedMtu(deps.mtu),
    log: deps.log.child({ svc: 'uploads' }),
    writes: policy,
    events: { sink: deps.events, protocol: 'upload', storedAt: (file) => path.join(u.dir, file) },
    onFatal: deps.onFatal('uploads'),
    config: { maxTransfers: 64, maxBlksize: c.maxBlksize, maxWindowsize: c.maxWindowsize, timing: c.timing, transferAddress: c.listen },
  });
  deps.log.info({ svc: 'uploads', listen: `${uploads.address.address}:${uploads.address.port}`, dir: u.dir }, 'tftp uploads listening');
  return uploads;
}

export async function startHttp(h: { readonly listen: string; readonly port: number }, deps: FileWiringDeps, root: Resolver, cache: FileCache): Promise<HttpFileServer> {
  let http: HttpFileServer;
  try {
    http = await HttpFileServer.start({ root, cache, clock: deps.clock, log: deps.log.child({ svc: 'http' }), limits: httpLimitsFor(openFileLimit()), events: deps.events, onFatal: deps.onFatal('http') }, h.listen, h.port);
  } catch (err) {
    throw new Error(`cannot listen for HTTP on ${h.listen}:${h.port}: ${(err as Error).message}`);
  }
  const ha = http.address;
  const warmStart = deps.clock.now();
  await http.warmUp();
  deps.log.info({ svc: 'http', listen: `${ha.address}:${ha.port}`, warmUpMs: Math.round(deps.clock.now() - warmStart) }, 'http listening');
  return http;
}
