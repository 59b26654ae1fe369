/**
 * The fastudp transport (src/native/fastudp.c via src/net/native-udp.ts) on
 * 127.0.0.1 with real sockets: what it sends arrives intact, what it receives
 * reaches the handler (copied, or in the reused buffer when asked), ICMP port
 * unreachable surfaces as an error, close stops delivery, and everything that
 * is not a connected IPv4 socket goes to the fallback factory.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { fastUdp, loadFastUdp } from '../../src/net/native-udp.js';
import { PUMP_ACKED, PUMP_ANSWERED, PUMP_SENT, PUMP_TOTAL, nodeUdp, type BindOptions, type Remote, type UdpSocket, type UdpSocketFactory } from '../../src/net/udp.js';

const { addon, reason } = loadFastUdp();

async function peerSocket(): Promise<{ sock: dgram.Socket; at: Remote; got: Array<{ msg: Buffer; from: Remote }> }> {
  const sock = dgram.createSocket('udp4');
  const got: Array<{ msg: Buffer; from: Remote }> = [];
  sock.on('message', (msg, r) => got.push({ msg, from: { address: r.address, port: r.port } }));
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
  return { sock, at: { address: '127.0.0.1', port: sock.address().port }, got };
}

const waitFor = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

describe('fastudp transport', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  it('is built (npm run build compiles it; bootd falls back to node:dgram without it)', () => {
    expect(addon, reason).not.toBeNull();
  });

  it('sends a two-buffer datagram intact and receives copies from its connected peer', async () => {
    const peer = await peerSocket();
    cleanup.push(() => peer.sock.close());
    const s = await fastUdp(nodeUdp, addon).bind({ address: '127.0.0.1', port: 0, connect: peer.at });
    cleanup.push(() => s.close());
    expect(s.local().address).toBe('127.0.0.1');
    expect(s.local().port).toBeGreaterThan(0);
    expect(s.constructor.name).toBe('NativeUdpSocket');

    s.send([Buffer.from([0, 3, 0, 1]), Buffer.from('hello')]);
    s.send(Buffer.from('one'));
    await waitFor(() => peer.got.length === 2, 'two datagrams at the peer');
    expect(peer.got[0]?.msg).toEqual(Buffer.from([0, 3, 0, 1, ...Buffer.from('hello')]));
    expect(peer.got[0]?.from).toEqual(s.local());
    expect(peer.got[1]?.msg.toString()).toBe('one');

    const got: Buffer[] = [];
    s.onMessage((m, from) => {
      expect(from).toEqual(peer.at);
      got.push(m);
    });
    peer.sock.send(Buffer.from([0, 4, 0, 7]), s.local().port, '127.0.0.1');
    peer.sock.send(Buffer.from([0, 4, 0, 8]), s.local().port, '127.0.0.1');
    await waitFor(() => got.length === 2, 'two ACKs at the native socket');
    // without reusedMessages each message is its own copy
    expect(got.map((m) => m.readUInt16BE(2))).toEqual([7, 8]);
  });

  it('with reusedMessages hands the handler a view that the next datagram overwrites', async () => {
    const peer = await peerSocket();
    cleanup.push(() => peer.sock.close());
    const s = await fastUdp(nodeUdp, addon).bind({ address: '127.0.0.1', port: 0, connect: peer.at, reusedMessages: true });
    cleanup.push(() => s.close());
    const seen: number[] = [];
    const kept: Buffer[] = [];
    s.onMessage((m) => {
      seen.push(m.readUInt16BE(2)); // read at once, as the read transfer does
      kept.push(m);
    });
    for (const b of [1, 2, 3]) peer.sock.send(Buffer.from([0, 4, 0, b]), s.local().port, '127.0.0.1');
    await waitFor(() => seen.length === 3, 'three ACKs');
    expect(seen).toEqual([1, 2, 3]);
    expect(kept[0]).toBe(kept[2]); // the same view: only valid during the call
    expect(kept[0]?.readUInt16BE(2)).toBe(3);
  });

  it('ignores datagrams from anyone but its peer (connect(2))', async () => {
    const peer = await peerSocket();
    const other = await peerSocket();
    cleanup.push(() => peer.sock.close(), () => other.sock.close());
    const s = await fastUdp(nodeUdp, addon).bind({ address: '127.0.0.1', port: 0, connect: peer.at });
    cleanup.push(() => s.close());
    const got: string[] = [];
    s.onMessage((m) => got.push(m.toString()));
    other.sock.send('stranger', s.local().port, '127.0.0.1');
    peer.sock.send('peer', s.local().port, '127.0.0.1');
    await waitFor(() => got.length >= 1, 'the peer datagram');
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual(['peer']);
  });

  it('reports ICMP port unreachable as an error, and delivers nothing after close', async () => {
    const peer = await peerSocket();
    const s = await fastUdp(nodeUdp, addon).bind({ address: '127.0.0.1', port: 0, connect: peer.at });
    const errors: Array<Error & { errno?: number }> = [];
    s.onError((e) => errors.push(e));
    await new Promise<void>((r) => peer.sock.close(r)); // nobody listens there now
    s.send(Buffer.from('anyone?'));
    s.send(Buffer.from('anyone?')); // the second send or the next recv sees ECONNREFUSED
    await waitFor(() => errors.length > 0, 'an error');
    expect(errors[0]?.errno).toBe(111); // ECONNREFUSED

    const again = await peerSocket();
    cleanup.push(() => again.sock.close());
    const t = await fastUdp(nodeUdp, addon).bind({ address: '127.0.0.1', port: 0, connect: again.at });
    const got: Buffer[] = [];
    t.onMessage((m) => got.push(m));
    t.close();
    t.send(Buffer.from('after close')); // a no-op, never a throw
    s.close();
    again.sock.send('late', t.local().port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([]);
    expect(again.got).toEqual([]);
  });

  it('with many sockets open, answers sent from a handler are batched yet all arrive in order, also the last one before close', async () => {
    const f = fastUdp(nodeUdp, addon);
    const peers = await Promise.all([1, 2, 3, 4].map(() => peerSocket()));
    cleanup.push(() => peers.forEach((p) => p.sock.close()));
    const socks = await Promise.all(peers.map((p) => f.bind({ address: '127.0.0.1', port: 0, connect: p.at, reusedMessages: true })));
    cleanup.push(() => socks.forEach((s) => s.close()));
    const [first, second] = socks as [UdpSocket, UdpSocket];
    // first: a window of 60 x 1400 bytes (more than one batch holds) in answer to one datagram
    first.onMessage(() => {
      for (let i = 0; i < 60; i++) first.send([Buffer.from([0, 3, 0, i]), Buffer.alloc(1396, i)]);
    });
    // second: three datagrams, then close at once (an ERROR then the end of a transfer)
    second.onMessage(() => {
      for (const m of ['a', 'b', 'error']) second.send(Buffer.from(m));
      second.close();
    });
    peers[0]?.sock.send('go', first.local().port, '127.0.0.1');
    peers[1]?.sock.send('go', second.local().port, '127.0.0.1');
    await waitFor(() => (peers[0]?.got.length ?? 0) === 60 && (peers[1]?.got.length ?? 0) === 3, 'all datagrams');
    expect(peers[0]?.got.map((g) => g.msg.readUInt16BE(2))).toEqual([...Array(60).keys()]);
    expect(peers[0]?.got.every((g) => g.msg.length === 1400 && g.msg[1399] === g.msg[3])).toBe(true);
    expect(peers[1]?.got.map((g) => g.msg.toString())).toEqual(['a', 'b', 'error']);
  });

  describe('ACK pump', () => {
    const ack = (b: number): Buffer => Buffer.from([0, 4, (b >> 8) & 0xff, b & 0xff]);
    const pumpState = (acked: number, sent: number, total: number): Int32Array => {
      const st = new Int32Array(new ArrayBuffer(16));
      st[PUMP_ACKED] = acked;
      st[PUMP_SENT] = sent;
      st[PUMP_TOTAL] = total;
      return st;
    };
    async function pumped(file: Buffer, blksize: number, windowsize: number, state: Int32Array) {
      const peer = await peerSocket();
      cleanup.push(() => peer.sock.close());
      const s = await fastUdp(nodeUdp, addon).bind({ address: '127.0.0.1', port: 0, connect: peer.at, reusedMessages: true });
      cleanup.push(() => s.close());
      const handled: Buffer[] = [];
      s.onMessage((m) => handled.push(Buffer.from(m)));
      expect(s.pump).toBeTypeOf('function');
      s.pump?.({ file, blksize, windowsize, state });
      const send = (b: Buffer): void => void peer.sock.send(b, s.local().port, '127.0.0.1');
      return { peer, s, handled, send };
    }
    const data = (m: Buffer): { block: number; bytes: Buffer } => {
      expect(m.readUInt16BE(0)).toBe(3);
      return { block: m.readUInt16BE(2), bytes: m.subarray(4) };
    };

    it('answers the ACK of the last block sent with the next block, without the handler, until the final ACK', async () => {
      const file = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'); // 36 bytes: blocks of 16, 16, 4
      const st = pumpState(1, 2, 3); // blocks 1 and 2 sent by JavaScript, block 1 acknowledged
      const { peer, handled, send } = await pumped(file, 16, 1, st);
      send(ack(1)); // a duplicate here (SENT is 2): the handler decides
      await waitFor(() => handled.length === 1, 'the stale ACK at the handler');
      expect(peer.got).toHaveLength(0);
      send(ack(2)); // acknowledges all that was sent: the pump answers

      await waitFor(() => peer.got.length === 1, 'block 3');
      expect(data(peer.got[0]!.msg)).toEqual({ block: 3, bytes: Buffer.from('wxyz') });
      expect([st[PUMP_ACKED], st[PUMP_SENT], st[PUMP_ANSWERED]]).toEqual([2, 3, 1]);
      send(ack(3)); // the final ACK is the handler's: it ends the transfer
      await waitFor(() => handled.length === 2, 'the final ACK at the handler');
      expect(handled[1]).toEqual(ack(3));
      expect(st[PUMP_ANSWERED]).toBe(1);
      expect(peer.got).toHaveLength(1);
    });

    it('sends a whole window per ACK, an empty last block when the size is a multiple of blksize, and leaves other datagrams to the handler', async () => {
      const file = Buffer.alloc(8 * 5, 0);
      for (let i = 0; i < file.length; i++) file[i] = i;
      const st = pumpState(0, 2, 6); // 5 full blocks of 8 and an empty sixth; window of 2 outstanding
      const { peer, handled, send } = await pumped(file, 8, 2, st);
      send(ack(2));
      await waitFor(() => peer.got.length === 2, 'blocks 3 and 4');
      send(Buffer.from([0, 4, 0, 4, 0])); // 5 bytes: not an ACK the pump answers
      send(Buffer.from([0, 5, 0, 0, 0])); // an ERROR
      await waitFor(() => handled.length === 2, 'the odd datagrams at the handler');
      send(ack(4));
      await waitFor(() => peer.got.length === 4, 'blocks 5 and 6');
      expect(peer.got.map((g) => data(g.msg).block)).toEqual([3, 4, 5, 6]);
      expect(data(peer.got[0]!.msg).bytes).toEqual(file.subarray(16, 24));
      expect(data(peer.got[2]!.msg).bytes).toEqual(file.subarray(32, 40));
      expect(data(peer.got[3]!.msg).bytes.length).toBe(0);
      expect([st[PUMP_ACKED], st[PUMP_SENT], st[PUMP_ANSWERED]]).toEqual([4, 6, 2]);
    });

    it('compares block numbers modulo 65536 (block 65536 goes out as 0)', async () => {
      const blksize = 8;
      const file = Buffer.alloc(65537 * blksize + 3);
      file.writeUInt32BE(0xdeadbeef, 65535 * blksize); // the first bytes of block 65536
      const st = pumpState(65534, 65535, 65538);
      const { peer, send } = await pumped(file, blksize, 1, st);
      send(ack(65535));
      await waitFor(() => peer.got.length === 1, 'block 65536');
      send(ack(0));
      await waitFor(() => peer.got.length === 2, 'block 65537');
      expect(data(peer.got[0]!.msg).block).toBe(0);
      expect(data(peer.got[0]!.msg).bytes.readUInt32BE(0)).toBe(0xdeadbeef);
      expect(data(peer.got[1]!.msg).block).toBe(1);
      expect([st[PUMP_ACKED], st[PUMP_SENT]]).toEqual([65536, 65537]);
    });

    it('after answering an ACK without spinning, still gets to datagrams queued behind it (the poll is level-triggered)', async () => {
      // With busy polling off the pump does not drain the socket after it answers (no
      // recv(2) that would find it empty); datagrams already queued must come next pass.
      addon?.configure(0);
      cleanup.push(() => addon?.configure(20));
      const st = pumpState(0, 1, 4);
      const { peer, handled, send } = await pumped(Buffer.alloc(8 * 3 + 2, 7), 8, 1, st);
      send(ack(1)); // the pump answers with block 2 ...
      send(ack(1)); // ... and these, queued behind it in the same tick, go to the handler
      send(Buffer.from([0, 5, 0, 0, 0]));
      await waitFor(() => handled.length === 2, 'the two datagrams behind the pumped ACK');
      expect(handled).toEqual([ack(1), Buffer.from([0, 5, 0, 0, 0])]);
      send(ack(2));
      await waitFor(() => peer.got.length === 2, 'block 3');
      expect(peer.got.map((g) => data(g.msg).block)).toEqual([2, 3]);
      expect([st[PUMP_ACKED], st[PUMP_SENT], st[PUMP_ANSWERED]]).toEqual([2, 3, 2]);
    });

    it('stops with pump(null) and refuses bad arguments', async () => {
      const st = pumpState(0, 1, 3);
      const { s, handled, peer, send } = await pumped(Buffer.alloc(20), 8, 1, st);
      s.pump?.(null);
      send(ack(1));
      await waitFor(() => handled.length === 1, 'the ACK at the handler');
      expect(peer.got).toHaveLength(0);
      expect(() => addon?.pump({} as never, Buffer.alloc(1), 8, 1, st)).toThrow();
      const h = (s as unknown as { handle: unknown }).handle;
      expect(() => addon?.pump(h, Buffer.alloc(1), 4, 1, st)).toThrow(TypeError); // blksize below 8
      expect(() => addon?.pump(h, Buffer.alloc(1), 8, 65, st)).toThrow(TypeError); // windowsize above 64
      expect(() => addon?.pump(h, Buffer.alloc(1), 8, 1, new Int32Array(new ArrayBuffer(8)))).toThrow(TypeError); // state too short
      expect(() => addon?.pump(h, Buffer.alloc(1), 8, 1, new Float64Array(4) as unknown as Int32Array)).toThrow(TypeError);
    });
  });

  it('takes a busy-poll time of 0 to 1000 us and refuses others', () => {
    expect(() => addon?.configure(1001)).toThrow(RangeError);
    expect(() => addon?.configure(-1)).toThrow(RangeError);
    addon?.configure(0);
    addon?.configure(20); // the default again, for the tests after this one
  });

  it('leaves listeners, broadcast, device-bound and IPv6 sockets to the fallback', async () => {
    const asked: BindOptions[] = [];
    const fake: UdpSocketFactory = {
      bind(o) {
        asked.push(o);
        return Promise.resolve({} as UdpSocket);
      },
    };
    const f = fastUdp(fake, addon);
    const peer = { address: '127.0.0.1', port: 9 };
    await f.bind({ address: '127.0.0.1', port: 69 });
    await f.bind({ address: '0.0.0.0', port: 0, connect: peer, broadcast: true });
    await f.bind({ address: '0.0.0.0', port: 0, connect: peer, device: 'lo' });
    await f.bind({ address: '::1', port: 0, connect: { address: '::1', port: 9 } });
    await f.bind({ address: '127.0.0.1', port: 0, connect: peer, recvBufferBytes: 1 << 20 });
    expect(asked).toHaveLength(5);
    expect(fastUdp(fake, null)).toBe(fake);
  });
});
