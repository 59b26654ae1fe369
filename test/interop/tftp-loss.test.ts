/**
 * Every real client completes with an intact file across a lossy link: 1 %
 * of frames dropped in each direction by test/tools/impair-relay.c, a
 * user-space forwarder between the client's and the server's namespaces
 * (this kernel has no sch_netem).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startBootd, type RunningBootd } from '../helpers/bootd.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { makeWorkDir, until } from '../helpers/workdir.js';

const skip = netnsUnavailable();
if (skip) console.warn(`SKIPPED tftp loss tests: ${skip}`);

const LOSS = 0.01;
const SIZE = 512 * 1024;

describe.skipIf(skip !== null)('TFTP over a link with 1 % loss each way', () => {
  let net: TestNet;
  let bootd: RunningBootd;
  let dir: string;
  let sum: string;

  beforeAll(async () => {
    dir = await makeWorkDir('loss');
    const relay = path.join(dir, 'impair-relay');
    await execa('gcc', ['-O2', '-o', relay, path.join(REPO, 'test/tools/impair-relay.c')]);
    const root = path.join(dir, 'root');
    const data = randomBytes(SIZE);
    sum = createHash('sha256').update(data).digest('hex');
    await writeFile(path.join(root, 'lossy.bin'), data);
    net = await TestNet.create({ hosts: ['server', 'client'], link: { kind: 'impaired', loss: LOSS, delayUs: 200, seed: 42, relayBinary: relay } });
    // a lost final ACK leaves the server waiting (clients do not dally); give up sooner than the default 30 s so the log line comes in time
    bootd = await startBootd(net, 'server', ['--tftp-root', root, '--tftp-port', '69', '--listen', net.host('server').address, '--tftp-give-up-ms', '8000']);
  });

  afterAll(async () => {
    await bootd?.stop();
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cases: [string, (s: string, out: string) => string[]][] = [
    ['tftp-hpa', (s, out) => ['tftp', '-m', 'binary', s, '69', '-c', 'get', 'lossy.bin', out]],
    ['atftp', (s, out) => ['atftp', '-g', '-r', 'lossy.bin', '-l', out, s, '69']],
    ['atftp windowsize 16', (s, out) => ['atftp', '--option', 'blksize 1468', '--option', 'windowsize 16', '-g', '-r', 'lossy.bin', '-l', out, s, '69']],
    ['curl', (s, out) => ['curl', '-sS', '--max-time', '170', '--tftp-blksize', '1468', '-o', out, `tftp://${s}/lossy.bin`]],
    ['busybox tftp', (s, out) => ['busybox', 'tftp', '-b', '1468', '-g', '-r', 'lossy.bin', '-l', out, s]],
  ];

  for (const [name, cmd] of cases) {
    it(`${name} completes with an intact file`, async () => {
      const out = path.join(dir, `${name.replace(/\W+/g, '_')}.out`);
      const r = await net.run('client', cmd(net.host('server').address, out), { timeoutMs: 180_000 });
      expect(r.exitCode, `${name}: ${r.stderr}`).toBe(0);
      expect(createHash('sha256').update(await readFile(out)).digest('hex')).toBe(sum);
    });
  }

  it('really lost packets: bootd retransmitted during these transfers', async () => {
    // a client is done when it has the last DATA; the server logs once it sees the final ACK (or gives up waiting for a lost one)
    await until(() => bootd.logs.filter((l) => l.msg === 'tftp transfer').length >= cases.length, 20_000, 'every transfer to be logged').catch(() => undefined);
    const transfers = bootd.logs.filter((l) => l.msg === 'tftp transfer');
    expect(transfers.length).toBe(cases.length);
    const retransmits = transfers.reduce((n, l) => n + Number(l.retransmits ?? 0), 0);
    expect(retransmits).toBeGreaterThan(0);
  });
});
