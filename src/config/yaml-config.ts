/**
 * YAML + zod validation with positions. Every problem becomes a ConfigIssue
 * that names the file, line and column, the key path, what was expected and
 * the value found, so an operator can fix a file without reading code:
 *
 *   hosts/build-01.yaml:2:6: mac: expected a MAC address like 52:54:00:12:34:56, got "52:54:00:zz"
 *
 * Pure: text in, typed value or issues out. Reading files is the caller's job.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { parseSimpleYaml } from './simple-yaml.js';

export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Dotted key path (`quirks.tftp_max_blksize`, `macs[1]`); empty for the whole file. */
  readonly path: string;
  /** What is wrong, ending with what was found where that helps. */
  readonly message: string;
}

/** `file:line:col: path: message`, the form compilers use, so editors can jump to it. */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

export type Parsed<T> = { readonly ok: true; readonly value: T; readonly doc: YamlSource } | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** A parsed document and a way back from key paths to positions in it. */
export class YamlSource {
  private parsed: { readonly doc: Document; readonly lines: LineCounter } | null;
  private readonly text: string | null;

  constructor(
    readonly file: string,
    doc: Document | null,
    lines: LineCounter | null,
    text: string | null = null,
  ) {
    this.parsed = doc && lines ? { doc, lines } : null;
    this.text = text;
  }

  /** A source parsed only when a position or a value is asked for (a valid file usually never is). */
  static lazy(file: string, text: string): YamlSource {
    return new YamlSource(file, null, null, text);
  }

  private get doc(): Document {
    return this.tree().doc;
  }

  private get lines(): LineCounter {
    return this.tree().lines;
  }

  private tree(): { readonly doc: Document; readonly lines: LineCounter } {
    if (this.parsed === null) {
      const lines = new LineCounter();
      this.parsed = { doc: parseDocument(this.text ?? '', { lineCounter: lines, prettyErrors: false, uniqueKeys: false }), lines };
    }
    return this.parsed;
  }

  /** Position of the deepest node on `path` that exists; the key itself when `atKey`. */
  position(path: readonly PropertyKey[], atKey = false): { line: number; col: number } {
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const keyStart = rangeStart(pair.key);
        node = pair.value;
        const valueStart = rangeStart(node);
        offset = atKey && seg === path[path.length - 1] ? (keyStart ?? offset) : (valueStart ?? keyStart ?? offset);
      } else if (isSeq(node)) {
        const item = typeof seg === 'number' ? node.items[seg] : undefined;
        if (item === undefined) break;
        node = item;
        offset = rangeStart(node) ?? offset;
      } else break;
    }
    return this.lines.linePos(offset);
  }

  issue(path: readonly PropertyKey[], message: string, atKey = false): ConfigIssue {
    const pos = this.position(path, atKey);
    return { file: this.file, line: pos.line, col: pos.col, path: formatPath(path), message };
  }

  /** The value at `path` as written, for "got ..." in messages; undefined when absent. */
  valueAt(path: readonly PropertyKey[]): unknown {
    return this.doc.getIn(path as unknown[]);
  }
}

function rangeStart(n: unknown): number | undefined {
  const r = (n as Node | null | undefined)?.range;
  return r ? r[0] : undefined;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? String(seg) : `.${String(seg)}`;
  return out;
}

/** How a found value is quoted in messages: JSON, shortened. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Parses YAML text and validates it with `schema`. Schema messages say what
 * was expected ("expected a MAC address like ..."); this adds where, and what
 * was found.
 */
export function parseYaml<S extends z.ZodType>(file: string, text: string, schema: S): Parsed<z.output<S>> {
  // the common simple file: no document tree unless an issue needs a position (./simple-yaml.ts)
  const simple = parseSimpleYaml(text);
  if (simple !== null) {
    const r = schema.safeParse(simple);
    if (r.success) return { ok: true, value: r.data, doc: YamlSource.lazy(file, text) };
  }
  const lines = new LineCounter();
  // uniqueKeys off: the library compares every key with every other (quadratic; a file of
  // 20,000 keys took seconds); duplicateKeys() below does it with one set per map
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: capIssues(file, doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file, line: pos.line, col: pos.col, path: '', message: `not valid YAML: ${e.message.split('\n')[0] ?? e.code}` };
      })),
    };
  }
  const dups = duplicateKeys(file, doc.contents, lines);
  if (dups.length > 0) return { ok: false, issues: capIssues(file, dups) };
  const src = new YamlSource(file, doc, lines);
  let data: unknown;
  try {
    // the library refuses documents whose aliases expand past maxAliasCount (a "billion laughs")
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: '', message: `not accepted: ${(err as Error).message}` }] };
  }
  const r = schema.safeParse(data, { reportInput: true });
  if (r.success) return { ok: true, value: r.data, doc: src };
  // positions are looked up per issue (a scan of the map): only the first MAX_ISSUES are placed
  const zi = r.error.issues;
  const placed = zi.slice(0, MAX_ISSUES * 2).flatMap((i) => zodIssue(src, i, MAX_ISSUES));
  return { ok: false, issues: capIssues(file, placed.sort((a, b) => a.line - b.line || a.col - b.col), zi.length > MAX_ISSUES * 2) };
}

/** Issues reported per file; a file with more says how many more there were. */
export const MAX_ISSUES = 20;

function capIssues(file: string, issues: ConfigIssue[], more = false): ConfigIssue[] {
  if (issues.length <= MAX_ISSUES && !more) return issues;
  const kept = issues.slice(0, MAX_ISSUES);
  const rest = issues.length - kept.length;
  return [...kept, { file, line: kept.at(-1)?.line ?? 1, col: 1, path: '', message: more ? 'and more issues not listed' : `and ${rest} more issues not listed` }];
}

/** Keys that appear twice in one map (YAML 1.2 section 3.2.1.1: keys are unique), each at its second place. */
function duplicateKeys(file: string, root: unknown, lines: LineCounter): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const walk = (node: unknown, path: PropertyKey[]): void => {
    if (out.length > MAX_ISSUES) return;
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : JSON.stringify(pair.key);
        if (seen.has(key)) {
          const pos = lines.linePos(rangeStart(pair.key) ?? 0);
          out.push({ file, line: pos.line, col: pos.col, path: formatPath([...path, key]), message: `duplicate key "${key.length > 40 ? `${key.slice(0, 37)}...` : key}"` });
          if (out.length > MAX_ISSUES) return;
        }
        seen.add(key);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    }
  };
  walk(root, []);
  return out;
}

function zodIssue(src: YamlSource, i: z.core.$ZodIssue, max: number): ConfigIssue[] {
  const path = i.path as PropertyKey[];
  if (i.code === 'unrecognized_keys') {
    // strictObject() (config/fields.ts) words it "unknown key; expected one of ..."
    const message = i.message.startsWith('unknown key') ? i.message : 'unknown key';
    const keys = (i as { keys: string[] }).keys;
    const placed = keys.slice(0, max).map((k) => src.issue([...path, k], message, true));
    if (keys.length > max) placed.push(src.issue(path, `and ${keys.length - max} more unknown keys`, true));
    return placed;
  }
  // the value as zod saw it (after transforms such as splitting kernel_args), else as written
  const found = 'input' in i && i.input !== undefined ? i.input : src.valueAt(path);
  if (found === undefined && i.code === 'invalid_type') {
    // a required key is missing: point at the map that should hold it
    return [src.issue(path, `missing; ${i.message}`, true)];
  }
  return [src.issue(path, `${i.message}, got ${describeValue(found)}`)];
}
