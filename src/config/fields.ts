/**
 * zod field types shared by hosts/*.yaml and the appliance config. Each
 * message says what was expected; the YAML layer adds where and what was found.
 */
import { z } from 'zod';
import { parseIpv4 } from '../net/ipv4.js';

/** A strict object whose unknown keys are reported with the list of known ones. */
export function strictObject<S extends z.ZodRawShape>(shape: S) {
  const keys = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown key; expected one of ${keys}` : `expected a mapping with keys ${keys}`),
  });
}

const MAC_RE = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;
export const macField = z
  .string({ error: 'expected a MAC address like 52:54:00:12:34:56' })
  .regex(MAC_RE, { error: 'expected a MAC address like 52:54:00:12:34:56' })
  .refine((s) => (parseInt(s.slice(0, 2), 16) & 1) === 0, { error: 'expected a unicast MAC address (first octet even)' })
  .transform((s) => s.toLowerCase().replace(/-/g, ':'));

export const ipv4Field = z
  .string({ error: 'expected an IPv4 address like 198.18.0.20' })
  .refine((s) => parseIpv4(s) !== null, { error: 'expected an IPv4 address like 198.18.0.20' });

/** RFC 1123 host name, lower case. */
export const hostnameField = z
  .string({ error: 'expected a host name like build-01' })
  .regex(/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, {
    error: 'expected a host name like build-01 (lower-case letters, digits, dashes; dots between labels)',
  });

/**
 * One word of a kernel command line or boot-loader line. Configs are line
 * oriented and iPXE expands `${...}`, so a newline, quote, backslash or `$`
 * could inject a line or change the command: rejected at load, not escaped.
 */
export const WORD_RE = /^[\x21-\x7e]+$/;
const FORBIDDEN_RE = /["'`\\$]/;
export const wordField = z
  .string({ error: 'expected text' })
  .refine((s) => WORD_RE.test(s) && !FORBIDDEN_RE.test(s), {
    error: 'expected one word of printable ASCII without spaces, quotes, backslashes or $',
  });

/** Kernel arguments as one string ("console=ttyS0 quiet") or a list of words. */
export const kernelArgsField = z
  .union([z.string(), z.array(z.string())], { error: 'expected kernel arguments as a string or a list of strings' })
  .transform((v) => (Array.isArray(v) ? v : v.split(' ').filter((w) => w !== '')))
  .pipe(z.array(wordField));

export function intField(min: number, max: number, what: string) {
  const msg = `expected ${what}: an integer from ${min} to ${max}`;
  return z.number({ error: msg }).int({ error: msg }).min(min, { error: msg }).max(max, { error: msg });
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
/** A byte size: a number, or `200M`, `1G`, `512K`. */
export const sizeField = z
  .union([z.number(), z.string()], { error: 'expected a size like 200M, 1G or a number of bytes' })
  .transform((v, ctx) => {
    const m = /^(\d+)\s*([KMG]?)i?B?$/i.exec(String(v));
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'expected a size like 200M, 1G or a number of bytes' });
      return z.NEVER;
    }
    return Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toUpperCase()] ?? 1);
  });
