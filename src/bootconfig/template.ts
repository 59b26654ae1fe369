/**
 * A deliberately small template language for boot configs (boot/templates/):
 *
 *   {{key}}                       a string value; missing or non-string is an error
 *   {{#key}}...{{/key}}           the block when key is true or a non-empty string
 *   {{^key}}...{{/key}}           the block when key is false, absent or ''
 *   {{#each key}}...{{/each}}     the block once per item; {{.field}} inside
 *
 * Every substituted value is checked: boot loaders read these files line by
 * line, so a value with a newline or other control character would inject a
 * line. That is a bug upstream (the loader rejects such input), so it throws.
 */
export type ViewValue = string | boolean | undefined | readonly Readonly<Record<string, string>>[];
export type View = Readonly<Record<string, ViewValue>>;

export class TemplateError extends Error {
  readonly code = 'ERR_TEMPLATE';
}

const EACH = /\{\{#each (\w+)\}\}\n?([\s\S]*?)\{\{\/each\}\}\n?/g;
const SECTION = /\{\{([#^])(\w+)\}\}\n?([\s\S]*?)\{\{\/\2\}\}\n?/g;
const VAR = /\{\{(\.?\w+)\}\}/g;

export function render(template: string, view: View, name = 'template'): string {
  let out = template.replace(EACH, (_m, key: string, body: string) => {
    const items = view[key];
    if (!Array.isArray(items)) throw new TemplateError(`${name}: {{#each ${key}}} needs a list`);
    return (items as readonly Record<string, string>[]).map((item) => body.replace(/\{\{\.(\w+)\}\}/g, (_x, f: string) => checked(item[f], `${key}[].${f}`, name))).join('');
  });
  out = out.replace(SECTION, (_m, kind: string, key: string, body: string) => {
    const v = view[key];
    const on = v === true || (typeof v === 'string' && v !== '');
    return (kind === '#') === on ? body : '';
  });
  out = out.replace(VAR, (_m, key: string) => checked(view[key], key, name));
  return out;
}

function checked(v: unknown, key: string, name: string): string {
  if (typeof v !== 'string') throw new TemplateError(`${name}: no value for {{${key}}}`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(v)) throw new TemplateError(`${name}: value of {{${key}}} contains a control character: ${JSON.stringify(v)}`);
  return v;
}
