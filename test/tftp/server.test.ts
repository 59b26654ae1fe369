import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { FileRoot, VirtualFileTable } from '../../src/files/root.js';
import { Opcode, encodePacket } from '../../src/tftp/packet.js';
import { TFTP_DEFAULTS, TftpServer, type TftpServerConfig } from '../../src/tftp/server.js';
import { FileCache } from '../../src/files/source.js';
import { transfersInto, type FlatTransfer } from '../helpers/events.js';
import type { WritePolicy } from '../../src/tftp/write-transfer.js';
import { ManualClock } from '../helpers/clock.js';
import { settle } from '../helpers/settle.js';
import { MemoryNetwork } from '../helpers/memory-udp.js';
import { TestClient } from '../helpers/tftp-client.js';

const SERVER = { address: '10.0.0.1', port: 69 };
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let dir: string;
const files: Record<string, Buffer> = {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-server-'));
  files['small.bin'] = randomBytes(3000);
  files['big.bin'] = randomBytes(200_000);
  files['rollover.bin'] = randomBytes(65536 * 8 + 5); // > 65535 blocks at blksize 8
  files['text.txt'] = Buffer.from('line one\nline two\n');
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(dir, name), data);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Rig {
  net: MemoryNetwork;
  clock: ManualClock;
  server: TftpServer;
  results: FlatTransfer[];
  client(addr?: string, drop?: (b: number) => boolean): TestClient;
  /** Lets async steps (file resolution, socket binds) finish and delivers packets until quiet. */
  /** Delivers packets until quiet (80 ms with nothing to deliver), or until `done()` holds (at most 10 s). */
  settle(done?: () => boolean): Promise<void>;
}

async function rig(config: Partial<TftpServerConfig> = {}, mtu = 1500, cacheBytes = 64 << 20, writes?: WritePolicy): Promise<Rig> {
  const net = new MemoryNetwork();
  const clock = new ManualClock();
  const results: FlatTransfer[] = [];
  const virtual = new VirtualFileTable();
  virtual.set('pxelinux.cfg/01-52-54-00-00-00-01', 'DEFAULT buildos\n');
  const server = new TftpServer({
    listener: net.bindSync(SERVER),
    udp: net,
    clock,
    root: await FileRoot.open(dir, [virtual]),
    cache: new FileCache(cacheBytes),
    mtu: () => mtu,
    ...(writes ? { writes } : {}),
    events: { sink: transfersInto(results), protocol: 'tftp' },
    log: silentLogger,
    config: {
      maxTransfers: 100,
      maxBlksize: TFTP_DEFAULTS.maxBlksize,
      maxWindowsize: TFTP_DEFAULTS.maxWindowsize,
      timing: { ...TFTP_DEFAULTS.timing },
      transferAddress: SERVER.address,
      ...config,
    },
  });
  let n = 2;
  return {
    net,
    clock,
    server,
    results,
    client: (addr = `10.0.0.${n++}`, drop) => new TestClient(net.bindSync({ address: addr, port: 2000 }), SERVER, drop),
    settle: (done?: () => boolean) => settle(net, done),
  };
}

const o = (name: string, value: string) => ({ name, value });

/** Starts a transfer the client stalls (`drop`), closes the server under it and checks the client got the shutdown ERROR. */
async function shutDownDuring(r: Rig, file: string, drop: (block: number) => boolean): Promise<void> {
  const c = r.client(undefined, drop);
  c.request(file);
  await r.settle();
  expect(r.server.counters.active).toBe(1);
  const closed = r.server.close();
  await r.settle();
  await closed;
  expect(c.error).toEqual({ code: 0, message: 'Server shutting down' });
}

describe('TftpServer over an in-memory network', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
  });

  it('serves a file without options in 512-byte lock-step and logs the finished transfer', async () => {
    const c = r.client();
    c.request('small.bin');
    await r.settle(() => c.done && r.results.length === 1);
    expect(c.done).toBe(true);
    expect(sha(c.data)).toBe(sha(files['small.bin'] as Buffer));
    expect(r.results).toMatchObject([{ file: 'small.bin', bytes: 3000, blksize: 512, windowsize: 1, outcome: 'complete' }]);
    expect(r.net.openSockets).toBe(2); // listener + client; the transfer socket is closed
  });

  it('negotiates blksize, tsize and windowsize and serves intact data', async () => {
    const c = r.client();
    c.request('big.bin', [o('tsize', '0'), o('blksize', '1468'), o('windowsize', '8')]);
    await r.settle();
    expect(c.oack).toEqual({ tsize: '200000', blksize: '1468', windowsize: '8' });
    expect(sha(c.data)).toBe(sha(files['big.bin'] as Buffer));
    expect(r.results[0]).toMatchObject({ outcome: 'complete', blksize: 1468, windowsize: 8 });
  });

  it('clamps blksize to the path MTU of the interface', async () => {
    r = await rig({}, 576);
    const c = r.client();
    c.request('small.bin', [o('blksize', '1468')]);
    await r.settle();
    expect(c.oack).toEqual({ blksize: '544' });
    expect(sha(c.data)).toBe(sha(files['small.bin'] as Buffer));
  });

  it('transfers a file larger than 65535 blocks intact (block numbers roll over)', async () => {
    const c = r.client();
    c.request('rollover.bin', [o('blksize', '8'), o('windowsize', '16')]);
    await r.settle();
    expect(c.done).toBe(true);
    expect(sha(c.data)).toBe(sha(files['rollover.bin'] as Buffer));
  });

  it('serves intact data through the streaming source when the file exceeds the cache budget', async () => {
    r = await rig({}, 1500, 1000);
    const c = r.client();
    c.request('rollover.bin', [o('blksize', '1468'), o('windowsize', '16')]);
    for (let i = 0; i < 50 && !c.done; i++) await r.settle();
    expect(sha(c.data)).toBe(sha(files['rollover.bin'] as Buffer));
  });

  it('recovers from lost DATA and lost ACKs in a window and ends with an intact file', async () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % 1000) / 1000;
    r.net.filter = () => rnd() >= 0.05; // 5 % loss both ways
    const c = r.client();
    c.request('big.bin', [o('blksize', '1024'), o('windowsize', '8')]);
    for (let i = 0; i < 2000 && !c.done; i++) {
      await r.settle();
      r.clock.advance(r.server.counters.active > 0 ? 50 : 0);
      if (!c.done && i % 20 === 19) c.reack();
    }
    await r.settle();
    expect(c.done).toBe(true);
    expect(sha(c.data)).toBe(sha(files['big.bin'] as Buffer));
    expect(r.results[0]?.retransmits).toBeGreaterThan(0);
  });

  it('treats EDK2 tsize probe then ERROR 8 as a probe, not a failure, and serves the real request', async () => {
    const probe = r.client();
    probe.ackOack = false; // EDK2 reads tsize from the OACK and never acknowledges it
    probe.request('small.bin', [o('tsize', '0'), o('blksize', '1468'), o('windowsize', '4')]);
    await r.settle();
    expect(probe.oack?.tsize).toBe('3000');
    probe.sendRaw(encodePacket({ opcode: Opcode.ERROR, code: 8, message: 'User aborted the transfer' }));
    await r.settle();
    const real = r.client();
    real.request('small.bin', [o('blksize', '1468'), o('windowsize', '4')]);
    await r.settle();
    expect(sha(real.data)).toBe(sha(files['small.bin'] as Buffer));
    expect(r.server.counters).toMatchObject({ probes: 1, completed: 1, failed: 0 });
  });

  it('lets a different RRQ from the same port supersede the running one (EDK2 RRQ overtaking its ERROR 8)', async () => {
    const sock = r.net.bindSync({ address: '10.0.0.50', port: 3000 });
    const probe = new TestClient(sock, SERVER);
    probe.ackOack = false;
    probe.request('small.bin', [o('tsize', '0'), o('blksize', '1468'), o('windowsize', '4')]);
    await r.settle();
    expect(probe.oack?.tsize).toBe('3000');
    probe.done = true; // the probe is over for the client
    const real = new TestClient(sock, SERVER);
    real.request('small.bin', [o('blksize', '1468'), o('windowsize', '4')]);
    await r.settle();
    probe.sendRaw(encodePacket({ opcode: Opcode.ERROR, code: 8, message: 'User aborted the transfer' })); // arrives late
    await r.settle();
    expect(sha(real.data)).toBe(sha(files['small.bin'] as Buffer));
    expect(r.server.counters).toMatchObject({ probes: 1, completed: 1, failed: 0, duplicateRequests: 0, active: 0 });
  });

  it('answers a missing file with ERROR 1 at once', async () => {
    const c = r.client();
    c.request('pxelinux.cfg/0AD54D81');
    await r.settle();
    expect(c.error).toEqual({ code: 1, message: 'File not found' });
    expect(r.server.counters.notFound).toBe(1);
  });

  it('serves registered virtual files', async () => {
    const c = r.client();
    c.request('/pxelinux.cfg/01-52-54-00-00-00-01', [o('tsize', '0'), o('blksize', '1408')]);
    await r.settle();
    expect(c.data.toString()).toBe('DEFAULT buildos\n');
  });

  it('converts to netascii on request', async () => {
    const c = r.client();
    c.request('text.txt', [], 'netascii');
    await r.settle();
    expect(c.data.toString()).toBe('line one\r\nline two\r\n');
  });

  it('refuses a write request on the main port with an access violation', async () => {
    const c = r.client();
    c.request('upload.bin', [o('tsize', '10')], 'octet', Opcode.WRQ);
    await r.settle();
    expect(c.error?.code).toBe(2);
    expect(c.error?.message).toMatch(/not allowed/);
  });

  it('an upload stopped after its last block (server shutdown while dallying) is complete: final ACK sent after the commit, no ERROR', async () => {
    let release!: () => void;
    const committing = new Promise<void>((resolve) => (release = resolve));
    const stored: Buffer[] = [];
    let committed = false;
    const policy: WritePolicy = {
      authorize: () =>
        Promise.resolve({
          ok: true,
          path: 'up.txt',
          maxBytes: 1 << 20,
          sink: {
            write: (_offset, data) => Promise.resolve(void stored.push(Buffer.from(data))),
            commit: async () => {
              await committing; // a slow fsync: the final ACK waits for it
              committed = true;
            },
            discard: () => Promise.resolve(),
          },
        }),
    };
    const w = await rig({}, 1500, 64 << 20, policy);
    const sock = w.net.bindSync({ address: '10.0.0.7', port: 2000 });
    const got: Array<{ op: number; block: number; from: number }> = [];
    sock.onMessage((msg, from) => got.push({ op: msg.readUInt16BE(0), block: msg.readUInt16BE(2), from: from.port }));
    sock.send(encodePacket({ opcode: Opcode.WRQ, filename: 'up.txt', mode: 'octet', options: [] }), SERVER);
    await w.settle(() => got.length === 1);
    expect(got).toMatchObject([{ op: Opcode.ACK, block: 0 }]);
    sock.send(encodePacket({ opcode: Opcode.DATA, block: 1, data: Buffer.from('report') }), { address: SERVER.address, port: got[0]!.from });
    await w.settle();
    expect(got).toHaveLength(1); // the final ACK waits for the commit
    const closed = w.server.close();
    release();
    await w.settle();
    await closed;
    expect(committed).toBe(true);
    expect(Buffer.concat(stored).toString()).toBe('report');
    expect(got.map((g) => [g.op, g.block])).toEqual([[Opcode.ACK, 0], [Opcode.ACK, 1]]); // no ERROR 0 "Server shutting down"
    expect(w.results).toMatchObject([{ direction: 'write', outcome: 'complete', bytes: 6 }]);
    expect(w.server.counters.uploads).toBe(1);
  });

  it.each([['mail'], ['binary'], ['bogus']])('refuses mode %j with ERROR 4', async (mode) => {
    const c = r.client();
    c.request('small.bin', [], mode);
    await r.settle();
    expect(c.error?.code).toBe(4);
  });

  it('counts and drops malformed packets, never crashes, and serves the next client', async () => {
    const bad = r.net.bindSync({ address: '10.0.0.99', port: 5000 });
    const garbage = ['', '00', '0001', '0001666f6f', '0007abcd', '0004', 'ffffffff', '0001666f6f006f6374657400626c6b73697a6500'];
    for (const hex of garbage) bad.send(Buffer.from(hex, 'hex'), SERVER);
    bad.send(encodePacket({ opcode: Opcode.ACK, block: 1 }), SERVER); // stray ACK on the request port
    await r.settle();
    expect(r.server.counters.malformed).toBe(garbage.length);
    expect(r.server.counters.unexpected).toBe(1);
    const c = r.client();
    c.request('small.bin');
    await r.settle();
    expect(sha(c.data)).toBe(sha(files['small.bin'] as Buffer));
  });

  it('starts one transfer for a retransmitted RRQ, not two', async () => {
    const c = r.client();
    c.request('small.bin');
    c.request('small.bin');
    await r.settle();
    expect(sha(c.data)).toBe(sha(files['small.bin'] as Buffer));
    expect(r.server.counters).toMatchObject({ started: 1, duplicateRequests: 1 });
  });

  it('caps concurrent transfers with a clear ERROR beyond the cap', async () => {
    r = await rig({ maxTransfers: 2 });
    const drop = () => true; // these clients never ACK, so their transfers stay open
    const a = r.client(undefined, drop);
    const b = r.client(undefined, drop);
    a.request('big.bin');
    b.request('big.bin');
    await r.settle();
    const c = r.client();
    c.request('small.bin');
    await r.settle();
    expect(c.error?.code).toBe(0);
    expect(c.error?.message).toMatch(/busy/i);
    expect(r.server.counters.refusedBusy).toBe(1);
  });

  it('caps transfers per client address, so that one address cannot take every slot; others are still served', async () => {
    r = await rig({ maxTransfers: 10, perClient: { maxTransfers: 3, requestsPerSecond: 1000, burst: 1000 } });
    const hog = (port: number): TestClient => new TestClient(r.net.bindSync({ address: '10.0.0.66', port }), SERVER, () => true);
    const hogs = [2001, 2002, 2003, 2004, 2005].map(hog);
    for (const h of hogs) h.request('big.bin');
    await r.settle();
    expect(hogs.filter((h) => h.error !== null).map((h) => h.error)).toEqual([
      { code: 0, message: 'Too many transfers from 10.0.0.66, retry later' },
      { code: 0, message: 'Too many transfers from 10.0.0.66, retry later' },
    ]);
    expect(r.server.counters).toMatchObject({ refusedClientBusy: 2, refusedBusy: 0, active: 3 });
    const other = r.client();
    other.request('small.bin');
    await r.settle(() => other.done);
    expect(sha(other.data)).toBe(sha(files['small.bin'] as Buffer));
    // the hog's transfers time out and free its slots: it may start again
    for (let i = 0; i < 100 && r.server.counters.active > 0; i++) {
      r.clock.advance(1000);
      await r.settle();
    }
    const again = hog(2006);
    again.request('small.bin');
    await r.settle(() => again.dataSeen > 0);
    expect(again.error).toBeNull();
  });

  it('drops requests over a client address\'s rate without an answer, and lets it in again as time passes', async () => {
    r = await rig({ perClient: { maxTransfers: 32, requestsPerSecond: 10, burst: 5 } });
    const cs = [3001, 3002, 3003, 3004, 3005, 3006, 3007].map((port) => new TestClient(r.net.bindSync({ address: '10.0.0.77', port }), SERVER));
    for (const c of cs) c.request('nope.bin');
    await r.settle();
    expect(cs.filter((c) => c.error?.code === 1)).toHaveLength(5); // file not found, answered
    expect(cs.filter((c) => c.error === null)).toHaveLength(2); // over the rate: silence
    expect(r.server.counters.rateLimited).toBe(2);
    r.clock.advance(200); // two tokens later
    const late = new TestClient(r.net.bindSync({ address: '10.0.0.77', port: 3008 }), SERVER);
    late.request('nope.bin');
    await r.settle();
    expect(late.error?.code).toBe(1);
  });

  it('retransmits to a silent client, then gives up, frees the slot and logs a timeout', async () => {
    const c = r.client(undefined, () => true);
    c.request('small.bin');
    await r.settle();
    for (let i = 0; i < 100 && r.server.counters.active > 0; i++) {
      r.clock.advance(1000);
      await r.settle();
    }
    expect(r.results).toMatchObject([{ outcome: 'timeout' }]);
    expect(c.dataSeen).toBeGreaterThan(3);
    expect(r.server.counters.active).toBe(0);
  });

  it('on close, ends transfers in flight with an ERROR, closes their sockets and resolves', async () => {
    await shutDownDuring(r, 'big.bin', () => true);
    expect(r.results).toMatchObject([{ outcome: 'shutdown' }]);
    expect(r.net.isOpen(SERVER)).toBe(false);
    expect(r.net.openSockets).toBe(1); // only the client's own socket remains
  });
});

describe('TftpServer with transfer sockets that answer in-order ACKs themselves (the fastudp ACK pump, emulated)', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
    r.net.pumps = true;
  });
  const dataBlock = (d: { data: Buffer }): number | null => (d.data.length >= 4 && d.data.readUInt16BE(0) === Opcode.DATA ? d.data.readUInt16BE(2) : null);

  it('hands every in-order ACK but the final one to the socket, and the result counts them', async () => {
    const c = r.client();
    c.request('small.bin'); // 512-byte lock-step: 6 blocks
    await r.settle(() => c.done && r.results.length === 1);
    expect(sha(c.data)).toBe(sha(files['small.bin'] as Buffer));
    // JavaScript takes ACK 1 (the RTT sample the timeout needs) and the final ACK 6; the pump answers ACKs 2 to 5
    expect(r.results).toMatchObject([{ outcome: 'complete', bytes: 3000, pumpedAcks: 4, retransmits: 0 }]);
    expect(r.net.pumped).toBe(4);
  });

  it('serves windowed and rolled-over transfers intact', async () => {
    const c = r.client();
    c.request('big.bin', [o('blksize', '1468'), o('windowsize', '8')]);
    await r.settle(() => c.done && r.results.length === 1);
    expect(sha(c.data)).toBe(sha(files['big.bin'] as Buffer));
    const d = r.client();
    d.request('rollover.bin', [o('blksize', '8')]); // lock-step through block 65536 = 0 on the wire
    await r.settle(() => d.done && r.results.length === 2);
    expect(sha(d.data)).toBe(sha(files['rollover.bin'] as Buffer));
    expect(r.results.map((x) => x.outcome)).toEqual(['complete', 'complete']);
    // 65542 blocks; the pump starts once the file is wholly loaded (256 KiB = block 32768 first), so it answers the second half, wrap included
    expect(r.results[1]?.pumpedAcks).toBeGreaterThan(30_000);
  });

  it('resends a block the pump sent and the network lost within 1.5 timeouts', async () => {
    let lost = false;
    r.net.filter = (d) => {
      if (!lost && d.from.port !== 2000 && dataBlock(d) === 100) return !(lost = true);
      return true;
    };
    const c = r.client();
    c.request('big.bin'); // 512-byte lock-step; the clock stands still, so every RTT sample is 0 and the timeout is its 10 ms floor
    await r.settle();
    expect(lost).toBe(true);
    const sentAt = r.clock.now();
    const copies = (): number => r.net.log.filter((d) => d.from.port !== 2000 && dataBlock(d) === 100).length;
    let resentAfter = -1;
    for (let ms = 1; ms <= 40 && resentAfter < 0; ms++) {
      r.clock.advance(1);
      await r.settle();
      if (copies() === 2) resentAfter = r.clock.now() - sentAt;
    }
    await r.settle(() => c.done && r.results.length === 1);
    expect(resentAfter).toBeGreaterThan(0);
    expect(resentAfter).toBeLessThanOrEqual(15);
    expect(sha(c.data)).toBe(sha(files['big.bin'] as Buffer));
    expect(r.results[0]).toMatchObject({ outcome: 'complete', retransmits: 1, timeouts: 1 });
    expect(r.results[0]?.pumpedAcks).toBeGreaterThan(380); // 391 blocks: the pump goes on after the resend
  });

  it('counts the bytes the pump got acknowledged when the transfer ends early (server shutdown)', async () => {
    await shutDownDuring(r, 'big.bin', (block) => block > 50); // the client stops taking DATA after block 50
    // ACK 1 went through JavaScript, ACKs 2 to 50 through the pump
    expect(r.results).toMatchObject([{ outcome: 'shutdown', bytes: 50 * 512, pumpedAcks: 49 }]);
  });

  it('recovers from 5 % loss both ways, lock-step and windowed, and ends intact', async () => {
    let seed = 11;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % 1000) / 1000;
    r.net.filter = () => rnd() >= 0.05;
    for (const [i, opts] of [[0, [o('blksize', '1024')]], [1, [o('blksize', '1024'), o('windowsize', '8')]]] as const) {
      const c = r.client();
      c.request('big.bin', [...opts]);
      for (let k = 0; k < 3000 && !c.done; k++) {
        await r.settle();
        r.clock.advance(r.server.counters.active > 0 ? 20 : 0);
        if (!c.done && k % 20 === 19) c.reack();
      }
      await r.settle(() => r.results.length === i + 1);
      expect(c.done).toBe(true);
      expect(sha(c.data)).toBe(sha(files['big.bin'] as Buffer));
      expect(r.results[i]).toMatchObject({ outcome: 'complete' });
      expect(r.results[i]?.retransmits).toBeGreaterThan(0);
      expect(r.results[i]?.pumpedAcks).toBeGreaterThan(0);
    }
  });
});
