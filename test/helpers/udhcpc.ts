/**
 * busybox udhcpc as the tests run it: an event script that puts the leased
 * address on the interface, and one exchange that exits once leased.
 */
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestNet } from './netns.js';

/** Writes udhcpc's event script into `dir`; returns its path. */
export async function udhcpcScript(dir: string): Promise<string> {
  const file = path.join(dir, 'udhcpc.sh');
  await writeFile(file, '#!/bin/sh\ncase "$1" in bound|renew) ip addr replace "$ip/$subnet" dev "$interface";; esac\n');
  await chmod(file, 0o755);
  return file;
}

/** One DHCP exchange from `host`'s eth0 (-n -q: exit once leased, or fail after `tries`); `vendorClass` as option 60 (a PXE ROM's). */
export function udhcpcOnce(net: TestNet, host: string, script: string, o: { tries?: number; vendorClass?: string } = {}): ReturnType<TestNet['run']> {
  return net.run(host, ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', String(o.tries ?? 5), '-T', '1', ...(o.vendorClass ? ['-V', o.vendorClass] : []), '-s', script], { timeoutMs: 30_000 });
}

/** What a BIOS PXE ROM sends as option 60. */
export const PXE_BIOS = 'PXEClient:Arch:00000:UNDI:002001';
