import { describe, expect, it } from 'vitest';
import { ErrorCode, MAX_REQUEST_BYTES, Opcode, TftpDecodeError, dataHeader, decodePacket, encodePacket, type TftpPacket } from '../../src/tftp/packet.js';

/** Decodes from a copy placed at a non-zero offset of a larger buffer, to catch absolute-offset bugs. */
function decodeAtOffset(buf: Buffer): TftpPacket {
  const big = Buffer.alloc(buf.length + 7, 0xee);
  buf.copy(big, 7);
  return decodePacket(big.subarray(7));
}

describe('TFTP packet codec', () => {
  it.each<[string, TftpPacket, string]>([
    ['RRQ without options', { opcode: Opcode.RRQ, filename: 'pxelinux.0', mode: 'octet', options: [] }, '0001 7078656c696e75782e3000 6f6374657400'],
    [
      'RRQ as EDK2 sends it',
      {
        opcode: Opcode.RRQ,
        filename: 'syslinux.efi',
        mode: 'octet',
        options: [
          { name: 'tsize', value: '0' },
          { name: 'blksize', value: '1468' },
          { name: 'windowsize', value: '4' },
        ],
      },
      '0001 7379736c696e75782e65666900 6f6374657400 7473697a6500 3000 626c6b73697a6500 3134363800 77696e646f7773697a6500 3400',
    ],
    ['WRQ', { opcode: Opcode.WRQ, filename: 'up.txt', mode: 'octet', options: [{ name: 'tsize', value: '12' }] }, '0002 75702e74787400 6f6374657400 7473697a6500 313200'],
    ['DATA', { opcode: Opcode.DATA, block: 0x1234, data: Buffer.from('hi') }, '0003 1234 6869'],
    ['empty DATA (end of a file of exact multiple)', { opcode: Opcode.DATA, block: 7, data: Buffer.alloc(0) }, '0003 0007'],
    ['ACK', { opcode: Opcode.ACK, block: 65535 }, '0004 ffff'],
    ['ERROR', { opcode: Opcode.ERROR, code: ErrorCode.FILE_NOT_FOUND, message: 'File not found' }, '0005 0001 46696c65206e6f7420666f756e6400'],
    ['OACK', { opcode: Opcode.OACK, options: [{ name: 'blksize', value: '1408' }] }, '0006 626c6b73697a6500 3134303800'],
  ])('%s: encodes byte for byte and decodes back', (_name, packet, hex) => {
    const wire = Buffer.from(hex.replace(/ /g, ''), 'hex');
    const encoded = encodePacket(packet);
    expect(encoded.toString('hex')).toBe(wire.toString('hex'));
    expect(encoded.length).toBe(wire.length);
    expect(decodeAtOffset(wire)).toEqual(packet);
  });

  it('lower-cases the mode (RFC 1350: case-insensitive) but keeps the file name and option case', () => {
    const p = decodePacket(encodePacket({ opcode: Opcode.RRQ, filename: 'Boot/X', mode: 'OCTET', options: [{ name: 'BlkSize', value: '1024' }] }));
    expect(p).toMatchObject({ filename: 'Boot/X', mode: 'octet', options: [{ name: 'BlkSize', value: '1024' }] });
  });

  it('keeps every byte of a non-ASCII file name (latin1 in, latin1 out)', () => {
    const raw = Buffer.concat([Buffer.from([0, 1]), Buffer.from('dir/fïle', 'utf8'), Buffer.from([0]), Buffer.from('octet\0')]);
    const p = decodePacket(raw);
    expect(p.opcode).toBe(Opcode.RRQ);
    if (p.opcode === Opcode.RRQ) expect(Buffer.from(p.filename, 'latin1').toString('utf8')).toBe('dir/fïle');
  });

  it('accepts an ERROR whose message lacks the final NUL', () => {
    expect(decodePacket(Buffer.from('00050008757365722061626f7274', 'hex'))).toEqual({ opcode: 5, code: 8, message: 'user abort' });
  });

  it('writes the DATA header with the block number modulo 65536', () => {
    expect(dataHeader(65536).toString('hex')).toBe('00030000');
    expect(dataHeader(65537).toString('hex')).toBe('00030001');
  });

  it.each<[string, string, string]>([
    ['empty packet', '', 'ERR_TFTP_TRUNCATED'],
    ['one byte', '00', 'ERR_TFTP_TRUNCATED'],
    ['unknown opcode 0', '0000', 'ERR_TFTP_OPCODE'],
    ['unknown opcode 7', '0007', 'ERR_TFTP_OPCODE'],
    ['unknown opcode 0xffff', 'ffff41414100', 'ERR_TFTP_OPCODE'],
    ['RRQ with no strings', '0001', 'ERR_TFTP_TRUNCATED'],
    ['RRQ file name without NUL', '0001666f6f', 'ERR_TFTP_NO_NUL'],
    ['RRQ without mode', '0001666f6f00', 'ERR_TFTP_TRUNCATED'],
    ['RRQ mode without NUL', '0001666f6f006f63746574', 'ERR_TFTP_NO_NUL'],
    ['RRQ option without value', '0001666f6f006f6374657400626c6b73697a6500', 'ERR_TFTP_OPTION_VALUE'],
    ['RRQ option value without NUL', '0001666f6f006f6374657400626c6b73697a65003531', 'ERR_TFTP_NO_NUL'],
    ['RRQ with an empty option name', '0001666f6f006f637465740000313200', 'ERR_TFTP_OPTION_VALUE'],
    ['DATA without block number', '000300', 'ERR_TFTP_TRUNCATED'],
    ['ACK of 3 bytes', '000400', 'ERR_TFTP_TRUNCATED'],
    ['ERROR without code', '0005', 'ERR_TFTP_TRUNCATED'],
    ['OACK with a dangling name', '0006626c6b73697a6500', 'ERR_TFTP_OPTION_VALUE'],
  ])('rejects %s with %s', (_name, hex, code) => {
    let err: unknown;
    try {
      decodePacket(Buffer.from(hex, 'hex'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TftpDecodeError);
    expect((err as TftpDecodeError).code).toBe(code);
  });

  it('rejects a request longer than the limit (oversized option values)', () => {
    const huge = encodePacket({ opcode: Opcode.RRQ, filename: 'f', mode: 'octet', options: [{ name: 'blksize', value: '9'.repeat(MAX_REQUEST_BYTES) }] });
    expect(() => decodePacket(huge)).toThrowError(expect.objectContaining({ code: 'ERR_TFTP_TOO_LONG' }));
  });

  it('never throws anything but TftpDecodeError on random input', () => {
    let seed = 12345;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 20_000; i++) {
      const len = rnd() % 64;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = rnd() % 8 === 0 ? 0 : rnd();
      if (len >= 2 && i % 2 === 0) buf.writeUInt16BE(1 + (i % 6), 0);
      try {
        decodePacket(buf);
      } catch (e) {
        expect(e).toBeInstanceOf(TftpDecodeError);
      }
    }
  });

  it('refuses to encode impossible values (programmer errors)', () => {
    expect(() => encodePacket({ opcode: Opcode.ACK, block: 70000 })).toThrow(/out of range/);
    expect(() => encodePacket({ opcode: Opcode.RRQ, filename: 'a\0b', mode: 'octet', options: [] })).toThrow(/NUL/);
  });
});
