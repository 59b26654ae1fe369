// lease-loop.mjs: a DHCP client that keeps leasing and renewing for a crash
// test. It cycles through COUNT MACs (52:54:02:xx:xx:xx): DISCOVER, REQUEST
// (SELECTING), and on later rounds a REQUEST for the address it holds; every
// ACK is appended to OUT as "mac ip ackedAtMs leaseSeconds", flushed at once,
// so a test can kill -9 the server at any moment and know what was
// acknowledged. A request with no answer in 300 ms is simply tried again
// (the server is down or restarting). Stops when STOPFILE exists, or after
// SECONDS. Broadcast flag set: replies come back by broadcast.
// usage: node lease-loop.mjs SERVER_BCAST COUNT OUT STOPFILE SECONDS
import dgram from 'node:dgram';
import { appendFileSync, existsSync } from 'node:fs';
import { clientRequest, decodeDhcp, encodeDhcp, getOption } from '../../dist/dhcp/packet.js';

const [server, countArg, out, stopFile, secondsArg] = process.argv.slice(2);
const count = Number(countArg);
const deadline = Date.now() + Number(secondsArg ?? 600) * 1000;
const macOf = (i) => Buffer.from([0x52, 0x54, 0x02, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
const hex = (b) => [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
const held = new Map(); // i -> { ip, sid }
let xidSeq = 1;
let cur = null; // { i, xid, phase, sentAt }

const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const send = (i, type, extra) => {
  const xid = (0x20000000 + xidSeq++) >>> 0;
  cur = { i, xid, phase: type === 1 ? 'discover' : 'request', sentAt: Date.now() };
  sock.send(encodeDhcp(clientRequest({ mac: macOf(i), xid, flags: 0x8000, options: [{ code: 53, data: Buffer.from([type]) }, ...extra] })), 67, server);
};
const start = (i) => {
  const h = held.get(i);
  if (h) send(i, 3, [{ code: 50, data: Buffer.from(h.ip.split('.').map(Number)) }, { code: 54, data: h.sid }]);
  else send(i, 1, []);
};
let next = 0;
sock.on('message', (msg) => {
  let p;
  try { p = decodeDhcp(msg); } catch { return; }
  if (!cur || p.xid !== cur.xid) return;
  const t = getOption(p, 53)?.[0];
  if (t === 2 && cur.phase === 'discover') {
    const sid = getOption(p, 54);
    send(cur.i, 3, [{ code: 50, data: Buffer.from(p.yiaddr.split('.').map(Number)) }, { code: 54, data: sid }]);
  } else if (t === 5 && cur.phase === 'request') {
    const lease = getOption(p, 51)?.readUInt32BE(0) ?? 0;
    appendFileSync(out, `${hex(p.chaddr)} ${p.yiaddr} ${Date.now()} ${lease}\n`);
    held.set(cur.i, { ip: p.yiaddr, sid: getOption(p, 54) });
    next = (cur.i + 1) % count;
    cur = null;
  } else if (t === 6) {
    held.delete(cur.i); // NAK: start over with a DISCOVER
    cur = null;
  }
});
sock.bind(68, () => {
  sock.setBroadcast(true);
  const tick = setInterval(() => {
    if (existsSync(stopFile) || Date.now() > deadline) {
      clearInterval(tick);
      sock.close();
      return;
    }
    if (cur === null || Date.now() - cur.sentAt > 300) start(cur?.i ?? next);
  }, 10);
});
