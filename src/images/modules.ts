/**
 * Choosing kernel modules for an initrd. Pure: modules.dep text in, module
 * paths out.
 *
 * modules.dep (depmod(8), modules.dep(5)) has one line per module,
 * `kernel/a/b.ko: kernel/c/d.ko kernel/e.ko`, paths relative to
 * /lib/modules/<kver>/. Newer kernels compress modules (`.ko.xz`, `.ko.zst`,
 * `.ko.gz`; Debian trixie ships .ko.xz, bookworm plain .ko), so patterns
 * name a module without its suffix and match any of them. depmod runs again
 * on the initrd's tree at build time (seed 004: ship prebuilt modules.*.bin
 * so the booted system needs no depmod) and modprobe then resolves aliases.
 */

export const MODULE_SUFFIX_RE = /\.ko(\.(xz|zst|gz))?$/;

export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const mod = line.slice(0, i).trim();
    if (!MODULE_SUFFIX_RE.test(mod)) continue;
    deps.set(mod, line.slice(i + 1).trim().split(/\s+/).filter((d) => d !== ''));
  }
  return deps;
}

/** A pattern (`drivers/net/virtio_net`, `drivers/ata/*`, `drivers/net/**`) as a test on a path under kernel/. */
export function modulePatternMatcher(pattern: string): (modulePath: string) => boolean {
  const p = pattern.replace(/^\/+|\/+$/g, '').replace(MODULE_SUFFIX_RE, '');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '*' && p[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\-]/g, '\\$&');
  }
  const rx = new RegExp(`^kernel/${re}\\.ko(\\.(xz|zst|gz))?$`);
  return (m) => rx.test(m);
}

export interface ModuleSelection {
  /** Module paths relative to /lib/modules/<kver>/, dependencies included, sorted. */
  readonly modules: readonly string[];
  /** Patterns that matched nothing in this kernel (a flavour without that driver). */
  readonly unmatched: readonly string[];
}

export function selectModules(deps: ReadonlyMap<string, readonly string[]>, patterns: readonly string[]): ModuleSelection {
  const chosen = new Set<string>();
  const unmatched: string[] = [];
  const add = (m: string): void => {
    if (chosen.has(m)) return;
    chosen.add(m);
    for (const d of deps.get(m) ?? []) add(d);
  };
  for (const pat of patterns) {
    const match = modulePatternMatcher(pat);
    let n = 0;
    for (const m of deps.keys()) {
      if (match(m)) {
        add(m);
        n++;
      }
    }
    if (n === 0) unmatched.push(pat);
  }
  return { modules: [...chosen].sort(), unmatched };
}
