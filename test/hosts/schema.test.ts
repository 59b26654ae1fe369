import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/config/yaml-config.js';
import { parseHostFile } from '../../src/hosts/schema.js';

const F = 'hosts/web-01.yaml';
const errors = (text: string, name = 'web-01'): string[] => {
  const r = parseHostFile(F, name, text);
  return r.ok ? [] : r.issues.map(formatIssue);
};

describe('one host file', () => {
  it('turns a full file into typed values, with defaults filled in', () => {
    const r = parseHostFile(
      F,
      'web-01',
      [
        'macs: ["52:54:00:12:34:56", 52-54-00-AB-CD-EF]',
        'ip: 198.18.0.20',
        'hostname: web-01.lab',
        'image: bee@2026.11.22-1',
        'kernel_args: console=ttyS0,115200  quiet',
        'params: { toolchain_url: "https://example.org/t", jobs: 8, debug: true }',
        'build: { quota: 1G, overwrite: false }',
        'smoke: { user: bee, port: 2222, identity_file: /etc/bootd/id_ed25519, script: checks/web.sh }',
        'quirks: { tftp_max_blksize: 1024, tftp_no_windowsize: true, dhcp_reply_delay_ms: 500 }',
      ].join('\n'),
    );
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.host).toEqual({
      name: 'web-01',
      file: F,
      macs: ['52:54:00:12:34:56', '52:54:00:ab:cd:ef'],
      ip: '198.18.0.20',
      hostname: 'web-01.lab',
      image: { name: 'bee', version: '2026.11.22-1' },
      netboot: true,
      kernelArgs: ['console=ttyS0,115200', 'quiet'],
      params: { toolchain_url: 'https://example.org/t', jobs: '8', debug: 'true' },
      build: { quotaBytes: 1024 ** 3, overwrite: false },
      smoke: { user: 'bee', port: 2222, identityFile: '/etc/bootd/id_ed25519', script: 'checks/web.sh' },
      quirks: { tftpMaxBlksize: 1024, tftpNoWindowsize: true, dhcpReplyDelayMs: 500 },
    });
  });

  it('needs only mac and image; the host name comes from the file name', () => {
    const r = parseHostFile(F, 'Web-01', 'mac: 52:54:00:12:34:56\nimage: buildos\n');
    expect(r.ok && { hostname: r.host.hostname, build: r.host.build, netboot: r.host.netboot, smoke: r.host.smoke }).toEqual({
      hostname: 'web-01',
      build: null,
      netboot: true,
      smoke: {},
    });
  });

  it('accepts a host that never netboots without an image', () => {
    const r = parseHostFile(F, 'web-01', 'mac: 52:54:00:12:34:56\nnetboot: false\n');
    expect(r.ok && r.host.netboot).toBe(false);
  });

  it('gives build machines the default 200M quota with build: true', () => {
    const r = parseHostFile(F, 'web-01', 'mac: 52:54:00:12:34:56\nimage: buildos\nbuild: true\n');
    expect(r.ok && r.host.build).toEqual({ quotaBytes: 200 * 1024 * 1024, overwrite: true });
  });

  // Each message names file:line:col, the key path, what was expected and the value found.
  it.each([
    ['a MAC with a bad digit', 'mac: 52:54:00:zz:34:56\nimage: bee\n', 'hosts/web-01.yaml:1:6: mac: expected a MAC address like 52:54:00:12:34:56, got "52:54:00:zz:34:56"'],
    ['a multicast MAC', 'mac: 01:00:5e:00:00:01\nimage: bee\n', 'hosts/web-01.yaml:1:6: mac: expected a unicast MAC address (first octet even), got "01:00:5e:00:00:01"'],
    ['a bad MAC in a list', 'macs:\n  - 52:54:00:12:34:56\n  - nope\nimage: bee\n', 'hosts/web-01.yaml:3:5: macs[1]: expected a MAC address like 52:54:00:12:34:56, got "nope"'],
    ['no MAC at all', 'image: bee\n', 'hosts/web-01.yaml:1:1: missing; expected mac: <MAC address> (or macs: [<MAC>, ...])'],
    ['both mac and macs', 'mac: 52:54:00:12:34:56\nmacs: [52:54:00:12:34:57]\nimage: bee\n', 'hosts/web-01.yaml:2:1: macs: give either mac or macs, not both'],
    ['the same MAC twice', 'macs: [52:54:00:12:34:56, 52-54-00-12-34-56]\nimage: bee\n', 'hosts/web-01.yaml:1:27: macs[1]: 52:54:00:12:34:56 is listed twice'],
    ['an IP out of range', 'mac: 52:54:00:12:34:56\nip: 198.18.0.300\nimage: bee\n', 'hosts/web-01.yaml:2:5: ip: expected an IPv4 address like 198.18.0.20, got "198.18.0.300"'],
    ['an IP written as a number', 'mac: 52:54:00:12:34:56\nip: 42\nimage: bee\n', 'hosts/web-01.yaml:2:5: ip: expected an IPv4 address like 198.18.0.20, got 42'],
    ['a malformed image reference', 'mac: 52:54:00:12:34:56\nimage: Bee@@1\n', 'hosts/web-01.yaml:2:8: image: expected an image like bee, buildos or bee@<version>, got "Bee@@1"'],
    ['no image for a netbooting host', 'mac: 52:54:00:12:34:56\n', 'hosts/web-01.yaml:1:1: missing; expected image: bee, buildos or <name>@<version> (or netboot: false)'],
    ['a newline in kernel arguments', 'mac: 52:54:00:12:34:56\nimage: bee\nkernel_args: ["quiet\\nAPPEND evil"]\n', 'hosts/web-01.yaml:3:15: kernel_args[0]: expected one word of printable ASCII without spaces, quotes, backslashes or $, got "quiet\\nAPPEND evil"'],
    ['a stray quote in kernel arguments', "mac: 52:54:00:12:34:56\nimage: bee\nkernel_args: 'root=\"/dev/sda'\n", 'hosts/web-01.yaml:3:14: kernel_args[0]: expected one word of printable ASCII without spaces, quotes, backslashes or $, got "root=\\"/dev/sda"'],
    ['an iPXE expansion in a parameter', 'mac: 52:54:00:12:34:56\nimage: bee\nparams: { url: "${net0/ip}" }\n', 'hosts/web-01.yaml:3:16: params.url: expected one word of printable ASCII without spaces, quotes, backslashes or $, got "${net0/ip}"'],
    ['an unknown key', 'mac: 52:54:00:12:34:56\nimage: bee\nimgae: buildos\n', 'hosts/web-01.yaml:3:1: imgae: unknown key; expected one of mac, macs, ip, hostname, image, netboot, loader, secure_boot, arch, kernel_args, params, build, smoke, quirks'],
    ['an unknown quirk', 'mac: 52:54:00:12:34:56\nimage: bee\nquirks:\n  tftp_max_blksze: 512\n', 'hosts/web-01.yaml:4:3: quirks.tftp_max_blksze: unknown key; expected one of tftp_max_blksize, tftp_no_windowsize, dhcp_reply_delay_ms'],
    ['a blksize quirk out of range', 'mac: 52:54:00:12:34:56\nimage: bee\nquirks: { tftp_max_blksize: 70000 }\n', 'hosts/web-01.yaml:3:29: quirks.tftp_max_blksize: expected a TFTP block size: an integer from 8 to 65464, got 70000'],
    ['netboot that is not a boolean', 'mac: 52:54:00:12:34:56\nimage: bee\nnetboot: maybe\n', 'hosts/web-01.yaml:3:10: netboot: expected true or false, got "maybe"'],
    ['a bad quota', 'mac: 52:54:00:12:34:56\nimage: bee\nbuild: { quota: lots }\n', 'hosts/web-01.yaml:3:17: build.quota: expected a size like 200M, 1G or a number of bytes, got "lots"'],
    ['a bad host name', 'mac: 52:54:00:12:34:56\nimage: bee\nhostname: Web_01\n', 'hosts/web-01.yaml:3:11: hostname: expected a host name like build-01 (lower-case letters, digits, dashes; dots between labels), got "Web_01"'],
    ['broken YAML', 'mac: [52:54:00:12:34:56\nimage: bee\n', 'hosts/web-01.yaml:2:1: not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ['a duplicate key', 'mac: 52:54:00:12:34:56\nmac: 52:54:00:12:34:57\nimage: bee\n', 'hosts/web-01.yaml:2:1: mac: duplicate key "mac"'],
    ['a list instead of a mapping', '- mac: 52:54:00:12:34:56\n', 'hosts/web-01.yaml:1:1: expected a mapping with keys mac, macs, ip, hostname, image, netboot, loader, secure_boot, arch, kernel_args, params, build, smoke, quirks, got [{"mac":"52:54:00:12:34:56"}]'],
  ])('reports %s with file, line, column, key and value', (_what, text, message) => {
    expect(errors(text)).toEqual([message]);
  });

  it('reports every problem in a file, in line order', () => {
    expect(errors('mac: 52:54:00:12:34:5\nip: x\nimage: bee\nquirks: { dhcp_reply_delay_ms: -1 }\n')).toEqual([
      'hosts/web-01.yaml:1:6: mac: expected a MAC address like 52:54:00:12:34:56, got "52:54:00:12:34:5"',
      'hosts/web-01.yaml:2:5: ip: expected an IPv4 address like 198.18.0.20, got "x"',
      'hosts/web-01.yaml:4:32: quirks.dhcp_reply_delay_ms: expected milliseconds: an integer from 0 to 10000, got -1',
    ]);
  });

  it('refuses a file name that cannot be a host name', () => {
    expect(errors('mac: 52:54:00:12:34:56\nimage: bee\n', 'a b')).toEqual(['hosts/web-01.yaml:1:1: file name "a b" is not a host name (expected letters, digits, ".", "_" or "-")']);
  });
});
