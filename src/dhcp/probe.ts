/**
 * Is another DHCP server on this segment? Sends one DISCOVER from a random
 * locally administered MAC and listens for OFFERs. Full mode refuses to start
 * when one answers (two servers handing out addresses break clients).
 */
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../net/clock.js';
import { readIpv4 } from '../net/ipv4.js';
import type { UdpSocketFactory } from '../net/udp.js';
import { MessageType, Opt, encodeValue } from './options.js';
import { FLAG_BROADCAST, clientRequest, decodeDhcp, encodeDhcp, getOption } from './packet.js';

export interface ProbeResult {
  /** Addresses of servers that offered (option 54, else the source). */
  readonly servers: string[];
}

export interface ProbeDeps {
  readonly clock?: Pick<Clock, 'setTimer'>;
  /** Random bytes for the probe's MAC and xid. */
  readonly random?: (n: number) => Buffer;
}

export async function probeForDhcpServers(udp: UdpSocketFactory, device: string, waitMs: number, deps: ProbeDeps = {}): Promise<ProbeResult> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? randomBytes;
  const sock = await udp.bind({ address: '0.0.0.0', port: 68, device, broadcast: true, reuseAddr: true });
  const mac = Buffer.from(random(6));
  mac[0] = ((mac[0] as number) & 0xfc) | 0x02; // locally administered, unicast
  const xid = random(4).readUInt32BE(0);
  const servers = new Set<string>();
  sock.onMessage((msg, from) => {
    try {
      const p = decodeDhcp(msg);
      if (p.xid !== xid || !p.chaddr.subarray(0, 6).equals(mac)) return;
      const sid = getOption(p, Opt.SERVER_ID);
      servers.add(sid && sid.length === 4 ? readIpv4(sid, 0) : from.address);
    } catch {
      // not a DHCP reply
    }
  });
  const discover = encodeDhcp(
    clientRequest({
      mac,
      xid,
      flags: FLAG_BROADCAST,
      options: [
        { code: Opt.MESSAGE_TYPE, data: encodeValue(Opt.MESSAGE_TYPE, MessageType.DISCOVER) },
        { code: Opt.PARAMETER_LIST, data: encodeValue(Opt.PARAMETER_LIST, [1, 3, 54]) },
      ],
    }),
  );
  sock.send(discover, { address: '255.255.255.255', port: 67 });
  await new Promise<void>((r) => clock.setTimer(waitMs, r));
  sock.close();
  return { servers: [...servers] };
}
