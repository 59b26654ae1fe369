/**
 * The composition root: builds every server from one configuration, starts
 * them under one AbortSignal, and stops them all when it is aborted or when
 * one of them fails. Nothing else in bootd constructs sockets or servers.
 */
import type { Clock } from './net/clock.js';
import { cachedMtu, type MtuLookup } from './net/mtu.js';
import type { UdpSocketFactory } from './net/udp.js';
import type { Logger } from './log.js';
import { FileRoot, VirtualFileTable } from './tftp/fileroot.js';
import { TftpServer } from './tftp/server.js';
import { FileCache } from './tftp/source.js';
import type { TimingConfig } from './tftp/session.js';

export interface AppConfig {
  readonly tftp: {
    readonly root: string;
    readonly listen: string;
    readonly port: number;
    readonly maxTransfers: number;
    readonly maxBlksize: number;
    readonly maxWindowsize: number;
    readonly timing: TimingConfig;
    readonly cacheBytes: number;
  };
}

export interface AppDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly udp: UdpSocketFactory;
  readonly mtu: MtuLookup;
}

export interface App {
  readonly tftp: TftpServer;
  /** Registered generated files (pxelinux configs, iPXE scripts) served over TFTP. */
  readonly virtualFiles: VirtualFileTable;
  /** Resolves when every server has stopped. */
  readonly stopped: Promise<void>;
}

export async function startApp(cfg: AppConfig, deps: AppDeps, signal: AbortSignal): Promise<App> {
  const log = deps.log;
  const virtualFiles = new VirtualFileTable();
  const root = await FileRoot.open(cfg.tftp.root, [virtualFiles]);
  const listener = await deps.udp.bind({ address: cfg.tftp.listen, port: cfg.tftp.port, recvBufferBytes: 4 << 20 });
  const cache = new FileCache(cfg.tftp.cacheBytes);
  const tftp = new TftpServer({
    listener,
    udp: deps.udp,
    clock: deps.clock,
    root,
    cache,
    mtu: cachedMtu(deps.mtu),
    log: log.child({ svc: 'tftp' }),
    config: {
      maxTransfers: cfg.tftp.maxTransfers,
      maxBlksize: cfg.tftp.maxBlksize,
      maxWindowsize: cfg.tftp.maxWindowsize,
      timing: cfg.tftp.timing,
      transferAddress: cfg.tftp.listen,
    },
  });
  const addr = tftp.address;
  log.info({ svc: 'tftp', listen: `${addr.address}:${addr.port}`, root: root.realRoot }, 'tftp listening');

  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      log.info({ active: tftp.counters.active }, 'stopping');
      void tftp.close().then(() => {
        // peak resident memory, for boot-storm measurements (docs/performance.md)
        log.info({ stats: tftp.counters, cache: cache.stats(), maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }, 'stopped');
        resolve();
      });
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  return { tftp, virtualFiles, stopped };
}
