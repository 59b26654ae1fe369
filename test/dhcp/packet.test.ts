import { describe, expect, it } from 'vitest';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DhcpDecodeError,
  MIN_PACKET_BYTES,
  decodeDhcp,
  encodeDhcp,
  getOption,
  hardwareAddress,
  type DhcpPacket,
} from '../../src/dhcp/packet.js';
import { IpxeSub, MessageType, Opt, OptionValueError, RelaySub, decodeSubOptions, decodeValue, encodeSubOptions, encodeValue } from '../../src/dhcp/options.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');

/**
 * A DHCPDISCOVER with the options QEMU's iPXE ROM sends (shared/WIRE.md,
 * BIOS row), written out field by field.
 */
const IPXE_DISCOVER = hex(`
  01                        # op: BOOTREQUEST
  01                        # htype: Ethernet
  06                        # hlen: 6
  00                        # hops
  3903f326                  # xid
  0004                      # secs: 4
  0000                      # flags: no broadcast bit (iPXE does not set it)
  00000000                  # ciaddr 0.0.0.0
  00000000                  # yiaddr
  00000000                  # siaddr
  00000000                  # giaddr
  525400e2e001 00000000000000000000   # chaddr: 52:54:00:e2:e0:01, padded to 16
  ${'00'.repeat(64)}        # sname
  ${'00'.repeat(128)}       # file
  63825363                  # magic cookie
  3501 01                   # 53 message type: DISCOVER
  3902 05c0                 # 57 max message size: 1472
  5d02 0000                 # 93 client arch: 0 (BIOS)
  5e03 010201               # 94 NDI: UNDI 2.1
  3c20 505845436c69656e743a417263683a30303030303a554e44493a303032303031  # 60 "PXEClient:Arch:00000:UNDI:002001"
  4d04 69505845             # 77 user class "iPXE"
  3716 0103060c0f111a2b3c424377808182838485868788af  # 55 parameter request list (22 codes)
  af03 b10101               # 175 iPXE: sub-option 177 (bus id) = 1... (abridged)
  3d07 01525400e2e001       # 61 client id: type 1 + MAC
  6111 00 a1b2c3d4e5f60718293a4b5c6d7e8f90   # 97 UUID: type 0 + 16 bytes
  ff                        # END
`);

describe('DHCP packet codec', () => {
  it('decodes an iPXE DISCOVER field by field', () => {
    const p = decodeDhcp(IPXE_DISCOVER);
    expect(p).toMatchObject({ op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid: 0x3903f326, secs: 4, flags: 0, ciaddr: '0.0.0.0', giaddr: '0.0.0.0', sname: '', file: '' });
    expect(hardwareAddress(p)).toBe('52:54:00:e2:e0:01');
    expect(p.options.map((o) => o.code)).toEqual([53, 57, 93, 94, 60, 77, 55, 175, 61, 97]);
    expect(decodeValue(Opt.MESSAGE_TYPE, getOption(p, Opt.MESSAGE_TYPE) as Buffer)).toBe(MessageType.DISCOVER);
    expect(decodeValue(Opt.MAX_MESSAGE_SIZE, getOption(p, Opt.MAX_MESSAGE_SIZE) as Buffer)).toBe(1472);
    expect(decodeValue(Opt.CLIENT_ARCH, getOption(p, Opt.CLIENT_ARCH) as Buffer)).toEqual([0]);
    expect(decodeValue(Opt.VENDOR_CLASS, getOption(p, Opt.VENDOR_CLASS) as Buffer)).toBe('PXEClient:Arch:00000:UNDI:002001');
    expect((getOption(p, Opt.USER_CLASS) as Buffer).toString()).toBe('iPXE');
    expect(decodeValue(Opt.IPXE, getOption(p, Opt.IPXE) as Buffer)).toEqual([{ code: IpxeSub.BUS_ID, data: Buffer.from([1]) }]);
    expect((decodeValue(Opt.PARAMETER_LIST, getOption(p, Opt.PARAMETER_LIST) as Buffer) as number[]).length).toBe(22);
  });

  it('re-encodes a decoded packet to the same bytes (and pads to the BOOTP minimum)', () => {
    const p = decodeDhcp(IPXE_DISCOVER);
    const again = encodeDhcp(p);
    expect(again.length).toBe(Math.max(IPXE_DISCOVER.length, MIN_PACKET_BYTES));
    expect(again.subarray(0, IPXE_DISCOVER.length).equals(IPXE_DISCOVER)).toBe(true);
    expect(decodeDhcp(again)).toEqual(p);
  });

  it('keeps nothing of the caller\'s buffer: a datagram buffer reused after decode leaves the packet as it was', () => {
    const datagram = Buffer.from(IPXE_DISCOVER);
    const p = decodeDhcp(datagram);
    const before = structuredClone({ chaddr: [...p.chaddr], options: p.options.map((o) => ({ code: o.code, data: [...o.data] })) });
    datagram.fill(0xee); // a receive ring writing the next datagram into the same memory
    expect({ chaddr: [...p.chaddr], options: p.options.map((o) => ({ code: o.code, data: [...o.data] })) }).toEqual(before);
    expect(hardwareAddress(p)).toBe(hardwareAddress(decodeDhcp(IPXE_DISCOVER)));
  });

  it('keeps an unknown option byte for byte through decode and encode', () => {
    const p: DhcpPacket = { ...decodeDhcp(IPXE_DISCOVER), options: [{ code: 53, data: Buffer.from([1]) }, { code: 224, data: Buffer.from('0102ff00', 'hex') }] };
    const wire = encodeDhcp(p);
    expect(wire.subarray(240, 250).toString('hex')).toBe('350101' + 'e0040102ff00' + 'ff');
    expect(getOption(decodeDhcp(wire), 224)?.toString('hex')).toBe('0102ff00');
  });

  it('splits a long option into 255-byte instances and joins them again (RFC 3396)', () => {
    const long = Buffer.alloc(600, 7);
    const p: DhcpPacket = { ...decodeDhcp(IPXE_DISCOVER), options: [{ code: 43, data: long }] };
    const wire = encodeDhcp(p, { maxBytes: 2000 });
    expect([wire[240], wire[241], wire[240 + 257], wire[241 + 257], wire[240 + 514], wire[241 + 514]]).toEqual([43, 255, 43, 255, 43, 90]);
    expect(getOption(decodeDhcp(wire), 43)?.equals(long)).toBe(true);
  });

  it('joins split instances in the order they appear, even with other options between', () => {
    const base = IPXE_DISCOVER.subarray(0, 240);
    const wire = Buffer.concat([base, hex('0c03 616263  3501 01  0c02 6465  ff')]);
    const p = decodeDhcp(wire);
    expect(decodeValue(Opt.HOSTNAME, getOption(p, Opt.HOSTNAME) as Buffer)).toBe('abcde');
    expect(p.options.map((o) => o.code)).toEqual([12, 53]);
  });

  it('reads options carried in file and sname when option 52 says so (RFC 2131 section 4.1)', () => {
    const buf = Buffer.from(IPXE_DISCOVER.subarray(0, 240));
    hex('2b03 060108 ff').copy(buf, 108); // file: option 43 carrying PXE sub-option 6 = 8
    hex('0c04 686f7374 ff').copy(buf, 44); // sname: hostname "host"
    const wire = Buffer.concat([buf, hex('3401 03 3501 02 ff')]);
    const p = decodeDhcp(wire);
    expect(p.sname).toBe('');
    expect(p.file).toBe('');
    expect(p.options.map((o) => o.code)).toEqual([52, 53, 43, 12]);
    expect(decodeValue(Opt.HOSTNAME, getOption(p, Opt.HOSTNAME) as Buffer)).toBe('host');
  });

  it('overflows into file and sname with option 52 when the options do not fit the client\'s size', () => {
    const options = Array.from({ length: 10 }, (_, i) => ({ code: 224 + i, data: Buffer.alloc(40, i) }));
    const p: DhcpPacket = { ...decodeDhcp(IPXE_DISCOVER), op: BOOTREPLY, options: [{ code: 53, data: Buffer.from([2]) }, ...options] };
    const wire = encodeDhcp(p, { maxBytes: 548 });
    expect(wire.length).toBeLessThanOrEqual(548);
    const back = decodeDhcp(wire);
    expect(getOption(back, Opt.OVERLOAD)?.[0]).toBeGreaterThan(0);
    for (const o of options) expect(getOption(back, o.code)?.equals(o.data), `option ${o.code}`).toBe(true);
  });

  it('refuses to encode options that cannot fit at all', () => {
    const p: DhcpPacket = { ...decodeDhcp(IPXE_DISCOVER), file: 'pxelinux.0', sname: 'boot', options: Array.from({ length: 20 }, (_, i) => ({ code: 200 + i, data: Buffer.alloc(30) })) };
    expect(() => encodeDhcp(p, { maxBytes: 548 })).toThrow(/do not fit/);
  });

  it.each<[string, Buffer, string]>([
    ['an empty datagram', Buffer.alloc(0), 'ERR_DHCP_TRUNCATED'],
    ['a header cut short', IPXE_DISCOVER.subarray(0, 239), 'ERR_DHCP_TRUNCATED'],
    ['op 3', Buffer.concat([Buffer.from([3]), IPXE_DISCOVER.subarray(1)]), 'ERR_DHCP_OP'],
    ['hlen 17', Buffer.concat([IPXE_DISCOVER.subarray(0, 2), Buffer.from([17]), IPXE_DISCOVER.subarray(3)]), 'ERR_DHCP_HLEN'],
    ['no magic cookie', Buffer.concat([IPXE_DISCOVER.subarray(0, 236), hex('00000000'), IPXE_DISCOVER.subarray(240)]), 'ERR_DHCP_COOKIE'],
    ['an option longer than the packet', Buffer.concat([IPXE_DISCOVER.subarray(0, 240), hex('3510 01')]), 'ERR_DHCP_OPTION_LENGTH'],
    ['an option with no length byte', Buffer.concat([IPXE_DISCOVER.subarray(0, 240), hex('35')]), 'ERR_DHCP_OPTION_LENGTH'],
    ['option 52 with value 4', Buffer.concat([IPXE_DISCOVER.subarray(0, 240), hex('3401 04 ff')]), 'ERR_DHCP_OVERLOAD'],
  ])('rejects %s with %s', (_n, buf, code) => {
    expect(() => decodeDhcp(buf)).toThrowError(expect.objectContaining({ code }));
  });

  it('accepts options that run to the end of the packet without END', () => {
    const p = decodeDhcp(Buffer.concat([IPXE_DISCOVER.subarray(0, 240), hex('3501 01')]));
    expect(p.options).toEqual([{ code: 53, data: Buffer.from([1]) }]);
  });

  it('returns a packet or a DhcpDecodeError for any input, never anything else', () => {
    let seed = 99;
    const rnd = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    let decoded = 0;
    for (let i = 0; i < 5000; i++) {
      let buf: Buffer;
      if (i % 2 === 0) {
        buf = Buffer.alloc(rnd(400));
        for (let j = 0; j < buf.length; j++) buf[j] = rnd(256);
      } else {
        // mutate a valid packet: flip bytes in the options area and truncate
        buf = Buffer.from(IPXE_DISCOVER.subarray(0, 240 + rnd(IPXE_DISCOVER.length - 239)));
        for (let k = 0; k < 1 + rnd(4); k++) buf[240 + rnd(Math.max(1, buf.length - 240))] = rnd(256);
      }
      try {
        decodeDhcp(buf);
        decoded++;
      } catch (e) {
        expect(e).toBeInstanceOf(DhcpDecodeError);
      }
    }
    expect(decoded).toBeGreaterThan(100); // the mutations exercise the option parser, not only the header checks
  });
});

describe('DHCP option registry', () => {
  it.each<[number, unknown, string]>([
    [Opt.SUBNET_MASK, '255.255.255.0', 'ffffff00'],
    [Opt.ROUTER, ['198.18.0.1', '198.18.0.2'], 'c6120001c6120002'],
    [Opt.LEASE_TIME, 3600, '00000e10'],
    [Opt.MAX_MESSAGE_SIZE, 1472, '05c0'],
    [Opt.MESSAGE_TYPE, MessageType.ACK, '05'],
    [Opt.CLIENT_ARCH, [7], '0007'],
    [Opt.PARAMETER_LIST, [1, 3, 6], '010306'],
    [Opt.BOOTFILE, 'pxelinux.0', Buffer.from('pxelinux.0').toString('hex')],
    [Opt.PXELINUX_PATHPREFIX, '/', '2f'],
  ])('option %i: %j encodes as %s and decodes back', (code, value, wire) => {
    const bytes = encodeValue(code, value as never);
    expect(bytes.toString('hex')).toBe(wire);
    expect(decodeValue(code, bytes)).toEqual(value);
  });

  it('drops a trailing NUL some clients put on strings', () => {
    expect(decodeValue(Opt.VENDOR_CLASS, Buffer.from('udhcp 1.35.0\0'))).toBe('udhcp 1.35.0');
  });

  it.each<[number, string]>([
    [Opt.SUBNET_MASK, 'ffffff'],
    [Opt.ROUTER, 'c61200'],
    [Opt.MESSAGE_TYPE, '0102'],
    [Opt.CLIENT_ARCH, '000700'],
    [Opt.VENDOR_SPECIFIC, '0605'],
  ])('option %i with bytes %s is a typed value error', (code, wire) => {
    expect(() => decodeValue(code, Buffer.from(wire, 'hex'))).toThrow(OptionValueError);
  });

  it('encodes PXE option 43 with sub-option 6 = 8 as EDK2 accepts it (WIRE.md)', () => {
    const v = encodeValue(Opt.VENDOR_SPECIFIC, [{ code: 6, data: Buffer.from([8]) }]);
    expect(v.toString('hex')).toBe('060108');
  });

  it('round-trips relay agent information (option 82) unchanged, sub-options and all', () => {
    const raw = hex('0106 657468302f31  0208 0011223344556677');
    const subs = decodeSubOptions(Opt.RELAY_AGENT, raw);
    expect(subs.map((s) => s.code)).toEqual([RelaySub.CIRCUIT_ID, RelaySub.REMOTE_ID]);
    expect(encodeSubOptions(subs).equals(raw)).toBe(true);
  });

  it('encodes iPXE option 175.176 = 1 (no-pxedhcp), so iPXE does not wait for proxy offers', () => {
    expect(encodeValue(Opt.IPXE, [{ code: IpxeSub.NO_PXEDHCP, data: Buffer.from([1]) }]).toString('hex')).toBe('b00101');
  });

  it('refuses to encode values of the wrong type (programmer errors)', () => {
    expect(() => encodeValue(Opt.SUBNET_MASK, '255.255.255')).toThrow();
    expect(() => encodeValue(Opt.LEASE_TIME, -1)).toThrow();
    expect(() => encodeValue(Opt.MESSAGE_TYPE, 256)).toThrow();
    expect(() => encodeValue(Opt.ROUTER, [])).toThrow();
  });
});
