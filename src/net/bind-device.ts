/**
 * Confines a UDP socket to one network interface (Linux SO_BINDTOIFINDEX,
 * kernel 5.0+). node:dgram cannot do this (nodejs/node#35769), and a DHCP
 * server listening on 0.0.0.0:67 would otherwise answer on every interface.
 * Uses the `sockopt` package: a small, maintained N-API setsockopt binding
 * with prebuilt binaries, so no compiler is needed at install. It only sets
 * integer options, which is why the index variant of SO_BINDTODEVICE is used.
 */
import type dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const SOL_SOCKET = 1;
const SO_BINDTOIFINDEX = 62;

const require = createRequire(import.meta.url);

/** The kernel's index of an interface, or an error naming it. */
export function interfaceIndex(ifname: string): number {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(ifname)) throw new Error(`invalid interface name ${JSON.stringify(ifname)}`);
  try {
    return Number(readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8').trim());
  } catch {
    throw new Error(`no network interface named ${JSON.stringify(ifname)}`);
  }
}

export function bindToInterface(sock: dgram.Socket, ifname: string): void {
  const index = interfaceIndex(ifname);
  const { setsockopt } = require('sockopt') as { setsockopt: (s: dgram.Socket, level: number, name: number, value: number) => void };
  // sockopt reads socket._handle.fd, which Node flags as deprecated (DEP0112); the warning is noise here.
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  try {
    setsockopt(sock, SOL_SOCKET, SO_BINDTOIFINDEX, index);
  } finally {
    process.noDeprecation = quiet === true;
  }
}
