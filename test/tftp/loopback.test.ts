/**
 * The wiring with real sockets on 127.0.0.1 (no namespace needed: nothing
 * leaves loopback and no DHCP is involved): the composition root serving a
 * windowed transfer, the fastudp transport's ACK pump recovering lost blocks,
 * and the CLI ending an in-flight transfer on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { systemClock } from '../../src/net/clock.js';
import { linuxMtu } from '../../src/net/mtu.js';
import { fastUdp, loadFastUdp } from '../../src/net/native-udp.js';
import { nodeUdp, type UdpSocket } from '../../src/net/udp.js';
import { TFTP_DEFAULTS } from '../../src/tftp/server.js';
import { flat, type FlatTransfer } from '../helpers/events.js';
import { BOOTD_BIN } from '../helpers/bootd.js';
import { TestClient } from '../helpers/tftp-client.js';
import { until } from '../helpers/workdir.js';

let dir: string;
const data = randomBytes(3 * 1024 * 1024 + 77);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-loop-'));
  await writeFile(path.join(dir, 'initrd.img'), data);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('bootd on 127.0.0.1 with real sockets', () => {
  it('serves a windowed transfer through the composition root, then stops cleanly on abort', async () => {
    const ac = new AbortController();
    const app: App = await startApp(
      {
        tftp: {
          root: dir,
          listen: '127.0.0.1',
          port: 0,
          maxTransfers: 10,
          maxBlksize: TFTP_DEFAULTS.maxBlksize,
          maxWindowsize: TFTP_DEFAULTS.maxWindowsize,
          timing: TFTP_DEFAULTS.timing,
          cacheBytes: 64 << 20,
        },
      },
      { log: silentLogger, clock: systemClock, udp: nodeUdp, mtu: linuxMtu },
      ac.signal,
    );
    const sock: UdpSocket = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    try {
      const c = new TestClient(sock, app.tftp.address);
      c.request('initrd.img', [
        { name: 'tsize', value: '0' },
        { name: 'blksize', value: '8192' },
        { name: 'windowsize', value: '16' },
      ]);
      await until(() => c.done, 30_000, 'the windowed transfer', 10);
      expect(c.oack).toEqual({ tsize: String(data.length), blksize: '8192', windowsize: '16' });
      expect(sha(c.data)).toBe(sha(data));
      await until(() => app.tftp.counters.completed === 1, 5000, 'the server to count the transfer', 10); // the server may not have read the final ACK yet
    } finally {
      sock.close();
      ac.abort();
      await app.stopped;
    }
  });

  it('on the fastudp transport, the socket answers the in-order ACKs and JavaScript still resends the blocks a client never got', async () => {
    const { addon, reason } = loadFastUdp();
    expect(addon, reason).not.toBeNull();
    const ac = new AbortController();
    const tftp = { root: dir, listen: '127.0.0.1', port: 0, maxTransfers: 10, maxBlksize: TFTP_DEFAULTS.maxBlksize, maxWindowsize: TFTP_DEFAULTS.maxWindowsize, timing: TFTP_DEFAULTS.timing, cacheBytes: 64 << 20 };
    const app: App = await startApp({ tftp }, { log: silentLogger, clock: systemClock, udp: fastUdp(nodeUdp, addon), mtu: linuxMtu }, ac.signal);
    const results: FlatTransfer[] = [];
    app.events.subscribe('test', (e) => {
      if (e.type === 'transfer.finished') results.push(flat(e));
    });
    const sock: UdpSocket = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    try {
      for (const [i, windowsize] of [[0, 1], [1, 4]] as const) {
        // the client ignores the first copy of three blocks in the middle, as if the network had lost them
        const lose = new Set([700, 701, 1500]);
        const c = new TestClient(sock, app.tftp.address, (block) => lose.delete(block));
        c.request('initrd.img', [
          { name: 'blksize', value: '1468' },
          { name: 'windowsize', value: String(windowsize) },
        ]);
        await until(() => c.done, 30_000, `the transfer with windowsize ${windowsize}`, 10);
        await until(() => results.length === i + 1, 5000, 'the transfer result', 10);
        expect(sha(c.data)).toBe(sha(data));
        expect(lose.size).toBe(0);
        const blocks = Math.floor(data.length / 1468) + 1; // 2143
        expect(results[i]).toMatchObject({ outcome: 'complete', bytes: data.length, windowsize });
        expect(results[i]?.retransmits).toBeGreaterThanOrEqual(2);
        // in lock-step nearly every ACK goes through the pump; with a window, one in four
        expect(results[i]?.pumpedAcks).toBeGreaterThan(((blocks / windowsize) * 9) / 10);
      }
    } finally {
      sock.close();
      ac.abort();
      await app.stopped;
    }
  });

  it('answers a datagram from an unknown transfer ID with ERROR 5 to its source and leaves the transfer undisturbed (RFC 1350 section 4)', async () => {
    const { addon, reason } = loadFastUdp();
    expect(addon, reason).not.toBeNull();
    const ac = new AbortController();
    const tftp = { root: dir, listen: '127.0.0.1', port: 0, maxTransfers: 10, maxBlksize: TFTP_DEFAULTS.maxBlksize, maxWindowsize: TFTP_DEFAULTS.maxWindowsize, timing: TFTP_DEFAULTS.timing, cacheBytes: 64 << 20 };
    const app: App = await startApp({ tftp }, { log: silentLogger, clock: systemClock, udp: fastUdp(nodeUdp, addon), mtu: linuxMtu }, ac.signal);
    const sock: UdpSocket = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    const stranger: UdpSocket = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    const got: { msg: Buffer; from: string }[] = [];
    stranger.onMessage((msg, from) => got.push({ msg: Buffer.from(msg), from: `${from.address}:${from.port}` }));
    try {
      // the client holds back its ACK of block 3 until the stranger has been answered
      let hold = true;
      const c = new TestClient(sock, app.tftp.address, (block) => block === 3 && hold);
      c.request('initrd.img', [{ name: 'blksize', value: '1024' }]);
      await until(() => c.serverTid !== null && c.dataSeen >= 2, 10_000, 'a transfer in flight', 10);
      const tid = c.serverTid as { address: string; port: number };
      const before = addon?.unknownTids() ?? 0;
      stranger.send(Buffer.from([0, 4, 0, 2]), tid); // an ACK for the transfer, from another port
      stranger.send(Buffer.from([0, 5, 0, 0, 0x78, 0]), tid); // an ERROR from it: not answered (no loops)
      await until(() => got.length >= 1 && (addon?.unknownTids() ?? 0) >= before + 2, 5000, 'the ERROR 5', 10);
      expect(got).toHaveLength(1);
      expect(got[0]?.from).toBe(`${tid.address}:${tid.port}`);
      expect(got[0]?.msg.readUInt16BE(0)).toBe(5);
      expect(got[0]?.msg.readUInt16BE(2)).toBe(5);
      expect(got[0]?.msg.subarray(4, -1).toString()).toBe('Unknown transfer ID');
      hold = false;
      c.reack(); // the client's own retry goes on: the transfer completes
      await until(() => c.done, 30_000, 'the transfer to complete', 10);
      expect(c.error).toBeNull();
      expect(sha(c.data)).toBe(sha(data));
    } finally {
      sock.close();
      stranger.close();
      ac.abort();
      await app.stopped;
    }
  });

  it('takes the per-client limits from the appliance config (tftp.max_per_client): a second transfer from one address is refused', async () => {
    const cfg = path.join(dir, 'limits.yaml');
    await writeFile(cfg, 'tftp:\n  max_per_client: 1\n  client_rate: 1000\n');
    const child = spawn(process.execPath, [BOOTD_BIN, 'serve', '--config', cfg, '--tftp-root', dir, '--listen', '127.0.0.1', '--tftp-port', '0', '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const a = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    const b = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    try {
      await until(() => /tftp listening/.test(log), 20_000, 'bootd to listen', 10);
      const port = Number(/"listen":"127\.0\.0\.1:(\d+)"/.exec(log)?.[1]);
      const first = new TestClient(a, { address: '127.0.0.1', port }, () => true); // never ACKs: its transfer stays open
      first.request('initrd.img');
      await until(() => first.dataSeen > 0, 10_000, 'the first transfer', 10);
      const second = new TestClient(b, { address: '127.0.0.1', port });
      second.request('initrd.img');
      await until(() => second.error !== null, 10_000, 'the refusal', 10);
      expect(second.error).toEqual({ code: 0, message: 'Too many transfers from 127.0.0.1, retry later' });
    } finally {
      a.close();
      b.close();
      child.kill('SIGTERM');
    }
  });

  it('on SIGHUP reloads hosts/*.yaml and keeps serving (systemctl reload)', async () => {
    const hosts = path.join(dir, 'hup-hosts');
    await mkdir(hosts, { recursive: true });
    const child = spawn(process.execPath, [BOOTD_BIN, 'serve', '--hosts', hosts, '--tftp-root', dir, '--listen', '127.0.0.1', '--tftp-port', '0', '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await until(() => /tftp listening/.test(log), 20_000, 'bootd to listen', 10);
      const loads = (): number => log.split('"msg":"hosts loaded"').length - 1;
      const before = loads();
      child.kill('SIGHUP');
      await until(() => /reloading hosts/.test(log) && loads() === before + 1, 10_000, 'the reload', 10);
      expect(child.exitCode).toBeNull(); // Node's default for SIGHUP would have ended the process
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('on SIGTERM ends an in-flight transfer with an ERROR to the client and exits 0', async () => {
    const child = spawn(process.execPath, [BOOTD_BIN, 'serve', '--tftp-root', dir, '--listen', '127.0.0.1', '--tftp-port', '0', '--log-format', 'json'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const sock = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    try {
      await until(() => /tftp listening/.test(log), 20_000, 'bootd to listen', 10);
      const port = Number(/"listen":"127\.0\.0\.1:(\d+)"/.exec(log)?.[1]);
      expect(port).toBeGreaterThan(0);
      // a client that stops acknowledging after block 2 keeps the transfer in flight
      const c = new TestClient(sock, { address: '127.0.0.1', port }, (block) => block > 2);
      c.request('initrd.img');
      await until(() => c.dataSeen >= 3, 10_000, 'a transfer in flight', 10);
      child.kill('SIGTERM');
      await until(() => c.error !== null, 10_000, 'the shutdown ERROR', 10);
      expect(c.error).toEqual({ code: 0, message: 'Server shutting down' });
      expect(await exited).toBe(0);
      expect(log).toMatch(/"outcome":"shutdown"/);
    } finally {
      sock.close();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
