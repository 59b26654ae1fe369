import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { warmUpDhcp } from '../../src/dhcp/warmup.js';
import { systemClock } from '../../src/net/clock.js';
import { nodeUdp, type BindOptions, type UdpSocket, type UdpSocketFactory } from '../../src/net/udp.js';
import { FileLeaseStore } from '../../src/state/lease-store.js';
import { ManualClock } from '../helpers/clock.js';
import { sweepStaleWarmUps, warmUp } from '../../src/serve/dhcp.js';
import { silentLogger, type Logger } from '../../src/log.js';

const config = { mode: 'full', serverIp: '198.18.0.1', subnetMask: '255.255.255.0', leaseSeconds: 600, unknownHosts: 'ignore', bootFiles: { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi' }, ipxe: 'boot.ipxe' } } as const;

describe('DHCP warm-up', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
  });

  it('runs whole DISCOVER/OFFER/REQUEST/ACK exchanges through a scratch server in memory, without sockets or disk', async () => {
    const acks = await warmUpDhcp({ clock: new ManualClock(), hosts: { isKnown: () => false }, config }, { rounds: 50 });
    expect(acks).toBe(50);
  });

  it('over loopback sockets: every datagram goes to 127.0.0.1, none to the broadcast or relay address the server meant; ACKs wait for the scratch store', async () => {
    const sent: { from: string; to: string }[] = [];
    const binds: BindOptions[] = [];
    // the real factory, watched: what is bound and where each datagram goes
    const watched: UdpSocketFactory = {
      async bind(opts) {
        binds.push(opts);
        const s = await nodeUdp.bind(opts);
        const w: UdpSocket = {
          send: (data, to) => {
            sent.push({ from: `${s.local().address}:${s.local().port}`, to: to ? to.address : 'connected' });
            s.send(data, to);
          },
          onMessage: (h) => s.onMessage(h),
          onError: (h) => s.onError(h),
          local: () => s.local(),
          close: () => s.close(),
        };
        return w;
      },
    };
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bootd-warmup-test-'));
    dirs.push(dir);
    const stores: FileLeaseStore[] = [];
    const openStore = async (): Promise<FileLeaseStore> => {
      const s = await FileLeaseStore.open(path.join(dir, String(stores.length)), undefined, { sync: false });
      stores.push(s);
      return s;
    };
    const acks = await warmUpDhcp({ clock: systemClock, hosts: { isKnown: () => false }, config }, { rounds: 200, concurrency: 20, udp: watched, openStore });
    // a spare set is built and closed first (see warmUpDhcp), then the one that runs the exchanges
    expect(stores.length).toBe(2);
    const store = stores[1] as FileLeaseStore;
    expect(acks).toBe(200);
    expect(binds.map((b) => b.address)).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']);
    expect(binds.every((b) => b.device === undefined && b.broadcast === undefined)).toBe(true);
    // 200 DISCOVERs, REQUESTs and RELEASEs from the client (connected), 200 OFFERs and ACKs from the server
    expect(sent.length).toBe(1000);
    expect(sent.every((s) => s.to === '127.0.0.1' || s.to === 'connected')).toBe(true);
    expect(store.writes).toBeGreaterThan(0);
    expect(store.writes).toBeLessThan(200); // ACKs of one moment share one journal append
    const journal = await fs.readFile(store.journalFile, 'utf8');
    const macs = new Set(journal.trim().split('\n').map((l) => (JSON.parse(l) as { lease?: { mac: string } }).lease?.mac));
    expect(macs.size).toBe(200);
  });

  it("uses the real server's pool and address: a range of 4 serves 60 exchanges, each client releasing its address after the ACK", async () => {
    const ip = (a: string): number => a.split('.').reduce((n, b) => n * 256 + Number(b), 0);
    const pool = { ranges: [{ start: ip('10.9.0.10'), end: ip('10.9.0.13') }], leaseSeconds: 600, offerHoldMs: 30_000, declineHoldMs: 600_000, reservations: new Map<string, number>(), excluded: new Set<number>() };
    const acks = await warmUpDhcp({ clock: new ManualClock(), hosts: { isKnown: () => false }, config: { ...config, serverIp: '10.9.0.1' } }, { rounds: 60, pool, udp: nodeUdp, maxMs: 5000 });
    expect(acks).toBe(60);
  });

  it('falls back to memory when loopback cannot be bound', async () => {
    const failing: UdpSocketFactory = { bind: () => Promise.reject(new Error('EADDRNOTAVAIL')) };
    const acks = await warmUpDhcp({ clock: new ManualClock(), hosts: { isKnown: () => false }, config }, { rounds: 30, udp: failing });
    expect(acks).toBe(30);
  });
});

describe('DHCP warm-up at serve time (app.ts)', () => {
  it('with no writable temp directory, warms up over the memory lease store', async () => {
    const warnings: string[] = [];
    const log = { ...silentLogger, level: 'info', warn: (_o: object, msg?: string) => void warnings.push(msg ?? ''), child: () => silentLogger } as unknown as Logger;
    const pool = { ranges: [{ start: 0x0a090010, end: 0x0a0900f0 }], leaseSeconds: 600, offerHoldMs: 30_000, declineHoldMs: 600_000, reservations: new Map<string, number>(), excluded: new Set<number>() };
    const n = await warmUp({ clock: systemClock, udp: nodeUdp, log }, { isKnown: () => false }, { ...config, serverIp: '10.9.0.1' }, pool, { broadcast: true, reuseAddr: true }, '/nonexistent/bootd-test');
    expect(n).toBe(1000);
    expect(warnings).toEqual([]);
  }, 20_000);

  it('serves anyway when the warm-up cannot run (no loopback socket and no memory of its own: a warning and 0 exchanges)', async () => {
    const warnings: string[] = [];
    const log = { ...silentLogger, level: 'info', warn: (_o: object, msg?: string) => void warnings.push(msg ?? ''), child: () => silentLogger } as unknown as Logger;
    const pool = { ranges: [{ start: 0x0a090010, end: 0x0a090020 }], leaseSeconds: 600, offerHoldMs: 30_000, declineHoldMs: 600_000, reservations: new Map<string, number>(), excluded: new Set<number>() };
    const broken = { bind: () => Promise.reject(new Error('no sockets here')) };
    const n = await warmUp({ clock: systemClock, udp: broken, log: { ...log, child: () => { throw new Error('logger broken'); } } as unknown as Logger }, { isKnown: () => false }, config, pool, {}, os.tmpdir());
    expect(n).toBe(0);
    expect(warnings).toEqual([expect.stringContaining('dhcp warm-up failed')]);
  });

  it('runs 1,000 exchanges and leaves no temporary directory behind', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'bootd-warmup-app-'));
    try {
      const pool = { ranges: [{ start: 0x0a090010, end: 0x0a0900f0 }], leaseSeconds: 600, offerHoldMs: 30_000, declineHoldMs: 600_000, reservations: new Map<string, number>(), excluded: new Set<number>() };
      const n = await warmUp({ clock: systemClock, udp: nodeUdp, log: silentLogger }, { isKnown: () => false }, { ...config, serverIp: '10.9.0.1' }, pool, { broadcast: true, reuseAddr: true }, tmp);
      expect(n).toBe(1000);
      expect(await fs.readdir(tmp)).toEqual([]);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  it('sweeps the scratch folders of warm-ups a kill -9 cut short, never a live process\'s', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'bootd-sweep-test-'));
    try {
      // a PID far above pid_max's default cannot be running
      for (const name of ['bootd-warmup-4194000-aaaa', `bootd-warmup-${process.pid}-bbbb`, 'bootd-warmup-Xy12Zq', 'bootd-warmup-Old123', 'unrelated']) await fs.mkdir(path.join(tmp, name));
      const old = new Date(Date.now() - 3600_000);
      await fs.utimes(path.join(tmp, 'bootd-warmup-Old123'), old, old);
      expect(await sweepStaleWarmUps(tmp)).toBe(2);
      expect((await fs.readdir(tmp)).sort()).toEqual([`bootd-warmup-${process.pid}-bbbb`, 'bootd-warmup-Xy12Zq', 'unrelated']);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});
