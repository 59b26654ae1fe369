import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { warmUpDhcp } from '../../src/dhcp/warmup.js';
import { systemClock } from '../../src/net/clock.js';
import { nodeUdp, type BindOptions, type UdpSocket, type UdpSocketFactory } from '../../src/net/udp.js';
import { LeaseStore } from '../../src/state/lease-store.js';
import { ManualClock } from '../helpers/clock.js';

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
    const store = await LeaseStore.open(dir, undefined, { sync: false });
    const acks = await warmUpDhcp({ clock: systemClock, hosts: { isKnown: () => false }, config }, { rounds: 200, concurrency: 20, udp: watched, store });
    await store.close();
    expect(acks).toBe(200);
    expect(binds.map((b) => b.address)).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(binds.every((b) => b.device === undefined && b.broadcast === undefined)).toBe(true);
    // 200 DISCOVERs + 200 REQUESTs from the client (connected), 200 OFFERs + 200 ACKs from the server
    expect(sent.length).toBe(800);
    expect(sent.every((s) => s.to === '127.0.0.1' || s.to === 'connected')).toBe(true);
    expect(store.writes).toBeGreaterThan(0);
    expect(store.writes).toBeLessThan(200); // ACKs of one moment share one journal append
    const journal = await fs.readFile(store.journalFile, 'utf8');
    expect(journal.trim().split('\n').length).toBe(200);
  });

  it('falls back to memory when loopback cannot be bound', async () => {
    const failing: UdpSocketFactory = { bind: () => Promise.reject(new Error('EADDRNOTAVAIL')) };
    const acks = await warmUpDhcp({ clock: new ManualClock(), hosts: { isKnown: () => false }, config }, { rounds: 30, udp: failing });
    expect(acks).toBe(30);
  });
});
