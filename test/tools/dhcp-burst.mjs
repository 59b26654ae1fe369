// dhcp-burst.mjs: a DHCP load client for tests. Runs DISCOVER/REQUEST for N
// distinct MACs (52:54:01:xx:xx:xx) against a server and appends every ACK it
// gets to OUT as "mac ip" lines, flushed at once, so a test can kill the server
// mid-burst and know exactly which leases were acknowledged.
// usage: node dhcp-burst.mjs SERVER_ADDR COUNT OUT [SECONDS]
import dgram from 'node:dgram';
import { appendFileSync } from 'node:fs';
import { clientRequest, decodeDhcp, encodeDhcp, getOption } from '../../dist/dhcp/packet.js';

const [server, countArg, out, secondsArg] = process.argv.slice(2);
const count = Number(countArg);
const deadline = Date.now() + Number(secondsArg ?? 20) * 1000;
const macOf = (i) => Buffer.from([0x52, 0x54, 0x01, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
const hex = (b) => [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
const state = new Map(); // xid -> { i, phase }

function packet(i, type, extra = []) {
  return encodeDhcp(clientRequest({ mac: macOf(i), xid: 0x10000000 + i, flags: 0x8000, options: [{ code: 53, data: Buffer.from([type]) }, ...extra] }));
}

const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
sock.on('message', (msg) => {
  let p;
  try { p = decodeDhcp(msg); } catch { return; }
  const i = p.xid - 0x10000000;
  const st = state.get(i);
  if (!st) return;
  const t = getOption(p, 53)?.[0];
  if (t === 2 && st.phase === 'discover') {
    st.phase = 'request';
    const ip = Buffer.from(p.yiaddr.split('.').map(Number));
    sock.send(packet(i, 3, [{ code: 50, data: ip }, { code: 54, data: getOption(p, 54) }]), 67, server);
  } else if (t === 5 && st.phase === 'request') {
    st.phase = 'done';
    appendFileSync(out, `${hex(p.chaddr)} ${p.yiaddr}\n`);
  }
});
sock.bind(68, () => {
  sock.setBroadcast(true);
  let i = 0;
  const tick = setInterval(() => {
    for (let k = 0; k < 10 && i < count; k++, i++) {
      state.set(i, { phase: 'discover' });
      sock.send(packet(i, 1), 67, server);
    }
    const done = [...state.values()].filter((s) => s.phase === 'done').length;
    if ((i >= count && done === count) || Date.now() > deadline) {
      clearInterval(tick);
      sock.close();
    }
  }, 5);
});
