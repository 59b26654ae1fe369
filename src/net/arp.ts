/**
 * ARP entries for DHCP replies unicast to a client that has no address yet
 * (RFC 2131 section 4.1: "the server SHOULD unicast the DHCPOFFER and DHCPACK
 * messages to the client's hardware address and 'yiaddr' address"). Linux
 * only, through the fastudp addon's SIOCSARP, as dnsmasq does it.
 */
import { loadFastUdp } from './native-udp.js';

/**
 * A function that installs ip -> mac on `ifname` and says whether it could,
 * or undefined when the addon is not there (replies are then broadcast).
 * Failure reasons (EPERM without CAP_NET_ADMIN) are passed to `onError` once.
 */
export function arpInstaller(ifname: string, onError?: (errno: number) => void): ((ip: string, mac: string) => boolean) | undefined {
  const { addon } = loadFastUdp();
  if (!addon || typeof addon.arpSet !== 'function') return undefined;
  return (ip, mac) => {
    const err = addon.arpSet(ifname, ip, mac);
    if (err !== 0) onError?.(err);
    return err === 0;
  };
}
