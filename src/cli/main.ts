/**
 * The `bootd` command line. Each subcommand parses its flags into typed
 * configuration and hands over to the composition root in ../app.ts.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { startApp, type AppConfig } from '../app.js';
import { createLogger, type LogFormat } from '../log.js';
import { systemClock } from '../net/clock.js';
import { linuxMtu } from '../net/mtu.js';
import { nodeUdp } from '../net/udp.js';
import { TFTP_DEFAULTS } from '../tftp/server.js';
import { MAX_BLKSIZE, MAX_WINDOWSIZE, MIN_BLKSIZE } from '../tftp/options.js';

function int(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

function ipv4(value: string): string {
  const parts = value.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new InvalidArgumentError(`expected an IPv4 address such as 0.0.0.0 or 127.0.0.1, got "${value}"`);
  }
  return value;
}

const program = new Command('bootd').description('Network-boot appliance: DHCP and TFTP in one process').version('0.1.0');

program
  .command('serve')
  .description('run the boot servers until SIGINT/SIGTERM')
  .option('--tftp-root <dir>', 'directory served over TFTP (read-only)', '/var/lib/bootd/tftp')
  .option('--tftp-port <port>', 'UDP port for TFTP requests', int(0, 65535), TFTP_DEFAULTS.port)
  .option('--listen <addr>', 'IPv4 address TFTP listens on', ipv4, '0.0.0.0')
  .option('--tftp-max-transfers <n>', 'concurrent transfers; more get ERROR "server busy"', int(1, 100000), TFTP_DEFAULTS.maxTransfers)
  .option('--tftp-max-blksize <n>', 'largest blksize granted (also clamped to the path MTU)', int(MIN_BLKSIZE, MAX_BLKSIZE), TFTP_DEFAULTS.maxBlksize)
  .option('--tftp-max-windowsize <n>', 'largest windowsize granted (1 disables RFC 7440)', int(1, MAX_WINDOWSIZE), TFTP_DEFAULTS.maxWindowsize)
  .option('--tftp-rto-ms <ms>', 'initial retransmission timeout', int(1, 255000), TFTP_DEFAULTS.timing.initialMs)
  .option('--tftp-min-rto-ms <ms>', 'floor of the adaptive retransmission timeout', int(1, 60000), TFTP_DEFAULTS.timing.minMs)
  .option('--tftp-max-rto-ms <ms>', 'ceiling of the retransmission timeout (unless the client negotiates timeout)', int(1, 255000), TFTP_DEFAULTS.timing.maxMs)
  .option('--no-tftp-adaptive-rto', 'use a fixed retransmission timeout (--tftp-rto-ms) instead of one from measured RTT')
  .option('--tftp-give-up-ms <ms>', 'abandon a transfer with no progress for this long', int(100, 3600000), TFTP_DEFAULTS.timing.giveUpMs)
  .option('--cache-mb <mb>', 'memory for the shared file cache; larger files are streamed', int(0, 1 << 20), TFTP_DEFAULTS.cacheBytes / (1 << 20))
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  .addOption(new Option('--log-format <format>', 'log format').choices(['auto', 'json', 'pretty']).default('auto'))
  .action(async (o: Record<string, unknown>) => {
    const log = createLogger({ level: String(o.logLevel), format: o.logFormat as LogFormat });
    const cfg: AppConfig = {
      tftp: {
        root: String(o.tftpRoot),
        listen: String(o.listen),
        port: o.tftpPort as number,
        maxTransfers: o.tftpMaxTransfers as number,
        maxBlksize: o.tftpMaxBlksize as number,
        maxWindowsize: o.tftpMaxWindowsize as number,
        timing: {
          initialMs: o.tftpRtoMs as number,
          minMs: o.tftpMinRtoMs as number,
          maxMs: o.tftpMaxRtoMs as number,
          adaptive: o.tftpAdaptiveRto !== false,
          giveUpMs: o.tftpGiveUpMs as number,
        },
        cacheBytes: (o.cacheMb as number) * (1 << 20),
      },
    };
    const ac = new AbortController();
    const onSignal = (sig: string) => () => {
      log.info({ signal: sig }, 'signal received');
      ac.abort();
    };
    process.once('SIGINT', onSignal('SIGINT'));
    process.once('SIGTERM', onSignal('SIGTERM'));
    let app;
    try {
      app = await startApp(cfg, { log, clock: systemClock, udp: nodeUdp, mtu: linuxMtu }, ac.signal);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot start');
      process.exitCode = 1;
      return;
    }
    await app.stopped;
    process.exitCode = 0;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`bootd: ${(err as Error).message}`);
  process.exit(1);
});
