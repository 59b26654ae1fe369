// Structure-aware packet fuzzer for bootd, run inside a test namespace by
// test/fuzz/fuzz.test.ts (and scripts/fuzz.sh for the long run). Plain
// JavaScript over the built codecs in dist/, so it starts without a compiler.
//
//   node test/fuzz/fuzzer.mjs --server 198.18.0.1 --dhcp N --tftp N --seed S --file NAME
//
// DHCP: valid packets of the kinds real clients send (shared/WIRE.md: PXE ROM,
// EDK2, iPXE, udhcpc, relayed, DECLINE, RELEASE, INFORM, INIT-REBOOT), each
// then mutated 0-4 times at the structure: option lengths, inserted and
// repeated options (RFC 3396 joins), overload (52) with garbage in sname and
// file, header fields, truncation, appended bytes, flipped bytes.
// TFTP: requests (names that try to leave the root, control characters,
// every option with bad values, missing NULs, truncation), stray opcodes to
// port 69, and bad packets into live transfers (wrong and huge block
// numbers, DATA, OACK, ERROR, garbage) from the transfer's own port and from
// strangers. Sends are paced in batches so the server gets to read them.
// Prints one JSON line: what was sent.
import dgram from 'node:dgram';
import { encodeDhcp, clientRequest } from '../../dist/dhcp/packet.js';
import { Opt, MessageType, encodeValue } from '../../dist/dhcp/options.js';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const SERVER = args.server ?? '198.18.0.1';
const DHCP_N = Number(args.dhcp ?? 10000);
const TFTP_N = Number(args.tftp ?? 10000);
const FILE = args.file ?? 'fuzz.bin';
const TFTP_PORT = Number(args['tftp-port'] ?? 69);
// packets per second per protocol: what bootd can read (a burst faster than that is lost in
// the kernel's queues before it reaches the server, and proves nothing)
const RATE = Number(args.rate ?? 2000);
const BATCH = 50;
const BATCH_MS = (1000 * BATCH) / RATE;
const DEADLINE = Date.now() + Number(args['max-seconds'] ?? 3000) * 1000;

// xorshift32: the same seed gives the same packets
let state = Number(args.seed ?? 1) >>> 0 || 1;
const rnd = () => {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
};
const int = (n) => Math.floor(rnd() * n);
const pick = (xs) => xs[int(xs.length)];
const bytes = (n) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
const o = (code, v) => ({ code, data: encodeValue(code, v) });
const raw = (code, data) => ({ code, data });

// ---------- DHCP ----------
const macOf = (i) => `52:54:f0:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const UUID = Buffer.concat([Buffer.from([0]), bytes(16)]);
const KINDS = [
  () => [o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001'), o(Opt.CLIENT_ARCH, [0]), raw(Opt.CLIENT_UUID, UUID), o(Opt.MAX_MESSAGE_SIZE, 1472)],
  () => [o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00007:UNDI:003000'), o(Opt.CLIENT_ARCH, [7]), raw(Opt.CLIENT_UUID, UUID), o(Opt.PARAMETER_LIST, [1, 3, 6, 43, 60, 66, 67, 97])],
  () => [o(Opt.VENDOR_CLASS, 'PXEClient:Arch:00007:UNDI:003010'), o(Opt.USER_CLASS, Buffer.from('iPXE')), raw(Opt.CLIENT_ID, Buffer.concat([Buffer.from([1]), bytes(6)])), o(Opt.IPXE, [{ code: 19, data: Buffer.from([1]) }])],
  () => [raw(Opt.CLIENT_ID, Buffer.concat([Buffer.from([1]), bytes(6)])), o(Opt.VENDOR_CLASS, 'udhcp 1.35.0'), o(Opt.HOSTNAME, 'bee'), o(Opt.PARAMETER_LIST, [1, 3, 6, 12, 15, 28, 42])],
  () => [o(Opt.VENDOR_CLASS, 'HTTPClient:Arch:00016:UNDI:003001'), o(Opt.CLIENT_ARCH, [16])],
  () => [],
];
const TYPES = [MessageType.DISCOVER, MessageType.DISCOVER, MessageType.REQUEST, MessageType.REQUEST, MessageType.DECLINE, MessageType.RELEASE, MessageType.INFORM, 9, 0, 255];
const ip = () => (rnd() < 0.7 ? `198.18.0.${int(256)}` : `${int(256)}.${int(256)}.${int(256)}.${int(256)}`);

function dhcpTemplate(i) {
  const type = pick(TYPES);
  const opts = [o(Opt.MESSAGE_TYPE, type), ...pick(KINDS)()];
  if (rnd() < 0.5) opts.push(o(Opt.REQUESTED_IP, ip()));
  if (rnd() < 0.5) opts.push(o(Opt.SERVER_ID, rnd() < 0.7 ? SERVER : ip()));
  if (rnd() < 0.1) opts.push(raw(Opt.RELAY_AGENT, bytes(int(40))));
  return encodeDhcp(
    clientRequest({
      mac: macOf(int(4096) + (i & 0xff0000)),
      xid: int(2 ** 32),
      flags: rnd() < 0.5 ? 0x8000 : int(65536),
      ...(rnd() < 0.2 ? { ciaddr: ip() } : {}),
      ...(rnd() < 0.1 ? { giaddr: ip(), hops: int(20) } : {}),
      options: opts,
    }),
  );
}

function mutateDhcp(p) {
  let b = Buffer.from(p);
  const n = int(5);
  for (let k = 0; k < n; k++) {
    switch (int(11)) {
      case 0: // flip a byte anywhere
        b[int(b.length)] = int(256);
        break;
      case 1: // truncate
        b = b.subarray(0, int(b.length));
        break;
      case 2: // append garbage after End
        b = Buffer.concat([b, bytes(int(600))]);
        break;
      case 3: { // an option length byte set to anything (into the options area)
        const at = 241 + int(Math.max(1, b.length - 241));
        if (at < b.length) b[at] = pick([0, 1, 2, 255, int(256)]);
        break;
      }
      case 4: { // insert a random option before End
        const code = pick([int(256), Opt.CLIENT_ID, Opt.HOSTNAME, Opt.RELAY_AGENT, Opt.VENDOR_SPECIFIC, Opt.OVERLOAD ?? 52, 55, 57, 61, 93, 94, 97, 175]);
        const data = bytes(int(256));
        b = Buffer.concat([b.subarray(0, 240), Buffer.from([code, data.length]), data, b.subarray(240)]);
        break;
      }
      case 5: { // one option repeated many times (RFC 3396 joins them)
        const code = pick([Opt.CLIENT_ID, Opt.HOSTNAME, Opt.RELAY_AGENT, Opt.CLIENT_UUID, Opt.PARAMETER_LIST, Opt.VENDOR_CLASS]);
        const parts = [];
        for (let r = int(12); r > 0; r--) parts.push(Buffer.from([code, 255]), bytes(255));
        b = Buffer.concat([b.subarray(0, 240), ...parts, b.subarray(240)]);
        break;
      }
      case 6: { // overload: options in sname and file, with garbage there
        if (b.length < 240) break;
        b = Buffer.concat([b.subarray(0, 240), Buffer.from([52, 1, 1 + int(3)]), b.subarray(240)]);
        for (let i = 44; i < 236; i++) if (rnd() < 0.5) b[i] = int(256);
        break;
      }
      case 7: // header fields: op, htype, hlen, hops
        b[int(4)] = int(256);
        break;
      case 8: // the magic cookie
        if (b.length > 239) b[236 + int(4)] = int(256);
        break;
      case 9: // no End option
        if (b[b.length - 1] === 255) b = b.subarray(0, b.length - 1);
        break;
      case 10: // pure garbage
        b = bytes(int(1500));
        break;
    }
  }
  return b;
}

// ---------- TFTP ----------
const NAMES = [FILE, `/${FILE}`, `//${FILE}`, `\\${FILE}`, `./${FILE}`, 'nope', '../../../../etc/passwd', '..\\..\\etc\\shadow', '/etc/passwd', 'a/../../x', '%2e%2e/%2e%2e/x', '\x01\x02', 'x'.repeat(600), 'pxelinux.cfg/01-52-54-00-00-00-01', '.upload-00-x', 'é/ü', '\xff\xfe', ''];
const OPTS = ['blksize', 'tsize', 'timeout', 'windowsize', 'BLKSIZE', 'multicast', 'rollover', 'utimeout', 'x'.repeat(300)];
const VALS = ['0', '1', '7', '8', '512', '1468', '65464', '65465', '99999999999999999999', '-1', 'abc', '', '0x10', '1e3', '255', '256', '65535', '65536', ' 512'];
const MODES = ['octet', 'netascii', 'OCTET', 'mail', '', 'x'.repeat(100)];

function tftpRequest() {
  const parts = [Buffer.from([0, pick([1, 1, 1, 2, 3, 4, 5, 6, 7, 0, 255])])];
  parts.push(Buffer.from(pick(NAMES), 'latin1'), Buffer.from([0]));
  if (rnd() < 0.9) parts.push(Buffer.from(pick(MODES)), Buffer.from([0]));
  for (let k = int(6); k > 0; k--) {
    parts.push(Buffer.from(pick(OPTS)), Buffer.from([0]));
    if (rnd() < 0.9) parts.push(Buffer.from(pick(VALS)), Buffer.from([0]));
  }
  let b = Buffer.concat(parts);
  if (rnd() < 0.2) b = b.subarray(0, int(b.length + 1));
  if (rnd() < 0.1) b = Buffer.concat([b, bytes(int(100))]);
  if (rnd() < 0.05) b = bytes(int(1500));
  return b;
}

function intoTransfer() {
  switch (int(7)) {
    case 0:
      return Buffer.from([0, 4, int(256), int(256)]); // ACK, any block
    case 1:
      return Buffer.concat([Buffer.from([0, 3, int(256), int(256)]), bytes(int(1500))]); // DATA to a reader
    case 2:
      return Buffer.concat([Buffer.from([0, 5, 0, int(9)]), bytes(int(50)), Buffer.from([0])]); // ERROR
    case 3:
      return Buffer.from([0, 6, 0x62, 0x6c, 0]); // OACK from a client
    case 4:
      return bytes(int(5)); // too short
    case 5:
      return Buffer.concat([Buffer.from([0, 4, int(256), int(256)]), bytes(1 + int(2000))]); // an ACK with a tail
    default:
      return bytes(int(1500));
  }
}

// ---------- driver ----------
const sendErrors = {};
const sent = { dhcp: 0, tftpRequests: 0, tftpInTransfer: 0, tftpStranger: 0, transfersStarted: 0, errorsReceived: 0 };
const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function bind(port, broadcast = false) {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise((res, rej) => {
    s.once('error', rej);
    s.bind({ port, address: '0.0.0.0' }, () => res());
  });
  s.setBroadcast(broadcast);
  s.on('error', () => {});
  return s;
}

/** Sleeps until `done` packets are due at RATE per second since `t0`. */
async function pace(done, t0) {
  const due = t0 + (done / BATCH) * BATCH_MS;
  const wait = due - Date.now();
  await (wait > 0 ? sleep(wait) : tick());
}

async function fuzzDhcp() {
  const t0 = Date.now();
  const s = await bind(68, true);
  s.on('message', () => {});
  for (let i = 0; i < DHCP_N && Date.now() < DEADLINE; i++) {
    // one Ethernet frame at most: fragmented datagrams did not reach bootd's DHCP socket in the
    // namespaces (and no DHCP client sends one), so they would count as sent and prove nothing
    const p = (rnd() < 0.15 ? dhcpTemplate(i) : mutateDhcp(dhcpTemplate(i))).subarray(0, 1472);
    s.send(p, 67, rnd() < 0.8 ? '255.255.255.255' : SERVER, (err) => {
      if (err) sendErrors[err.code] = (sendErrors[err.code] ?? 0) + 1;
    });
    sent.dhcp++;
    if (i % BATCH === BATCH - 1) await pace(i + 1, t0);
  }
  s.close();
}

async function fuzzTftp() {
  const t0 = Date.now();
  const reqSock = await bind(0);
  reqSock.on('message', () => {});
  const stranger = await bind(0);
  stranger.on('message', (m) => {
    if (m.length >= 4 && m.readUInt16BE(0) === 5) sent.errorsReceived++;
  });
  // live transfers: a client socket that asked for the file and saw the server's TID
  const live = [];
  for (let i = 0; i < TFTP_N && Date.now() < DEADLINE; ) {
    if (live.length < 8 && rnd() < 0.01) {
      const c = await bind(0);
      const t = { sock: c, tid: null };
      c.on('message', (m, r) => {
        t.tid ??= r.port;
        // sometimes behave: acknowledge what came, so the transfer goes on
        if (m.length >= 4 && m.readUInt16BE(0) === 3 && rnd() < 0.5) c.send(Buffer.from([0, 4, m[2], m[3]]), r.port, SERVER);
      });
      const opts = rnd() < 0.5 ? ['blksize', String(8 + int(1460)), 'windowsize', String(1 + int(8))] : [];
      c.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${FILE}\0octet\0`), ...opts.map((x) => Buffer.from(`${x}\0`))]), TFTP_PORT, SERVER);
      live.push(t);
      sent.transfersStarted++;
    }
    const t = live.length > 0 && rnd() < 0.5 ? pick(live) : null;
    if (t && t.tid !== null) {
      if (rnd() < 0.7) {
        t.sock.send(intoTransfer(), t.tid, SERVER);
        sent.tftpInTransfer++;
      } else {
        stranger.send(intoTransfer(), t.tid, SERVER);
        sent.tftpStranger++;
      }
    } else {
      reqSock.send(tftpRequest(), TFTP_PORT, SERVER);
      sent.tftpRequests++;
    }
    i++;
    if (i % BATCH === 0) {
      await pace(i, t0);
      // retire old transfers now and then
      if (live.length >= 8 && rnd() < 0.2) live.shift()?.sock.close();
    }
  }
  await sleep(200);
  for (const t of live) t.sock.close();
  reqSock.close();
  stranger.close();
}

await Promise.all([fuzzDhcp(), fuzzTftp()]);
await tick();
process.stdout.write(`${JSON.stringify({ sent, sendErrors, seed: Number(args.seed ?? 1) })}\n`);
