import { describe, expect, it } from 'vitest';
import { warmUpDhcp } from '../../src/dhcp/warmup.js';
import { ManualClock } from '../helpers/clock.js';

describe('DHCP warm-up', () => {
  it('runs whole DISCOVER/OFFER/REQUEST/ACK exchanges through a scratch server, touching no socket and no disk', async () => {
    const acks = await warmUpDhcp(
      {
        clock: new ManualClock(),
        hosts: { isKnown: () => false },
        config: { mode: 'full', serverIp: '198.18.0.1', subnetMask: '255.255.255.0', leaseSeconds: 600, unknownHosts: 'ignore', bootFiles: { bios: 'pxelinux.0', efi: { 'efi-x64': 'syslinux.efi' }, ipxe: 'boot.ipxe' } },
      },
      50,
    );
    expect(acks).toBe(50);
  });
});
