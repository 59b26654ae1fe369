// pxe-client.mjs: a PXE-like DHCP client for tests. Broadcasts one DISCOVER
// as a BIOS PXE ROM would (60 PXEClient, 93 = 0, 97 UUID), collects every
// OFFER for WAIT ms, then sends a REQUEST to each proxy server's port 4011,
// and prints one JSON object: { offers: [...], acks: [...] }.
// usage: node pxe-client.mjs BROADCAST_ADDR MAC WAIT_MS
import dgram from 'node:dgram';
import { clientRequest, decodeDhcp, encodeDhcp, getOption } from '../../dist/dhcp/packet.js';

const [bcast, macText, waitArg] = process.argv.slice(2);
const wait = Number(waitArg ?? 3000);
const xid = 0x5a5a0001;
const opts = (type) => [
  { code: 53, data: Buffer.from([type]) },
  { code: 93, data: Buffer.from([0, 0]) },
  { code: 60, data: Buffer.from('PXEClient:Arch:00000:UNDI:002001') },
  { code: 97, data: Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0x42)]) },
];
const packet = (type, ciaddr = '0.0.0.0') => encodeDhcp(clientRequest({ mac: macText, xid, flags: 0x8000, ciaddr, options: opts(type) }));
const summary = (p, from) => ({
  from: from.address,
  type: getOption(p, 53)?.[0],
  serverId: getOption(p, 54) ? [...getOption(p, 54)].join('.') : null,
  yiaddr: p.yiaddr,
  siaddr: p.siaddr,
  file: p.file,
  bootfile: getOption(p, 67)?.toString('latin1') ?? null,
  vendorClass: getOption(p, 60)?.toString('latin1') ?? null,
  opt43: getOption(p, 43)?.toString('hex') ?? null,
});

const offers = [];
const acks = [];
const s68 = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s68.on('message', (m, from) => {
  try {
    const p = decodeDhcp(m);
    if (p.xid === xid && getOption(p, 53)?.[0] === 2) offers.push(summary(p, from));
  } catch {}
});
s68.bind(68, () => {
  s68.setBroadcast(true);
  s68.send(packet(1), 67, bcast);
  setTimeout(async () => {
    s68.close();
    // ask each proxy (an offer without an address) on its boot-server port
    const client = offers.find((o) => o.yiaddr !== '0.0.0.0')?.yiaddr ?? '0.0.0.0';
    for (const o of offers.filter((x) => x.yiaddr === '0.0.0.0' && x.serverId)) {
      await new Promise((resolve) => {
        const s = dgram.createSocket('udp4');
        const t = setTimeout(() => { s.close(); resolve(); }, 2000);
        s.on('message', (m, from) => {
          try { acks.push(summary(decodeDhcp(m), from)); } catch {}
          clearTimeout(t); s.close(); resolve();
        });
        s.bind(0, () => s.send(packet(3, client), 4011, o.serverId));
      });
    }
    console.log(JSON.stringify({ offers, acks }));
  }, wait);
});
