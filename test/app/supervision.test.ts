/**
 * The composition root as a whole, on 127.0.0.1 with real sockets: every
 * server's counters readable live through the control socket (and in
 * `bootd status`), and a listener that fails while running stopping bootd
 * with the reason, as docs/architecture.md decides.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type AppConfig } from '../../src/app.js';
import { controlRequest } from '../../src/control/socket.js';
import type { BootEvent } from '../../src/events/types.js';
import type { Metric } from '../../src/stats/registry.js';
import { silentLogger } from '../../src/log.js';
import { systemClock } from '../../src/net/clock.js';
import { linuxMtu } from '../../src/net/mtu.js';
import { SocketLostError, nodeUdp, type UdpSocket, type UdpSocketFactory } from '../../src/net/udp.js';
import { Opcode, encodePacket } from '../../src/tftp/packet.js';
import { TFTP_DEFAULTS } from '../../src/tftp/server.js';
import { runCli } from '../helpers/bootd.js';
import { until } from '../helpers/workdir.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-app-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = (state: string): AppConfig => ({
  tftp: { root: dir, listen: '127.0.0.1', port: 0, maxTransfers: 10, maxBlksize: TFTP_DEFAULTS.maxBlksize, maxWindowsize: TFTP_DEFAULTS.maxWindowsize, timing: TFTP_DEFAULTS.timing, cacheBytes: 1 << 20 },
  http: { listen: '127.0.0.1', port: 0 },
  state: { dir: state, smoke: false, machinePorts: { first: 41070, last: 41071 } },
});

/** nodeUdp, keeping each socket's error handler so a test can fail a listener the way the runtime would. */
function recordingUdp(): { udp: UdpSocketFactory; fail: (i: number, err: Error) => void } {
  const handlers: ((err: Error) => void)[] = [];
  return {
    udp: {
      bind: async (o) => {
        const s = await nodeUdp.bind(o);
        const i = handlers.length;
        handlers.push(() => {});
        const wrapped: UdpSocket = {
          send: (d, to) => s.send(d, to),
          onMessage: (h) => s.onMessage(h),
          onError: (h) => {
            handlers[i] = h;
            s.onError(h);
          },
          local: () => s.local(),
          close: () => s.close(),
        };
        return wrapped;
      },
    },
    fail: (i, err) => handlers[i]?.(err),
  };
}

describe('bootd as a whole', () => {
  it('shows every server’s counters live through the control socket and `bootd status`', async () => {
    const state = path.join(dir, 'state-live');
    const ac = new AbortController();
    const app = await startApp(config(state), { log: silentLogger, clock: systemClock, udp: nodeUdp, mtu: linuxMtu }, ac.signal);
    const sock = await nodeUdp.bind({ address: '127.0.0.1', port: 0 });
    try {
      sock.send(encodePacket({ opcode: Opcode.RRQ, filename: 'no-such-file', mode: 'octet', options: [] }), app.tftp.address);
      await until(() => app.tftp.counters.notFound === 1, 5000, 'the request counted', 10);
      const live = await controlRequest<{ metrics: Metric[] }>(state, 'GET', '/stats');
      const m = Object.fromEntries(live.metrics.map((x) => [x.name, x]));
      expect(m['tftp.requests']).toEqual({ name: 'tftp.requests', kind: 'counter', value: 1 });
      expect(m['tftp.notFound']?.value).toBe(1);
      expect(m['tftp.active']?.kind).toBe('gauge');
      expect(m['http.requests']?.value).toBe(0); // the warm-up request is not counted
      expect(m['process.rssBytes']?.value).toBeGreaterThan(1 << 20);
      expect(m['afterboot.events']?.value).toBe(0);
      const r = await runCli(['status', '--state', state]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/live \(bootd is running\):/);
      expect(r.stdout).toMatch(/^\s+tftp\s+.*\bnotFound=1\b/m);
    } finally {
      sock.close();
      ac.abort();
      await app.stopped;
    }
    expect(app.failure()).toBeNull();
    const after = await runCli(['status', '--state', state]);
    expect(after.stdout).not.toMatch(/live \(bootd is running\)/); // no bootd runs: no live section
  }, 30_000);

  it('a listener lost while running stops every server, says which, and publishes it', async () => {
    const state = path.join(dir, 'state-fail');
    const rec = recordingUdp();
    const app = await startApp(config(state), { log: silentLogger, clock: systemClock, udp: rec.udp, mtu: linuxMtu }, new AbortController().signal);
    const seen: BootEvent[] = [];
    app.events.subscribe('test', (e) => void seen.push(e), ['server']);
    rec.fail(0, new Error('a send error')); // not fatal: counted and logged
    await new Promise((r) => setTimeout(r, 50));
    expect(app.failure()).toBeNull();
    rec.fail(0, new SocketLostError('the socket was closed underneath bootd')); // the TFTP listener, bound first
    await Promise.race([app.stopped, new Promise((_, reject) => setTimeout(() => reject(new Error('bootd did not stop')), 10_000))]);
    expect(app.failure()?.message).toBe('tftp failed while running: the socket was closed underneath bootd');
    await app.events.drained();
    expect(seen.map((e) => (e.type === 'server' ? `${e.server} ${e.state}` : e.type))).toEqual(['tftp failed', 'tftp stopped', 'http stopped']);
    await expect(controlRequest(state, 'GET', '/stats', undefined, 2000)).rejects.toThrow(/not running/);
  }, 30_000);
});
