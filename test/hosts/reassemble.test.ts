/**
 * A watcher's pass (src/hosts/directory.ts reassemble: from the previous
 * assembly, only the changed files and those with an issue decide again)
 * gives what a full pass (assemble, with the last good hosts) gives: the
 * same hosts served, the same issues, the same stale files, over thousands
 * of random edits with colliding MACs, IPs and unknown images; files added
 * and removed too.
 */
import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/config/yaml-config.js';
import { assemble, reassemble, type Assembly, type ImageIndex } from '../../src/hosts/directory.js';
import { parseHostFile, type HostFileResult } from '../../src/hosts/schema.js';

const images: ImageIndex = { knows: (n) => n === 'bee', hasVersion: () => false };

function summary(a: Assembly): unknown {
  return {
    files: a.files.map((o) => [o.file, o.host ? JSON.stringify(o.host) : null, o.stale, o.issues.map(formatIssue)]),
    byMac: [...Array(8).keys()].map((i) => a.set.byMac(`52:54:00:00:00:0${i}`)?.name ?? null),
    byIp: [...Array(6).keys()].map((i) => a.set.byIp(`198.18.0.${i}`)?.name ?? null),
    hosts: a.set.hosts.map((h) => h.name),
  };
}

describe('a watcher\'s pass over the previous assembly', () => {
  it('agrees with a full pass after each of 3,000 random edits', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const text = (): string => {
      if (rnd(10) === 0) return 'mac: [broken\n';
      return `mac: 52:54:00:00:00:0${rnd(8)}\n${rnd(2) === 0 ? `ip: 198.18.0.${rnd(6)}\n` : ''}image: ${rnd(8) === 0 ? 'nope' : 'bee'}\n`;
    };
    const names = Array.from({ length: 12 }, (_, i) => `h${String(i).padStart(2, '0')}`);
    const results = new Map<string, HostFileResult>();
    const put = (name: string): void => void results.set(`hosts/${name}.yaml`, parseHostFile(`hosts/${name}.yaml`, name, text()));
    for (const n of names.slice(0, 8)) put(n);
    const sorted = (): Map<string, HostFileResult> => new Map([...results.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
    let full = assemble(sorted(), new Map(), images);
    let incremental = full;
    for (let step = 0; step < 3000; step++) {
      const changed = new Set<string>();
      for (let k = 0, m = 1 + rnd(2); k < m; k++) {
        const name = names[rnd(names.length)] as string;
        const file = `hosts/${name}.yaml`;
        if (results.has(file) && rnd(6) === 0) results.delete(file);
        else put(name);
        changed.add(file);
      }
      const now = sorted();
      const lastGood = new Map(full.files.flatMap((o) => (o.host ? [[o.file, o.host] as const] : [])));
      full = assemble(now, lastGood, images);
      incremental = reassemble(incremental, now, changed, images) as Assembly;
      const si = JSON.stringify(summary(incremental), null, 1);
      const sf = JSON.stringify(summary(full), null, 1);
      if (si !== sf) console.log(step, [...changed], si, sf);
      expect(si, `step ${step}`).toBe(sf);
    }
  });
});
