/**
 * Runs whole DHCP exchanges through a scratch server before the first real
 * client: the same class, its own lease table, and, when the caller gives
 * them, a pair of loopback sockets and a scratch lease store.
 *
 * V8 compiles a function when it first runs and optimises it once it has run
 * hot, with the types it saw. A server that just started (a rack that powers
 * on as bootd restarts) would otherwise serve its first thousand clients at
 * about half its warm speed: in the closed-loop DHCP benchmark a fresh bootd
 * did ~3,500 leases/s with p99 15 ms, the same process after 1,000 real
 * exchanges 8,200 leases/s with p99 4.8 ms. Warming the decision code alone
 * (no socket, no disk; bootd until session 7) did not get there: half of the
 * cold cost is node:dgram's send and receive path and the lease store's
 * journal append, which only real sockets and a real store exercise.
 *
 * The sockets are bound to 127.0.0.1 and every reply the scratch server
 * makes goes to the scratch client there, whatever address the reply was
 * meant for (a broadcast, a relay): nothing leaves the host. Without them
 * (no loopback in this namespace, or a test) the exchanges run over an
 * in-memory socket.
 *
 * V8's optimised code also depends on the types each object field has held.
 * When the real server's objects put another type into a field the scratch
 * server's objects had (a plain object where a class instance was, a Smi
 * where a double was), every function compiled during the warm-up is thrown
 * away and the real traffic recompiles it. So the scratch server is built
 * from the same parts as the real one wherever that costs nothing: the same
 * server config (its address too: nothing is sent to it), the same pool
 * config for its own empty lease table, a RoutedSocket around a node:dgram
 * socket bound with the real socket's options, a LeaseStore, a sibling of
 * the real logger.
 */
import { RoutedSocket, type BindOptions, type Remote, type UdpSocket, type UdpSocketFactory } from '../net/udp.js';
import { silentLogger, type Logger } from '../log.js';
import type { LeaseStore } from './lease-store.js';
import { EventBus } from '../events/bus.js';
import type { BootEvent, Stamp } from '../events/types.js';
import { LeaseTable, type PoolConfig } from './leases.js';
import { MessageType, Opt, encodeValue } from './options.js';
import { FLAG_BROADCAST, clientRequest, encodeDhcp, type DhcpOption } from './packet.js';
import { DhcpServer, type DhcpServerDeps } from './server.js';

const o = (code: number, value: Parameters<typeof encodeValue>[1]): DhcpOption => ({ code, data: encodeValue(code, value) });

const UUID = Buffer.from('00' + '4c4c4544004a3510804bb2c04f583232', 'hex');
/** The option sets the request path meets (shared/WIRE.md), so that it is compiled for all of them. */
const KINDS: readonly (readonly DhcpOption[])[] = [
  // a PXE ROM (BIOS)
  [o(Opt.MAX_MESSAGE_SIZE, 1472), o(Opt.CLIENT_ARCH, [0]), o(Opt.CLIENT_NDI, Buffer.from([1, 2, 1])), o(Opt.CLIENT_UUID, UUID), o(Opt.PARAMETER_LIST, [1, 3, 6, 12, 15, 28, 43, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135]), o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001')],
  // EDK2's PxeBc (UEFI x64)
  [o(Opt.MAX_MESSAGE_SIZE, 1472), o(Opt.PARAMETER_LIST, [1, 3, 6, 12, 13, 15, 17, 28, 43, 60, 66, 67, 97, 128]), o(Opt.CLIENT_ARCH, [7]), o(Opt.CLIENT_NDI, Buffer.from([1, 3, 16])), o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00007:UNDI:003016'), o(Opt.CLIENT_UUID, UUID)],
  // iPXE: client id, user class, its own encapsulated options
  [o(Opt.MAX_MESSAGE_SIZE, 1472), o(Opt.CLIENT_ARCH, [0]), o(Opt.CLIENT_NDI, Buffer.from([1, 2, 1])), o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001'), o(Opt.USER_CLASS, Buffer.from('iPXE')), o(Opt.PARAMETER_LIST, [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203]), o(Opt.IPXE, [{ code: 19, data: Buffer.from([1]) }, { code: 24, data: Buffer.from([1]) }])],
  // Linux's udhcpc: client id (01:<mac>, added per client by kindOptions) and host name, no PXE options
  [o(Opt.MAX_MESSAGE_SIZE, 576), o(Opt.VENDOR_CLASS, 'udhcp 1.35.0'), o(Opt.HOSTNAME, 'bee'), o(Opt.PARAMETER_LIST, [1, 3, 6, 12, 15, 28, 42])],
];

/** The options of client `i`'s kind; udhcpc's kind sends its own client identifier (RFC 2132 type 1 + MAC). */
function kindOptions(i: number, mac: string): readonly DhcpOption[] {
  const kind = KINDS[i % KINDS.length] as readonly DhcpOption[];
  if (i % KINDS.length !== KINDS.length - 1) return kind;
  return [o(Opt.CLIENT_ID, Buffer.from([1, ...mac.split(':').map((h) => parseInt(h, 16))])), ...kind];
}

export interface WarmUpOptions {
  /** Whole exchanges (DISCOVER to ACK); default 1,000. */
  readonly rounds?: number;
  /** Exchanges in flight at once, so replies are batched as under load; default 20. */
  readonly concurrency?: number;
  /** Loopback sockets for the exchanges; absent, or 127.0.0.1 cannot be bound: in memory. */
  readonly udp?: UdpSocketFactory;
  /** Opens a scratch store the ACKs wait for, as real ones wait for the real store (called twice, see `warmUpDhcp`); absent: none. */
  readonly openStore?: () => Promise<Pick<LeaseStore, 'commit' | 'close'>>;
  /**
   * A logger of the same kind as the real server's, at level silent (a sibling
   * of it: `parent.child({ svc: 'dhcp' }, { level: 'silent' })`), so that the
   * logging calls are compiled for the real one too; default: a silent logger.
   */
  readonly log?: Logger;
  /** The real server's pool config (the scratch lease table is its own, empty); default: a range in 198.18.0.0/16. */
  readonly pool?: PoolConfig;
  /** Options the real DHCP socket is bound with; the loopback server socket uses them but for address, port and device. */
  readonly bindLike?: Omit<BindOptions, 'address' | 'port'>;
  /** Give up after this long, whatever is left (a lost datagram on loopback); default 5 s. */
  readonly maxMs?: number;
}

const SINKS: readonly ((e: BootEvent, s: Stamp) => void)[] = [(e) => void e, (_e, s) => void s.seq, (_e, s) => void s.at, (e) => void e.type, (e) => void (e.type === 'dhcp' ? e.mac : null)];

/** DISCOVER, REQUEST and RELEASE of `rounds` made-up clients; resolves with the number of ACKs once all were answered (or after `maxMs`). */
export async function warmUpDhcp(deps: Pick<DhcpServerDeps, 'clock' | 'hosts' | 'config'>, opts: WarmUpOptions = {}): Promise<number> {
  const rounds = opts.rounds ?? 1000;
  // each made-up client releases its address after the ACK, so a small pool
  // serves all rounds; at most half of the local range is in flight at once
  const local = opts.pool?.ranges[0];
  const poolSize = local ? local.end - local.start + 1 : 0;
  const pool = poolSize >= 2 ? opts.pool : undefined;
  const concurrency = Math.max(1, Math.min(opts.concurrency ?? 20, rounds, pool ? Math.floor(poolSize / 2) : rounds));
  const base = 0xc6120000; // 198.18.0.0/16 (RFC 2544): only in the scratch table, never on a wire
  const scratchPool = pool ?? { ranges: [{ start: base + 1, end: base + concurrency * 2 }], leaseSeconds: 600, offerHoldMs: 30_000, declineHoldMs: 600_000, reservations: new Map(), excluded: new Set() };
  const build = async (): Promise<Scratch> => {
    const net = (opts.udp ? await loopbackPair(opts.udp, opts.bindLike ?? {}) : null) ?? memoryPair();
    const store = opts.openStore ? await opts.openStore() : null;
    // The real server publishes on bootd's bus (src/app.ts), which has subscribers (the after-boot
    // tracker, later metrics); the scratch one gets a bus of the same class with five subscribers
    // that are different functions, so that V8 compiles publishing and delivery as generic code
    // rather than for subscribers the real bus does not have
    const events = new EventBus({ wallNow: () => deps.clock.wallNow() });
    for (const [i, sink] of SINKS.entries()) events.subscribe(`warm-up ${i}`, sink);
    const server = new DhcpServer({
      socket: net.server,
      clock: deps.clock,
      leases: new LeaseTable(scratchPool, []),
      store: store ?? { commit: () => Promise.resolve() },
      hosts: deps.hosts,
      log: opts.log ?? silentLogger,
      // the real config; unknown clients are answered (the made-up ones are unknown)
      config: deps.config.unknownHosts === 'ignore' ? { ...deps.config, unknownHosts: 'boot' } : deps.config,
      events,
    });
    return {
      net,
      close: async () => {
        server.close();
        net.client.close();
        await events.drained();
        await store?.close();
      },
    };
  };
  // Closing a server, a socket or a file handle writes fields that were
  // constant until then (`closed`, node:dgram's handle, FileHandle's fd), and
  // V8 throws away all code compiled on the assumption that they are: the
  // whole request path, if that happened after the warm-up. So one scratch
  // set is built and closed before any exchange, and the fields are already
  // mutable when the code is compiled.
  await (await build()).close();
  const { net, close } = await build();
  const serverIp = deps.config.serverIp;
  const macOf = (i: number): string => `02:b0:07:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const xids = new Map<number, number>();
  const xidOf: number[] = [];
  const discover = (i: number): Buffer => {
    // xids over the whole 32 bits, as clients pick them: V8 keeps a small integer and a
    // larger one in different representations, and code that saw only one kind would be
    // thrown away at the first real packet with the other
    const xid = (Math.imul(i + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0;
    xids.set(xid, i);
    xidOf[i] = xid;
    return encodeDhcp(clientRequest({ mac: macOf(i), xid, flags: i % 2 === 0 ? FLAG_BROADCAST : 0, options: [o(Opt.MESSAGE_TYPE, MessageType.DISCOVER), ...kindOptions(i, macOf(i))] }));
  };
  const request = (i: number, yiaddr: Buffer): Buffer =>
    encodeDhcp(
      clientRequest({
        mac: macOf(i),
        xid: xidOf[i] as number,
        flags: i % 2 === 0 ? FLAG_BROADCAST : 0,
        options: [o(Opt.MESSAGE_TYPE, MessageType.REQUEST), o(Opt.REQUESTED_IP, `${yiaddr[0]}.${yiaddr[1]}.${yiaddr[2]}.${yiaddr[3]}`), o(Opt.SERVER_ID, serverIp), ...kindOptions(i, macOf(i))],
      }),
    );

  const release = (i: number, yiaddr: Buffer): Buffer =>
    encodeDhcp(
      clientRequest({
        mac: macOf(i),
        xid: (xidOf[i] as number) ^ 1,
        ciaddr: `${yiaddr[0]}.${yiaddr[1]}.${yiaddr[2]}.${yiaddr[3]}`,
        options: [o(Opt.MESSAGE_TYPE, MessageType.RELEASE), o(Opt.SERVER_ID, serverIp)],
      }),
    );

  let acks = 0;
  let started = 0;
  const answered = new Set<number>();
  await new Promise<void>((resolve) => {
    const timer = deps.clock.setTimer(opts.maxMs ?? 5000, resolve);
    const finish = (): void => {
      timer.cancel();
      resolve();
    };
    const startNext = (): void => {
      if (started < rounds) net.client.send(discover(started++));
    };
    net.client.onMessage((b) => {
      // our replies put option 53 first, right after the magic cookie: 2 = OFFER, 5 = ACK
      if (b.length < 243) return;
      const i = xids.get(b.readUInt32BE(4));
      if (i === undefined) return;
      if (b[242] === MessageType.OFFER) net.client.send(request(i, b.subarray(16, 20)));
      else if (b[242] === MessageType.ACK && !answered.has(i)) {
        answered.add(i);
        acks++;
        net.client.send(release(i, b.subarray(16, 20)));
        if (acks === rounds) finish();
        else startNext();
      }
    });
    for (let k = 0; k < concurrency; k++) startNext();
  });
  await close();
  return acks;
}

interface Scratch {
  readonly net: Pair;
  close(): Promise<void>;
}

interface Pair {
  /** The scratch server's socket: whatever it sends reaches the client. */
  readonly server: UdpSocket;
  /** The made-up clients' socket: what it sends reaches the server. */
  readonly client: UdpSocket;
}

/** Two sockets on 127.0.0.1; null when loopback cannot be bound. */
async function loopbackPair(udp: UdpSocketFactory, like: Omit<BindOptions, 'address' | 'port'>): Promise<Pair | null> {
  let srv: UdpSocket | null = null;
  try {
    const { device: _device, connect: _connect, ...opts } = like;
    srv = await udp.bind({ ...opts, address: '127.0.0.1', port: 0 });
    const cli = await udp.bind({ address: '127.0.0.1', port: 0, connect: srv.local() });
    // every reply goes to the scratch client, never where the server meant it (a broadcast, a relay)
    return { server: new RoutedSocket(srv, cli.local()), client: cli };
  } catch {
    srv?.close();
    return null;
  }
}

/** An in-memory pair; deliveries are deferred a turn, as a socket's are. */
function memoryPair(): Pair {
  let toServer: (msg: Buffer, from: Remote) => void = () => {};
  let toClient: (msg: Buffer, from: Remote) => void = () => {};
  const copy = (data: Buffer | readonly Buffer[]): Buffer => (Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.concat(data as readonly Buffer[]));
  const end = (deliver: () => (msg: Buffer, from: Remote) => void, from: Remote): UdpSocket => ({
    send: (data) => {
      const b = copy(data);
      setImmediate(() => deliver()(b, from));
    },
    onMessage: () => {},
    onError: () => {},
    local: () => from,
    close: () => {},
  });
  const server = { ...end(() => toClient, { address: '0.0.0.0', port: 67 }), onMessage: (h: typeof toServer) => void (toServer = h) };
  const client = { ...end(() => toServer, { address: '0.0.0.0', port: 68 }), onMessage: (h: typeof toClient) => void (toClient = h) };
  return { server, client };
}
