/**
 * The shipped systemd unit (packaging/bootd.service): `systemd-analyze
 * verify` accepts it with no warning at all, and it says what
 * docs/operations.md promises (bootd serve --config, restart on failure, an
 * unprivileged user with only the capabilities bootd needs).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const UNIT = path.resolve(__dirname, '../../packaging/bootd.service');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function verify(file: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run('systemd-analyze', ['verify', file], { cwd: dir });
    return { code: 0, out: `${r.stdout}${r.stderr}` };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('systemd-analyze is not installed (scripts/setup.sh installs systemd)');
    return { code: Number(e.code ?? 1), out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('packaging/bootd.service', () => {
  it('passes systemd-analyze verify without a single warning', async () => {
    const copy = path.join(dir, 'bootd.service');
    await copyFile(UNIT, copy);
    const r = await verify(copy);
    expect(r.out.trim()).toBe('');
    expect(r.code).toBe(0);
  });

  it('is checked for real: a unit with an unknown key or a missing program is refused', async () => {
    const bad = path.join(dir, 'bad.service');
    await writeFile(bad, (await readFile(UNIT, 'utf8')).replace('Restart=on-failure', 'Restart=on-failure\nRestartOnBlueMoon=yes'));
    expect((await verify(bad)).out).toMatch(/Unknown key 'RestartOnBlueMoon'/);
    await writeFile(bad, (await readFile(UNIT, 'utf8')).replace('/usr/bin/node', '/usr/bin/no-such-node'));
    expect((await verify(bad)).code).not.toBe(0);
  });

  it('runs bootd serve --config as an unprivileged user with two capabilities, restarted on failure, logging to the journal', async () => {
    const text = await readFile(UNIT, 'utf8');
    const key = (k: string): string[] => [...text.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((m) => m[1] as string);
    expect(key('ExecStart')).toEqual(['/usr/bin/node /opt/bootd/bin/bootd serve --config /etc/bootd/bootd.yaml --log-format json']);
    expect(key('Restart')).toEqual(['on-failure']);
    expect(key('User')).toEqual(['bootd']);
    expect(key('AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE CAP_NET_ADMIN']);
    expect(key('CapabilityBoundingSet')).toEqual(key('AmbientCapabilities'));
    expect(key('StateDirectory')).toEqual(['bootd']);
    expect(key('StandardError')).toEqual(['journal']);
  });
});
