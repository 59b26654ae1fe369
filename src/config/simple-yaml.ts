/**
 * A fast path for the YAML that host files are in practice: `key: value`
 * lines, one level of nested `key:` maps indented by spaces, flow lists
 * `[a, b]` of plain scalars, comments. It gives the value the full parser
 * (yaml, YAML 1.2 core schema) would give, or null for anything it does
 * not understand with certainty (quotes, block lists, anchors, tags,
 * multi-line scalars, floats, hex or octal numbers, duplicate keys, tabs,
 * documents markers...), and the caller then runs the full parser, which
 * also places every issue. Loading 100,000 host files is then mostly
 * reading them (docs/performance.md, session 16): the full parser costs
 * ~100 us a file, this ~3 us.
 *
 * Pure: text in, value or null out.
 */

/** A key the fast path takes: what the schemas use (lower-case, digits, _). */
const KEY = /^([a-z_][a-z0-9_]*):(?: +(.*))?$/;
/** Characters a plain scalar may hold here; its first may not be an indicator (YAML 1.2 section 7.3.3). */
const PLAIN = /^[A-Za-z0-9._/+=-][A-Za-z0-9._:/@+=-]*$/;
const INT = /^[-+]?[0-9]+$/;
/** Core-schema floats, .inf/.nan, 0o/0x integers: left to the full parser. */
const OTHER_NUMBER = /^[-+]?(\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+)$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$|^0[ox]/;
const BOOL: Readonly<Record<string, boolean>> = { true: true, True: true, TRUE: true, false: false, False: false, FALSE: false };
const NULLS = new Set(['null', 'Null', 'NULL', '~']);

/** A plain scalar as the core schema resolves it; undefined when the fast path will not decide. */
function scalar(s: string): unknown {
  // a ':' ending a scalar makes a mapping (also in a flow list): for the full parser to read
  if (s.endsWith(':')) return undefined;
  if (!PLAIN.test(s) || s.startsWith('-') && s.length > 1 && !INT.test(s)) {
    return NULLS.has(s) ? null : undefined;
  }
  if (s in BOOL) return BOOL[s];
  if (NULLS.has(s)) return null;
  if (INT.test(s)) {
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  if (OTHER_NUMBER.test(s)) return undefined;
  // "- x" and "? x" are indicators; a lone "-" is a plain string in YAML, but not one a host file needs
  if (s === '-') return undefined;
  return s;
}

/** The value after `key: `: a scalar, a flow list of scalars, or undefined. */
function value(raw: string): unknown {
  let v = raw;
  // a comment needs a space before its '#'; a '#' inside a scalar is not one and is left to the full parser
  const hash = v.indexOf('#');
  if (hash >= 0) {
    if (hash === 0 || v[hash - 1] !== ' ') return undefined;
    v = v.slice(0, hash);
  }
  v = v.trimEnd();
  if (v.startsWith('[')) {
    if (!v.endsWith(']')) return undefined;
    const inner = v.slice(1, -1).trim();
    if (inner === '') return [];
    const items = inner.split(',').map((x) => x.trim());
    const out: unknown[] = [];
    for (const it of items) {
      const s = scalar(it);
      if (s === undefined || it === '') return undefined;
      out.push(s);
    }
    return out;
  }
  return scalar(v);
}

/**
 * The document's value, or null when the full parser must decide. An empty
 * document is null too (the full parser's answer, an empty map, is the
 * caller's business).
 */
export function parseSimpleYaml(text: string): Record<string, unknown> | null {
  if (text.length === 0 || text.charCodeAt(0) === 0xfeff || text.includes('\t') || text.includes('\r')) return null;
  const root: Record<string, unknown> = {};
  let nested: Record<string, unknown> | null = null;
  let indent = 0;
  let any = false;
  for (const line of text.split('\n')) {
    const trimmed = line.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const lead = line.length - trimmed.length;
    if (lead > 0) {
      // a line of the map opened by the last `key:` with nothing after it, all at one indentation
      if (nested === null || (indent !== 0 && lead !== indent)) return null;
      indent = lead;
    } else {
      if (nested !== null && indent === 0) return null; // `key:` with nothing under it: null, or a block list; full parser
      nested = null;
      indent = 0;
    }
    const m = KEY.exec(trimmed);
    if (!m) return null;
    const key = m[1] as string;
    const target = lead > 0 ? (nested as Record<string, unknown>) : root;
    if (Object.hasOwn(target, key)) return null; // the full parser reports the duplicate
    const raw = m[2];
    if (raw === undefined || raw.trim() === '' || raw.trimStart().startsWith('#')) {
      if (lead > 0) return null; // two levels: full parser
      nested = {};
      indent = 0;
      target[key] = nested;
      any = true;
      continue;
    }
    const v = value(raw);
    if (v === undefined) return null;
    target[key] = v;
    any = true;
  }
  if (nested !== null && indent === 0) return null;
  return any ? root : null;
}
