/**
 * Real TFTP clients from Debian packages against `bootd serve`, inside a test
 * network namespace pair: tftp-hpa, atftp, curl and busybox tftp fetch files
 * of 0, 511, 512, 513 bytes and one of more than 65535 blocks at blksize 512.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED tftp interop tests: ${skip}`);

const SIZES: Record<string, number> = {
  'zero.bin': 0,
  's511.bin': 511,
  's512.bin': 512,
  's513.bin': 513,
  // 65535 blocks of 512 bytes is 32 MiB - 512; this needs block 65536, which is 0 on the wire
  'rollover.bin': 65536 * 512 + 1000,
};

async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return h.digest('hex');
}

type ClientCmd = (server: string, file: string, out: string) => string[];
const CLIENTS: Record<string, ClientCmd> = {
  'tftp-hpa': (s, f, out) => ['tftp', '-m', 'binary', s, '69', '-c', 'get', f, out],
  atftp: (s, f, out) => ['atftp', '--option', 'blksize 512', '--option', 'windowsize 8', '-g', '-r', f, '-l', out, s, '69'],
  'atftp (blksize 1468, windowsize 16)': (s, f, out) => ['atftp', '--option', 'blksize 1468', '--option', 'windowsize 16', '-g', '-r', f, '-l', out, s, '69'],
  curl: (s, f, out) => ['curl', '-sS', '--max-time', '120', '--tftp-blksize', '512', '-o', out, `tftp://${s}/${f}`],
  'busybox tftp': (s, f, out) => ['busybox', 'tftp', '-g', '-r', f, '-l', out, s],
};

describe.skipIf(skip !== null)('real TFTP clients against bootd serve (network namespaces)', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;
  const sums: Record<string, string> = {};

  beforeAll(async () => {
    dir = await makeWorkDir('interop');
    const root = path.join(dir, 'root');
    for (const [name, size] of Object.entries(SIZES)) {
      const data = randomBytes(size);
      await writeFile(path.join(root, name), data);
      sums[name] = createHash('sha256').update(data).digest('hex');
    }
    net = await TestNet.create({ hosts: ['server', 'client'] });
    bootd = await startBootd(net, 'server', ['--tftp-root', root, '--tftp-port', '69', '--listen', net.host('server').address]);
  });

  afterAll(async () => {
    if (bootd) {
      const code = await bootd.stop('SIGTERM');
      expect(code).toBe(0); // clean shutdown on SIGTERM
    }
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [client, cmd] of Object.entries(CLIENTS)) {
    for (const file of Object.keys(SIZES)) {
      if (client.includes('1468') && file === 'rollover.bin') continue; // 1468-byte blocks never reach 65536
      it(`${client} fetches ${file} (${SIZES[file]} bytes) intact`, async () => {
        const out = path.join(dir, `${client.replace(/\W+/g, '_')}-${file}`);
        const r = await net.run('client', cmd(net.host('server').address, file, out), { timeoutMs: 180_000 });
        expect(r.exitCode, `${client} stderr: ${r.stderr}`).toBe(0);
        expect(await sha256File(out)).toBe(sums[file]);
        await rm(out, { force: true });
      });
    }
  }

  it('logs one line per finished transfer with peer, file, bytes, blksize, windowsize, duration and outcome', () => {
    const lines = bootd.logs.filter((l) => l.msg === 'tftp transfer');
    expect(lines.length).toBeGreaterThanOrEqual(20);
    for (const l of lines) {
      expect(l).toMatchObject({ outcome: 'complete' });
      expect(l).toHaveProperty('peer');
      expect(l).toHaveProperty('file');
      expect(typeof l.bytes).toBe('number');
      expect(typeof l.blksize).toBe('number');
      expect(typeof l.windowsize).toBe('number');
      expect(typeof l.durationMs).toBe('number');
    }
    expect(lines.some((l) => l.windowsize === 16 && l.blksize === 1468)).toBe(true);
    // the fastudp transport's ACK pump answered the in-order ACKs of each client's 65,538-block transfer
    const rollover = lines.filter((l) => l.file === 'rollover.bin');
    expect(rollover.map((l) => l.windowsize as number).sort()).toEqual([1, 1, 1, 8]);
    for (const l of rollover) expect(l.pumpedAcks as number).toBeGreaterThan(65_538 / (l.windowsize as number) / 2);
  });

  it('answers a missing file with ERROR 1, which each client reports as "not found"', async () => {
    const s = net.host('server').address;
    const missing = 'pxelinux.cfg/0AD54D81';
    const curl = await net.run('client', ['curl', '-sS', `tftp://${s}/${missing}`, '-o', '/dev/null']);
    expect(curl.exitCode).toBe(68); // CURLE_TFTP_NOTFOUND (curl 7.88 prints a wrong text with it)
    const hpa = await net.run('client', ['tftp', s, '-c', 'get', missing, '/dev/null']);
    expect(hpa.stdout + hpa.stderr).toMatch(/Error code 1: File not found/);
    const busybox = await net.run('client', ['busybox', 'tftp', '-g', '-r', missing, '-l', '/dev/null', s]);
    expect(busybox.exitCode).not.toBe(0);
    expect(busybox.stderr).toMatch(/not found/i);
  });

  it('listening on 0.0.0.0, clamps blksize to the MTU of the interface that carries the transfer', async () => {
    const server = net.host('server');
    const mtu = await net.run('server', ['ip', 'link', 'set', 'eth0', 'mtu', '1000']);
    expect(mtu.exitCode).toBe(0);
    const second = await startBootd(net, 'server', ['--tftp-root', path.join(dir, 'root'), '--tftp-port', '6969']);
    try {
      const out = path.join(dir, 'mtu.out');
      const r = await net.run('client', ['atftp', '--trace', '--option', 'blksize 1468', '-g', '-r', 's513.bin', '-l', out, server.address, '6969']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).toMatch(/OACK <[^>]*blksize: 968/); // 1000 - 20 (IP) - 8 (UDP) - 4 (TFTP)
      expect(createHash('sha256').update(await readFile(out)).digest('hex')).toBe(sums['s513.bin']);
    } finally {
      await second.stop();
      await net.run('server', ['ip', 'link', 'set', 'eth0', 'mtu', '1500']);
    }
  });

  it('runs transfers on the fastudp transport by default, and intact on node:dgram with --tftp-transport dgram', async () => {
    expect(bootd.logs.find((l) => l.msg === 'tftp transport')).toMatchObject({ transport: 'native', busyPollUs: 20 });
    const second = await startBootd(net, 'server', ['--tftp-root', path.join(dir, 'root'), '--tftp-port', '6970', '--tftp-transport', 'dgram']);
    try {
      expect(second.logs.find((l) => l.msg === 'tftp transport')).toMatchObject({ transport: 'dgram' });
      for (const [client, cmd] of [['curl', ['curl', '-sS', '--tftp-blksize', '1468', '-o']], ['busybox', ['busybox', 'tftp', '-b', '512', '-g', '-r', 'rollover.bin', '-l']]] as const) {
        const out = path.join(dir, `dgram-${client}.out`);
        const argv = client === 'curl' ? [...cmd, out, `tftp://${net.host('server').address}:6970/rollover.bin`] : [...cmd, out, net.host('server').address, '6970'];
        const r = await net.run('client', argv, { timeoutMs: 180_000 });
        expect(r.exitCode, `${client}: ${r.stderr}`).toBe(0);
        expect(createHash('sha256').update(await readFile(out)).digest('hex')).toBe(sums['rollover.bin']);
      }
    } finally {
      await second.stop();
    }
  });

  it('refuses an upload on the main port with an access violation', async () => {
    const src = path.join(dir, 'upload.txt');
    await writeFile(src, 'hello');
    const r = await net.run('client', ['busybox', 'tftp', '-p', '-l', src, '-r', 'upload.txt', net.host('server').address]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/not allowed|access violation/i);
  });
});
