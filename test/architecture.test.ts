/**
 * The direction of imports (docs/architecture.md, "Folders and the direction
 * of imports"): every relative import in src/ goes to a folder on a lower
 * floor, or stays in its own folder. A folder that imports one above it, or
 * two folders that import each other, fail here with the file and the import.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../src');

/** The floor of each folder (or top-level file) under src/. */
const FLOORS: Readonly<Record<string, number>> = {
  cli: 9,
  'app.ts': 8,
  serve: 7,
  lab: 7,
  state: 6,
  admin: 6,
  machines: 5,
  bootconfig: 5,
  images: 4,
  uploads: 4,
  dhcp: 3,
  tftp: 3,
  http: 3,
  hosts: 3,
  afterboot: 2,
  config: 2,
  'log-limit.ts': 2,
  events: 1,
  stats: 1,
  files: 1,
  control: 1,
  net: 1,
  'log.ts': 1,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

const unit = (file: string): string => path.relative(SRC, file).split(path.sep)[0] as string;

describe('the structure of src/', () => {
  const files = sources(SRC);

  it('names every folder and top-level file on a floor', () => {
    expect([...new Set(files.map(unit))].filter((u) => FLOORS[u] === undefined)).toEqual([]);
  });

  it('imports only downwards, never a folder on its own floor or above', () => {
    const wrong: string[] = [];
    let imports = 0;
    for (const f of files) {
      const from = unit(f);
      for (const m of readFileSync(f, 'utf8').matchAll(/^(?:import|export)[^'";]*?from\s+'(\.{1,2}\/[^']+)'/gm)) {
        const target = path.resolve(path.dirname(f), (m[1] as string).replace(/\.js$/, '.ts'));
        const to = unit(target);
        imports++;
        if (to === from) continue;
        if ((FLOORS[to] ?? 99) >= (FLOORS[from] ?? 0)) wrong.push(`${path.relative(SRC, f)} imports ${m[1]} (${from}, floor ${FLOORS[from]}, -> ${to}, floor ${FLOORS[to]})`);
      }
    }
    expect(imports).toBeGreaterThan(200); // the pattern found the imports
    expect(wrong).toEqual([]);
  });
});
