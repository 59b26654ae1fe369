/**
 * Requests routed by "METHOD /path/:param" keys, for the control socket and
 * the admin listener alike: each pattern compiled once, a request matched
 * to its handler and its decoded parameters.
 */
export interface RouteMatch<F> {
  readonly fn: F;
  readonly params: readonly string[];
}

export type RouteMatcher<F> = (method: string, pathname: string) => RouteMatch<F> | null;

export function routeTable<F>(routes: Readonly<Record<string, F>>): RouteMatcher<F> {
  const table = Object.entries(routes).map(([k, fn]) => {
    const [method, pattern] = k.split(' ') as [string, string];
    return { method, re: new RegExp(`^${pattern.replace(/:[a-z]+/g, '([^/]+)')}$`), fn };
  });
  return (method, pathname) => {
    for (const r of table) {
      if (r.method !== method) continue;
      const m = r.re.exec(pathname);
      if (!m) continue;
      try {
        return { fn: r.fn, params: m.slice(1).map((s) => decodeURIComponent(s)) };
      } catch {
        return null; // a malformed %-escape: no such request (404), never a throw in a server's handler
      }
    }
    return null;
  };
}
