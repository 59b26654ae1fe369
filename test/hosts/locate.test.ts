/** Which host is behind an address or a MAC (src/hosts/locate.ts). */
import { describe, expect, it } from 'vitest';
import { HostSet } from '../../src/hosts/directory.js';
import { HostLocator } from '../../src/hosts/locate.js';
import type { Host } from '../../src/hosts/types.js';

const host = (over: Partial<Host>): Host => ({ name: 'x', file: 'hosts/x.yaml', macs: [], netboot: true, image: { name: 'bee' }, quirks: {}, build: null, ...over }) as unknown as Host;
const set = new HostSet([
  host({ name: 'reserved', macs: ['52:54:00:00:00:01'] as unknown as Host['macs'], ip: '198.18.0.42', quirks: { tftpMaxBlksize: 1024, tftpNoWindowsize: true } }),
  host({ name: 'leased', macs: ['52:54:00:00:00:02'] as unknown as Host['macs'], netboot: false }),
]);
const leases = new Map<number, string>([[0xc6120064, '52:54:00:00:00:02'], [0xc6120065, '52:54:00:00:00:99']]);
const loc = new HostLocator({ hosts: () => set, macAt: (ip) => leases.get(ip) });

describe('HostLocator', () => {
  it('finds a host by its reserved address, else by the MAC its lease belongs to', () => {
    expect(loc.at('198.18.0.42').host?.name).toBe('reserved');
    expect(loc.at('198.18.0.100')).toMatchObject({ host: { name: 'leased' }, mac: '52:54:00:00:00:02' });
    expect(loc.at('198.18.0.101')).toEqual({ mac: '52:54:00:00:00:99' });
    expect(loc.at('198.18.0.102')).toEqual({});
    expect(loc.at('not an address')).toEqual({});
  });

  it('gives TFTP quirks, upload names and the host records belong to', () => {
    expect(loc.tftpLimits('198.18.0.42')).toEqual({ maxBlksize: 1024, maxWindowsize: 1 });
    expect(loc.tftpLimits('198.18.0.102')).toBeUndefined();
    expect(loc.uploadName('198.18.0.101')).toBe('52-54-00-00-00-99');
    expect(loc.trackedAt('198.18.0.100')).toEqual({ name: 'leased' });
    expect(loc.trackedAt('198.18.0.101')).toEqual({ name: '52-54-00-00-00-99', ifRecorded: true });
  });

  it('tracks an unknown MAC from its first netboot only when bootd boots unknown machines', () => {
    expect(loc.trackedMac('52:54:00:00:00:01', false, undefined)).toEqual({ name: 'reserved', image: 'bee' });
    expect(loc.trackedMac('52:54:00:00:00:02', true, 'bee')).toEqual({ name: 'leased' }); // netboot: false, no image
    expect(loc.trackedMac('52:54:00:00:00:77', true, 'bee')).toEqual({ name: '52-54-00-00-00-77', image: 'bee' });
    expect(loc.trackedMac('52:54:00:00:00:77', false, 'bee')).toEqual({ name: '52-54-00-00-00-77', image: 'bee', ifRecorded: true });
    expect(loc.trackedMac('52:54:00:00:00:77', true, undefined)).toEqual({ name: '52-54-00-00-00-77', ifRecorded: true });
  });
});
