#!/usr/bin/env node
/**
 * dhcp-acks.mjs: DHCP clients that remember every ACK, for the failover
 * proofs (scripts/failover-bench.sh). Run as root inside a client namespace
 * whose only interface carries a route for 255.255.255.255.
 *
 * Each of --clients simulated clients (MAC = --mac-base + index) runs
 * DISCOVER, OFFER, REQUEST, ACK with retransmission (RFC 2131 section 4.1:
 * --rto doubling, --tries per message, then back to INIT, as real clients
 * do), broadcast flag set. --cycles N: each client leases N times in a row
 * (a lease loop); 0 = until --seconds. --rate: clients started per second
 * (0 = all at once, a storm). Every ACK is printed as one line
 * `ack <mac> <ip> <server-id> <ms since start>` on stdout as it arrives; a
 * JSON summary goes to stderr at the end: leased clients, ACKs, NAKs,
 * restarts, and `boundTwice`: ACKs giving an address whose previous ACK
 * went to another MAC (what must never happen).
 *
 * --kill-at N --kill-pid PID: sends SIGKILL to PID (a server started by the
 * caller) right after the Nth ACK, for a kill exactly "halfway".
 *
 * Bounded: everything stops after --seconds.
 */
import dgram from 'node:dgram';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const N = Number(args.clients ?? 100);
const CYCLES = Number(args.cycles ?? 1);
const SECONDS = Number(args.seconds ?? 60);
const RATE = Number(args.rate ?? 0);
const RTO = Number(args.rto ?? 1) * 1000;
const TRIES = Number(args.tries ?? 4);
const KILL_AT = Number(args['kill-at'] ?? 0);
const KILL_PID = Number(args['kill-pid'] ?? 0);
const BASE = (args['mac-base'] ?? '02:bf:00:00:00:00').split(':').map((h) => parseInt(h, 16));

const macOf = (i) => {
  const m = Buffer.from(BASE);
  m.writeUInt16BE((m.readUInt16BE(4) + i) & 0xffff, 4);
  m[3] = (m[3] + (i >> 16)) & 0xff;
  return m;
};
const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ip = (b, o) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

function packet(type, xid, mac, requested, server) {
  const p = Buffer.alloc(300);
  p[0] = 1; p[1] = 1; p[2] = 6;
  p.writeUInt32BE(xid, 4);
  p.writeUInt16BE(0x8000, 10); // broadcast flag
  mac.copy(p, 28);
  p.writeUInt32BE(0x63825363, 236);
  let o = 240;
  const put = (code, data) => { p[o++] = code; p[o++] = data.length; data.copy(p, o); o += data.length; };
  put(53, Buffer.from([type]));
  put(61, Buffer.concat([Buffer.from([1]), mac]));
  if (requested) put(50, requested);
  if (server) put(54, server);
  put(55, Buffer.from([1, 3, 6, 51, 54]));
  p[o++] = 255;
  return p;
}

function parse(b) {
  if (b.length < 240 || b[0] !== 2 || b.readUInt32BE(236) !== 0x63825363) return null;
  let type = 0;
  let sid = null;
  for (let o = 240; o < b.length && b[o] !== 255;) {
    if (b[o] === 0) { o++; continue; }
    const code = b[o];
    const len = b[o + 1];
    if (code === 53) type = b[o + 2];
    if (code === 54 && len === 4) sid = b.subarray(o + 2, o + 6);
    o += 2 + len;
  }
  return { xid: b.readUInt32BE(4), yiaddr: b.subarray(16, 20), mac: hex(b.subarray(28, 34)), type, sid };
}

const t0 = Date.now();
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const clients = Array.from({ length: N }, (_, i) => ({ i, mac: macOf(i), macText: hex(macOf(i)), state: 'idle', tries: 0, xid: 0, offered: null, sid: null, timer: null, cycles: 0 }));
const byXid = new Map();
const latest = new Map(); // ip -> mac of its latest ACK
const s = { acks: 0, naks: 0, restarts: 0, sent: 0, boundTwice: 0, leasedClients: 0 };
let xidSeq = (Math.random() * 0xffff) << 16;
let finished = false;

function send(c) {
  const p = c.state === 'selecting' ? packet(1, c.xid, c.mac) : packet(3, c.xid, c.mac, c.offered, c.sid);
  s.sent++;
  sock.send(p, 67, '255.255.255.255');
  c.tries++;
  const rto = RTO * 2 ** (c.tries - 1) * (0.75 + Math.random() * 0.5);
  clearTimeout(c.timer);
  c.timer = setTimeout(() => {
    if (c.tries >= TRIES) {
      // RFC 2131 section 4.4.1: neither ACK nor NAK after retransmitting: back to INIT
      s.restarts++;
      begin(c);
    } else send(c);
  }, rto);
}

function begin(c) {
  if (finished) return;
  byXid.delete(c.xid);
  c.xid = (xidSeq++ >>> 0);
  byXid.set(c.xid, c);
  c.state = 'selecting';
  c.tries = 0;
  send(c);
}

sock.on('message', (b) => {
  const r = parse(b);
  if (!r) return;
  const c = byXid.get(r.xid);
  if (!c || r.mac !== c.macText) return;
  if (c.state === 'selecting' && r.type === 2) {
    c.offered = Buffer.from(r.yiaddr);
    c.sid = r.sid ? Buffer.from(r.sid) : null;
    c.state = 'requesting';
    c.tries = 0;
    send(c);
  } else if (c.state === 'requesting' && r.type === 5) {
    clearTimeout(c.timer);
    const a = ip(r.yiaddr, 0);
    const prev = latest.get(a);
    if (prev !== undefined && prev !== c.macText) s.boundTwice++;
    latest.set(a, c.macText);
    s.acks++;
    if (KILL_AT > 0 && s.acks === KILL_AT && KILL_PID > 0) {
      process.kill(KILL_PID, 'SIGKILL');
      process.stderr.write(`killed ${KILL_PID} at ${Date.now()} after ${s.acks} ACKs\n`);
    }
    if (c.cycles === 0) s.leasedClients++;
    c.cycles++;
    process.stdout.write(`ack ${c.macText} ${a} ${r.sid ? ip(r.sid, 0) : '-'} ${Date.now() - t0}\n`);
    c.state = 'bound';
    byXid.delete(c.xid);
    if (CYCLES === 0 || c.cycles < CYCLES) setTimeout(() => begin(c), 50 + Math.random() * 200);
    else if (clients.every((x) => x.state === 'bound' && (CYCLES !== 0 && x.cycles >= CYCLES))) end();
  } else if (c.state === 'requesting' && r.type === 6) {
    s.naks++;
    begin(c);
  }
});

function end() {
  if (finished) return;
  finished = true;
  for (const c of clients) clearTimeout(c.timer);
  const unbound = clients.filter((c) => c.cycles === 0).length;
  process.stderr.write(`${JSON.stringify({ clients: N, ...s, neverLeased: unbound, seconds: (Date.now() - t0) / 1000 })}\n`);
  sock.close();
  setTimeout(() => process.exit(0), 10).unref();
}

sock.bind(68, () => {
  sock.setBroadcast(true);
  setTimeout(end, SECONDS * 1000).unref();
  let started = 0;
  const startSome = () => {
    const due = RATE > 0 ? Math.min(N, Math.floor(((Date.now() - t0) / 1000) * RATE) + 1) : N;
    while (started < due) begin(clients[started++]);
    if (started < N) setTimeout(startSome, 5);
  };
  startSome();
});
setTimeout(end, SECONDS * 1000 + 100);
