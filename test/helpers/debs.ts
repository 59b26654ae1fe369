/**
 * Real .deb files made with dpkg-deb for builder tests, and a PackageSource
 * that serves them from a folder (no network) and counts downloads.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BuildLog } from '../../src/images/build-log.js';
import type { DebRef, PackageSource } from '../../src/images/packages.js';

export interface FakeDeb {
  readonly name: string;
  readonly version: string;
  readonly deps?: readonly string[];
  /** Image path -> text content, or { from: a host file to copy }, or { link: target }. */
  readonly files: Readonly<Record<string, string | { from: string } | { link: string }>>;
  readonly mode?: Readonly<Record<string, number>>;
}

export function makeDeb(repo: string, d: FakeDeb): DebRef {
  const stage = mkdtempSync(path.join(tmpdir(), 'bootd-deb-'));
  try {
    mkdirSync(path.join(stage, 'DEBIAN'));
    writeFileSync(path.join(stage, 'DEBIAN/control'), `Package: ${d.name}\nVersion: ${d.version}\nArchitecture: amd64\nMaintainer: bootd tests <t@example.invalid>\nDescription: test package\n`);
    for (const [p, c] of Object.entries(d.files)) {
      const f = path.join(stage, p);
      mkdirSync(path.dirname(f), { recursive: true });
      if (typeof c === 'string') writeFileSync(f, c);
      else if ('from' in c) copyFileSync(c.from, f);
      else execFileSync('ln', ['-s', c.link, f]);
      const m = d.mode?.[p];
      if (m !== undefined) chmodSync(f, m);
    }
    const filename = `${d.name}_${d.version.replace(/:/g, '%3a')}_amd64.deb`;
    mkdirSync(repo, { recursive: true });
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', stage, path.join(repo, filename)], { stdio: 'ignore' });
    return { name: d.name, version: d.version, arch: 'amd64', filename, size: statSync(path.join(repo, filename)).size, hash: '' };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export class FolderSource implements PackageSource {
  readonly downloads: string[] = [];
  private readonly pkgs = new Map<string, { ref: DebRef; deps: readonly string[] }>();

  constructor(private readonly repo: string) {}

  add(d: FakeDeb): this {
    this.pkgs.set(d.name, { ref: makeDeb(this.repo, d), deps: d.deps ?? [] });
    return this;
  }

  async resolve(_log: BuildLog, packages: readonly string[]): Promise<DebRef[]> {
    const out = new Map<string, DebRef>();
    const visit = (n: string): void => {
      if (out.has(n)) return;
      const p = this.pkgs.get(n);
      if (!p) throw new Error(`E: Unable to locate package ${n}`);
      out.set(n, p.ref);
      p.deps.forEach(visit);
    };
    packages.forEach(visit);
    return [...out.values()];
  }

  async resolveExact(_log: BuildLog, packages: readonly string[]): Promise<DebRef[]> {
    return packages.map((n) => {
      const p = this.pkgs.get(n.replace(/=.*$/, ''));
      if (!p) throw new Error(`E: Unable to locate package ${n}`);
      return p.ref;
    });
  }

  async download(_log: BuildLog, refs: readonly DebRef[], dir: string): Promise<void> {
    for (const r of refs) {
      this.downloads.push(r.name);
      copyFileSync(path.join(this.repo, r.filename), path.join(dir, r.filename));
    }
  }
}
