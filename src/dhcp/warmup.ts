/**
 * Runs the DHCP request path a few hundred times before the first real
 * client, on a scratch server (no socket, no disk, a lease table of its own).
 *
 * V8 compiles a function when it first runs and optimises it once it has run
 * hot. Without this, the first burst of clients after a start (a rack that
 * powers on as bootd restarts) pays for it: in the closed-loop DHCP benchmark
 * the first 20 DORAs took 25-30 ms against ~5 ms for the rest, which made
 * bootd's p99 four times Kea's. The scratch server is the same class, so the
 * real one runs the code already compiled and with its type feedback.
 */
import type { Remote, UdpSocket } from '../net/udp.js';
import { silentLogger } from '../log.js';
import { LeaseTable } from './leases.js';
import { MessageType, Opt, encodeValue } from './options.js';
import { clientRequest, encodeDhcp, type DhcpOption } from './packet.js';
import { DhcpServer, type DhcpServerDeps } from './server.js';

const o = (code: number, value: Parameters<typeof encodeValue>[1]): DhcpOption => ({ code, data: encodeValue(code, value) });

/** DISCOVER and REQUEST of `rounds` made-up PXE clients; resolves when all were answered. */
export async function warmUpDhcp(deps: Pick<DhcpServerDeps, 'clock' | 'hosts' | 'config'>, rounds = 300): Promise<number> {
  let deliver: (msg: Buffer, from: Remote) => void = () => {};
  const offers = new Map<number, Buffer>();
  let acks = 0;
  const socket: UdpSocket = {
    send: (data) => {
      const b = Buffer.isBuffer(data) ? data : Buffer.concat(data as readonly Buffer[]);
      // option 53 follows the magic cookie in our replies: 2 = OFFER, 5 = ACK
      const type = b[242];
      if (type === MessageType.OFFER) offers.set(b.readUInt32BE(4), b.subarray(16, 20));
      else if (type === MessageType.ACK) acks++;
    },
    onMessage: (h) => {
      deliver = h;
    },
    onError: () => {},
    local: () => ({ address: '0.0.0.0', port: 67 }),
    close: () => {},
  };
  const base = 0xc6120000; // 198.18.0.0/16: never sent anywhere, the socket above keeps everything
  const leases = new LeaseTable({ ranges: [{ start: base + 1, end: base + rounds + 1 }], leaseSeconds: 600, offerHoldMs: 30_000, declineHoldMs: 600_000, reservations: new Map(), excluded: new Set() }, []);
  const server = new DhcpServer({
    socket,
    clock: deps.clock,
    leases,
    store: { commit: () => Promise.resolve() },
    hosts: deps.hosts,
    log: silentLogger,
    config: { ...deps.config, mode: 'full', unknownHosts: 'lease', serverIp: '198.18.255.254', subnetMask: '255.255.0.0', relayed: [] },
  });
  const from: Remote = { address: '0.0.0.0', port: 68 };
  const pxe = [o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001'), o(Opt.CLIENT_ARCH, [0]), o(Opt.PARAMETER_LIST, [1, 3, 6, 12, 15, 28, 43, 60, 66, 67])];
  for (let i = 0; i < rounds; i++) {
    const mac = `02:b0:07:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const xid = 0x0b007000 + i;
    deliver(encodeDhcp(clientRequest({ mac, xid, options: [o(Opt.MESSAGE_TYPE, MessageType.DISCOVER), ...pxe] })), from);
    await new Promise<void>((r) => setImmediate(r));
    const yiaddr = offers.get(xid);
    if (yiaddr) {
      deliver(
        encodeDhcp(clientRequest({ mac, xid, options: [o(Opt.MESSAGE_TYPE, MessageType.REQUEST), o(Opt.REQUESTED_IP, `${yiaddr[0]}.${yiaddr[1]}.${yiaddr[2]}.${yiaddr[3]}`), o(Opt.SERVER_ID, '198.18.255.254'), ...pxe] })),
        from,
      );
    }
    await new Promise<void>((r) => setImmediate(r));
  }
  server.close();
  return acks;
}
