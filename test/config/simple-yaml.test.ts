/**
 * The host files' YAML fast path (src/config/simple-yaml.ts) against the
 * full parser (yaml, YAML 1.2 core schema): for every document the fast path
 * accepts, the same value; the tricky scalars (floats, hex, quoted, "yes",
 * '#' without a space, ':' at the end) and shapes (block lists, two levels,
 * anchors, duplicate keys) are left to the full parser. Thousands of
 * generated documents, and fixed ones.
 */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseSimpleYaml } from '../../src/config/simple-yaml.js';

const full = (text: string): unknown => parse(text, { uniqueKeys: false }) as unknown;

describe('the simple YAML fast path', () => {
  it('reads typical host files as the full parser does', () => {
    const docs = [
      'mac: 52:54:00:12:34:56\nimage: bee\n',
      '# a build host\nmac: 52:54:00:12:34:56   # its NIC\nip: 198.18.0.10\nhostname: build-01\nimage: buildos@2026.11.30\nkernel_args: [quiet, console=ttyS0]\nnetboot: true\n',
      'macs: [52:54:00:00:00:01, 52:54:00:00:00:02]\nimage: bee\nparams:\n  toolchain_url: http://198.18.0.1/tc.tar\n  jobs: 8\nsmoke:\n  user: root\n  port: 22\n',
      'mac: 52:54:00:12:34:56\nnetboot: false\nbuild:\n  quota: 256K\n  overwrite: false\n',
      'mac: 52:54:00:12:34:56\nquirks:\n    tftp_max_blksize: 1024\n    dhcp_reply_delay_ms: 0\n',
      'kernel_args: []\nmac: 52:54:00:aa:bb:cc\nimage: bee\n',
      'a: -5\nb: +7\nc: 0123\nd: ~\ne: Null\nf: TRUE\ng: False\n',
    ];
    for (const d of docs) {
      const v = parseSimpleYaml(d);
      expect(v, d).not.toBeNull();
      expect(v, d).toEqual(full(d));
    }
  });

  it('leaves to the full parser what it cannot decide with certainty', () => {
    const docs = [
      'mac: "52:54:00:12:34:56"\n', "image: 'bee'\n", 'v: 1.0\n', 'v: 0x1f\n', 'v: 0o17\n', 'v: .inf\n', 'v: 1e3\n', 'v: 12345678901234567890\n',
      'macs:\n  - 52:54:00:00:00:01\n', 'a:\n  b:\n    c: 1\n', 'a: &x 1\nb: *x\n', 'a: !!str 1\n', 'a: |\n  text\n', 'a: >\n  text\n',
      'a: 1\na: 2\n', '---\na: 1\n', 'a: b#c\n', 'a: b:\n', 'a: [b:]\n', 'a: [b, [c]]\n', 'a: {b: 1}\n', '\ta: 1\n', 'a: 1\r\n', 'A: 1\n', 'a:\n', 'a: 1\n  b: 2\n',
      'p:\n  x: 1\n   y: 2\n', '\ufeffa: 1\n', 'a: @x\n', 'a: `x`\n', 'a: -\n', 'a: -x\n', 'a: ? b\n', 'a: %x\n', '', '# only a comment\n',
    ];
    for (const d of docs) expect(parseSimpleYaml(d), JSON.stringify(d)).toBeNull();
  });

  it('agrees with the full parser on 20,000 generated documents wherever it answers', () => {
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const atoms = ['bee', 'buildos@2026.12.01', '52:54:00:ab:cd:ef', '198.18.0.7', 'true', 'false', 'yes', 'no', 'on', 'null', '~', '42', '-3', '+4', '007', '1.5', '1e5', '0x10', '.5',
      'console=ttyS0', 'a,b', 'x#y', 'x #y', 'http://h/x', 'a: b', '"q"', "'q'", '[a, b]', '[]', '[1, two, 3.0]', '[a,]', '[b:c]', '[b:, c]', '-', '-a', 'A-Z', '_x', '@x', '=x', 'a=b=c', '', '  ', ':x', 'x:', '9'.repeat(20)];
    const keys = ['mac', 'ip', 'image', 'kernel_args', 'x1', 'k_y', 'Key', 'a-b'];
    let answered = 0;
    for (let i = 0; i < 20_000; i++) {
      const lines: string[] = [];
      for (let j = 0, n = 1 + rnd(5); j < n; j++) {
        const r = rnd(10);
        const key = keys[rnd(keys.length)] as string;
        if (r === 0) lines.push(`# note ${j}`);
        else if (r === 1) {
          lines.push(`${key}:`);
          for (let k = 0, m = rnd(3); k < m; k++) lines.push(`${' '.repeat(2 + (rnd(4) === 0 ? 1 : 0))}${keys[rnd(keys.length)]}: ${atoms[rnd(atoms.length)]}`);
        } else lines.push(`${key}: ${atoms[rnd(atoms.length)]}${rnd(6) === 0 ? ' # c' : ''}`);
      }
      const text = `${lines.join('\n')}\n`;
      const fast = parseSimpleYaml(text);
      if (fast === null) continue;
      answered++;
      let expected: unknown;
      try {
        expected = full(text);
      } catch (err) {
        throw new Error(`the fast path read a document the full parser refuses: ${JSON.stringify(text)}: ${(err as Error).message}`);
      }
      expect(fast, JSON.stringify(text)).toEqual(expected);
    }
    expect(answered).toBeGreaterThan(2000); // the fast path is really used
  });
});
