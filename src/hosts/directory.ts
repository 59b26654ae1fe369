/**
 * The set of hosts bootd serves, assembled from per-file parse results with
 * the checks that span files: duplicate MACs and IPs, and images that do not
 * exist. A file that fails keeps its last good version serving (hot reload);
 * one bad file never takes the others down.
 */
import { createHash } from 'node:crypto';
import type { ConfigIssue } from '../config/yaml-config.js';
import type { HostFileResult } from './schema.js';
import { LayeredMap } from './layered-map.js';
import { formatImageRef, type Host } from './types.js';

/** What the host checks need to know about images (the catalog implements it). */
export interface ImageIndex {
  /** Is there a recipe or any built version of this image? */
  knows(name: string): boolean;
  hasVersion(name: string, version: string): boolean;
  /** The kernel of name@version (current when none) carries a Secure Boot signature; null: not known yet (not built). */
  kernelSigned?(name: string, version?: string): boolean | null;
}

/** A host as served, without where its file lies, as JSON; a Host is immutable and kept across reloads, so each is written once. */
const servedJsonOf = new WeakMap<Host, string>();
function servedJson(host: Host): string {
  let j = servedJsonOf.get(host);
  if (j === undefined) {
    const { file: _file, ...served } = host;
    j = JSON.stringify(served);
    servedJsonOf.set(host, j);
  }
  return j;
}

/** What a HostSet looks hosts up in: a Map, or a LayeredMap after a watcher's pass. */
interface Lookup {
  get(key: string): Host | undefined;
}

/** An immutable snapshot of the hosts; swapped whole on reload. */
export class HostSet {
  private readonly byMacMap: Lookup;
  private readonly byNameMap: Lookup;
  private readonly byIpMap: Lookup;

  constructor(
    readonly hosts: readonly Host[],
    /** The indexes, when the caller built them already (assemble's claims: the same maps, not built twice). */
    maps?: { readonly mac: Lookup; readonly name: Lookup; readonly ip: Lookup },
  ) {
    if (maps) {
      this.byMacMap = maps.mac;
      this.byNameMap = maps.name;
      this.byIpMap = maps.ip;
      return;
    }
    const mac = new Map<string, Host>();
    const name = new Map<string, Host>();
    const ip = new Map<string, Host>();
    for (const h of hosts) {
      name.set(h.name, h);
      for (const m of h.macs) mac.set(m, h);
      if (h.ip !== undefined) ip.set(h.ip, h);
    }
    this.byMacMap = mac;
    this.byNameMap = name;
    this.byIpMap = ip;
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
        h.update(servedJson(host));
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
  /** Who holds each MAC, IP and name, and each file's outcome: what `reassemble` starts from. */
  readonly claims?: KeptClaims;
}

/** What deciding needs of an index: a Map while assembling in full, a LayeredMap in a watcher's pass. */
interface Index<V> {
  get(k: string): V | undefined;
  set(k: string, v: V): unknown;
  delete(k: string): unknown;
}

interface Claims<M extends Index<Host> = Index<Host>, O extends Index<FileOutcome> = Index<FileOutcome>> {
  readonly mac: M;
  readonly ip: M;
  readonly name: M;
  readonly outcomes: O;
  /** Files whose outcome has an issue (no host, or a stale one): they decide again at every pass. */
  readonly troubled: Set<string>;
}

/** Kept in an Assembly: layered, so a watcher's pass derives the next version from it cheaply. */
type KeptClaims = Claims<LayeredMap<string, Host>, LayeredMap<string, FileOutcome>>;

/** Every file's result in name order: a Map, or the loader's view of its cache. */
export interface HostFileResults {
  get(file: string): HostFileResult | undefined;
  has(file: string): boolean;
  keys(): IterableIterator<string>;
}

export function assemble(results: HostFileResults, previous: ReadonlyMap<string, Host>, images?: ImageIndex): Assembly {
  // the loader hands them over in name order; anything else is sorted here
  let files = [...results.keys()];
  for (let i = 1; i < files.length; i++) {
    if ((files[i - 1] as string) > (files[i] as string)) {
      files = files.sort();
      break;
    }
  }
  // a file not read again hands back the very Host it served (the loader's cache): no need to compare text
  const unchanged = (f: string): boolean => {
    const r = results.get(f);
    const p = previous.get(f);
    return r?.ok === true && p !== undefined && (r.host === p || JSON.stringify(r.host) === JSON.stringify(p));
  };
  const same = files.map(unchanged);
  const order = [...files.filter((_, i) => same[i]), ...files.filter((_, i) => !same[i])];
  const claims: Claims<Map<string, Host>, Map<string, FileOutcome>> = { mac: new Map(), ip: new Map(), name: new Map(), outcomes: new Map(), troubled: new Set() };
  for (const file of order) decide(claims, file, results.get(file) as HostFileResult, previous.get(file), images);
  // flat maps as the base of the layers a watcher's pass adds
  return finish({ mac: LayeredMap.of(claims.mac), ip: LayeredMap.of(claims.ip), name: LayeredMap.of(claims.name), outcomes: LayeredMap.of(claims.outcomes), troubled: claims.troubled }, files);
}

/**
 * The same result as `assemble` after only `changed` files (paths) were read
 * again, from the previous assembly: the files that served without an issue
 * keep their claims (in `assemble` unchanged files claim first); the
 * changed files and those that had an issue (one that a changed file may
 * have settled) decide again, together in name order. One edited file among 100,000
 * then costs a few map operations, not a pass over every host. Null when
 * there is nothing to start from (the caller assembles in full).
 */
export function reassemble(prev: Assembly, results: HostFileResults, changed: ReadonlySet<string>, images?: ImageIndex): Assembly | null {
  const old = prev.claims;
  if (!old) return null;
  const claims: KeptClaims = { mac: old.mac.derive(), ip: old.ip.derive(), name: old.name.derive(), outcomes: old.outcomes.derive(), troubled: new Set(old.troubled) };
  const unclaim = (h: Host): void => {
    for (const m of h.macs) if (claims.mac.get(m) === h) claims.mac.delete(m);
    if (h.ip !== undefined && claims.ip.get(h.ip) === h) claims.ip.delete(h.ip);
    if (claims.name.get(h.name) === h) claims.name.delete(h.name);
  };
  const retry: string[] = [];
  for (const f of old.troubled) if (!changed.has(f) && results.has(f)) retry.push(f);
  // in assemble's terms all of these are "changed" (a file with an issue has no last good host equal to
  // its text), so they decide together in name order, after the files that keep their claims
  const again = [...new Set([...retry, ...[...changed].filter((f) => results.has(f))])].sort();
  const lastGood = new Map<string, Host>();
  let sameFiles = true;
  for (const f of [...changed, ...retry]) {
    const o = claims.outcomes.get(f);
    if (o === undefined) sameFiles = false; // a new file
    else if (o.host) {
      unclaim(o.host);
      lastGood.set(f, o.host);
    }
    claims.outcomes.delete(f);
    claims.troubled.delete(f);
    if (!results.has(f)) sameFiles = false; // a removed file
  }
  for (const f of again) decide(claims, f, results.get(f) as HostFileResult, lastGood.get(f), images);
  return finish(claims, sameFiles ? prev.files.map((o) => o.file) : [...results.keys()]);
}

/** One file's outcome: its new version if it conflicts with nothing claimed so far, else its last good version if that does not, else none. */
function decide(claims: Claims, file: string, r: HostFileResult, prev: Host | undefined, images: ImageIndex | undefined): void {
  const issues: ConfigIssue[] = r.ok ? [] : [...r.issues];
  let host: Host | null = null;
  if (r.ok) {
    const c = conflicts(claims, r.host, r.singleMac);
    const img = imageProblem(images, r.host);
    if (c.length === 0 && img === null) host = r.host;
    else {
      for (const x of c) issues.push(r.source.issue(x.path, x.message));
      if (img !== null) issues.push(r.source.issue(['image'], img));
    }
  }
  let stale = false;
  if (host === null && prev !== undefined && conflicts(claims, prev, false).length === 0 && imageProblem(images, prev) === null) {
    host = prev; // the last good version keeps serving
    stale = true;
  }
  if (host) {
    for (const m of host.macs) claims.mac.set(m, host);
    if (host.ip !== undefined) claims.ip.set(host.ip, host);
    claims.name.set(host.name, host);
  }
  claims.outcomes.set(file, { file, host, stale, issues });
  if (host === null || stale || issues.length > 0) claims.troubled.add(file);
}

/** Each conflict with the key path it concerns, so the message can point at the line. */
function conflicts(claims: Claims, h: Host, single: boolean): { path: PropertyKey[]; message: string }[] {
  const out: { path: PropertyKey[]; message: string }[] = [];
  h.macs.forEach((m, i) => {
    const o = claims.mac.get(m);
    if (o) out.push({ path: single ? ['mac'] : ['macs', i], message: `duplicate MAC ${m}: also in ${o.file}` });
  });
  if (h.ip !== undefined) {
    const o = claims.ip.get(h.ip);
    if (o) out.push({ path: ['ip'], message: `duplicate IP ${h.ip}: also in ${o.file}` });
  }
  const o = claims.name.get(h.name);
  if (o) out.push({ path: [], message: `duplicate host name ${h.name}: also in ${o.file}` });
  return out;
}

function imageProblem(images: ImageIndex | undefined, h: Host): string | null {
  if (!images || !h.netboot) return null;
  const { name, version } = h.image;
  if (version !== undefined && !images.hasVersion(name, version)) return `image ${formatImageRef(h.image)} does not exist${images.knows(name) ? ` (image ${name} has no version ${version})` : ''}`;
  if (version === undefined && !images.knows(name)) return `image ${name} does not exist (no recipe and no built version)`;
  // shim verifies the kernel GRUB hands it (shim_lock): an unsigned one stops the boot there
  if (h.secureBoot === true && images.kernelSigned?.(name, version) === false) {
    return `image ${version !== undefined ? formatImageRef(h.image) : `${name} (current version)`} has an unsigned kernel, and this host boots under Secure Boot (secure_boot: true), where shim refuses it; build the image with a signed kernel (Debian's linux-image-* packages, not -unsigned)`;
  }
  return null;
}

function finish(claims: KeptClaims, files: readonly string[]): Assembly {
  const ordered = files.map((f) => claims.outcomes.get(f) as FileOutcome);
  const hosts: Host[] = [];
  let issues: ConfigIssue[] = [];
  for (const o of ordered) {
    if (o.host) hosts.push(o.host);
    if (o.issues.length > 0) issues = issues.concat(o.issues);
  }
  return { set: new HostSet(hosts, claims), files: ordered, issues, claims };
}
