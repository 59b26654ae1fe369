/**
 * The set of hosts bootd serves, assembled from per-file parse results with
 * the checks that span files: duplicate MACs and IPs, and images that do not
 * exist. A file that fails keeps its last good version serving (hot reload);
 * one bad file never takes the others down.
 */
import { createHash } from 'node:crypto';
import type { ConfigIssue } from '../config/yaml-config.js';
import type { HostFileResult } from './schema.js';
import { formatImageRef, type Host } from './types.js';

/** What the host checks need to know about images (the catalog implements it). */
export interface ImageIndex {
  /** Is there a recipe or any built version of this image? */
  knows(name: string): boolean;
  hasVersion(name: string, version: string): boolean;
}

/** An immutable snapshot of the hosts; swapped whole on reload. */
export class HostSet {
  private readonly byMacMap = new Map<string, Host>();
  private readonly byNameMap = new Map<string, Host>();
  private readonly byIpMap = new Map<string, Host>();

  constructor(readonly hosts: readonly Host[]) {
    for (const h of hosts) {
      this.byNameMap.set(h.name, h);
      for (const m of h.macs) this.byMacMap.set(m, h);
      if (h.ip !== undefined) this.byIpMap.set(h.ip, h);
    }
  }

  static readonly empty = new HostSet([]);

  byMac(mac: string): Host | undefined {
    return this.byMacMap.get(mac.toLowerCase());
  }

  byName(name: string): Host | undefined {
    return this.byNameMap.get(name);
  }

  byIp(ip: string): Host | undefined {
    return this.byIpMap.get(ip);
  }

  /** Fixed addresses for the lease table: MAC to dotted IPv4. */
  reservations(): Map<string, string> {
    const out = new Map<string, string>();
    for (const h of this.hosts) if (h.ip !== undefined) for (const m of h.macs) out.set(m, h.ip);
    return out;
  }

  get size(): number {
    return this.hosts.length;
  }

  private digestMemo: string | undefined;

  /**
   * sha256 over what is served for every host, in name order, without where
   * the files lie: two instances reading equal checkouts of hosts/ agree, and
   * any difference in what a host gets shows (instances publish it; the
   * dashboard and `bootd status` warn when they differ).
   */
  digest(): string {
    if (this.digestMemo === undefined) {
      const h = createHash('sha256');
      for (const host of [...this.hosts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        const { file: _file, ...served } = host;
        h.update(JSON.stringify(served));
        h.update('\n');
      }
      this.digestMemo = h.digest('hex');
    }
    return this.digestMemo;
  }
}

export interface FileOutcome {
  readonly file: string;
  /** The host now served from this file: the new version, the last good one, or none. */
  readonly host: Host | null;
  /** True when `host` is a previous version because the current text failed. */
  readonly stale: boolean;
  readonly issues: readonly ConfigIssue[];
}

export interface Assembly {
  readonly set: HostSet;
  readonly files: readonly FileOutcome[];
  readonly issues: readonly ConfigIssue[];
}

/**
 * Combines per-file results. `previous` maps file to the host it served
 * before (its last good version). Files whose text is unchanged claim MACs
 * and IPs first, so an edit that collides with another file is the one
 * rejected; at first load, files claim in name order.
 */
export function assemble(results: ReadonlyMap<string, HostFileResult>, previous: ReadonlyMap<string, Host>, images?: ImageIndex): Assembly {
  const files = [...results.keys()].sort();
  const unchanged = (f: string): boolean => {
    const r = results.get(f);
    const p = previous.get(f);
    return r?.ok === true && p !== undefined && JSON.stringify(r.host) === JSON.stringify(p);
  };
  const order = [...files.filter(unchanged), ...files.filter((f) => !unchanged(f))];
  const macOwner = new Map<string, Host>();
  const ipOwner = new Map<string, Host>();
  const nameOwner = new Map<string, Host>();
  const outcomes = new Map<string, FileOutcome>();

  /** Each conflict with the key path it concerns, so the message can point at the line. */
  const conflicts = (h: Host, single: boolean): { path: PropertyKey[]; message: string }[] => {
    const out: { path: PropertyKey[]; message: string }[] = [];
    h.macs.forEach((m, i) => {
      const o = macOwner.get(m);
      if (o) out.push({ path: single ? ['mac'] : ['macs', i], message: `duplicate MAC ${m}: also in ${o.file}` });
    });
    if (h.ip !== undefined) {
      const o = ipOwner.get(h.ip);
      if (o) out.push({ path: ['ip'], message: `duplicate IP ${h.ip}: also in ${o.file}` });
    }
    const o = nameOwner.get(h.name);
    if (o) out.push({ path: [], message: `duplicate host name ${h.name}: also in ${o.file}` });
    return out;
  };
  const imageProblem = (h: Host): string | null => {
    if (!images || !h.netboot) return null;
    const { name, version } = h.image;
    if (version !== undefined) return images.hasVersion(name, version) ? null : `image ${formatImageRef(h.image)} does not exist${images.knows(name) ? ` (image ${name} has no version ${version})` : ''}`;
    return images.knows(name) ? null : `image ${name} does not exist (no recipe and no built version)`;
  };
  const claim = (h: Host): void => {
    for (const m of h.macs) macOwner.set(m, h);
    if (h.ip !== undefined) ipOwner.set(h.ip, h);
    nameOwner.set(h.name, h);
  };

  for (const file of order) {
    const r = results.get(file) as HostFileResult;
    const prev = previous.get(file);
    const issues: ConfigIssue[] = r.ok ? [] : [...r.issues];
    let host: Host | null = null;
    if (r.ok) {
      const single = r.source.valueAt(['mac']) !== undefined;
      const c = conflicts(r.host, single);
      const img = imageProblem(r.host);
      if (c.length === 0 && img === null) host = r.host;
      else {
        for (const x of c) issues.push(r.source.issue(x.path, x.message));
        if (img !== null) issues.push(r.source.issue(['image'], img));
      }
    }
    let stale = false;
    if (host === null && prev !== undefined && conflicts(prev, false).length === 0 && imageProblem(prev) === null) {
      host = prev; // the last good version keeps serving
      stale = true;
    }
    if (host) claim(host);
    outcomes.set(file, { file, host, stale, issues });
  }
  const ordered = files.map((f) => outcomes.get(f) as FileOutcome);
  return {
    set: new HostSet(ordered.flatMap((o) => (o.host ? [o.host] : []))),
    files: ordered,
    issues: ordered.flatMap((o) => o.issues),
  };
}

