/** How a host is smoke-tested, or why not (src/afterboot/smoke-plan.ts). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smokePlanner, type SmokePlanDeps } from '../../src/afterboot/smoke-plan.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bootd-smokeplan-'));
  await writeFile(path.join(dir, 'key'), 'PRIVATE');
  await writeFile(path.join(dir, 'own.sh'), 'echo PASS own');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const deps = (over: Partial<SmokePlanDeps> = {}): SmokePlanDeps => ({
  host: (name) => (name === 'web' ? { smoke: { user: 'admin' }, netboot: true, image: { name: 'bee' } } : name === 'disk' ? { smoke: {}, netboot: false, image: { name: 'bee' } } : name === 'off' ? { smoke: { enabled: false }, netboot: true, image: { name: 'bee' } } : name === 'own' ? { smoke: { script: 'own.sh', port: 2222 }, netboot: true, image: { name: 'bee' } } : undefined),
  defaults: { user: 'root', port: 22, timeoutSeconds: 300 },
  scriptsDir: dir,
  unknownImage: undefined,
  smokeScript: async (image) => (image.name === 'bee' ? { script: 'echo PASS bee' } : null),
  defaultKeyFile: async () => path.join(dir, 'key'),
  ...over,
});

describe('smokePlanner', () => {
  it("takes the host file's settings over the defaults and the image's script", async () => {
    const p = await smokePlanner(deps())('web');
    expect(p).toEqual({ ok: true, user: 'admin', port: 22, privateKey: Buffer.from('PRIVATE'), script: 'echo PASS bee', timeoutMs: 300_000 });
  });

  it("runs the host's own script, relative to the hosts folder", async () => {
    expect(await smokePlanner(deps())('own')).toMatchObject({ ok: true, port: 2222, script: 'echo PASS own' });
  });

  it('says why not: off in the host file, a disk boot, an unknown machine with no image, no smoke test in the image, an unreadable key', async () => {
    const plan = smokePlanner(deps());
    expect(await plan('off')).toEqual({ ok: false, reason: 'the smoke test is off for off (smoke: enabled: false)', port: 22 });
    expect(await plan('disk')).toMatchObject({ ok: false, reason: 'disk netboots no image' });
    expect(await plan('52-54-00-00-00-01')).toMatchObject({ ok: false, reason: '52-54-00-00-00-01 netboots no image' });
    expect(await smokePlanner(deps({ unknownImage: 'nosmoke' }))('52-54-00-00-00-01')).toMatchObject({ ok: false, reason: 'image nosmoke has no smoke test (recipe key smoke_test)' });
    expect(await smokePlanner(deps({ defaultKeyFile: async () => path.join(dir, 'missing') }))('web')).toMatchObject({ ok: false, reason: expect.stringMatching(/^cannot read the SSH key .*missing$/) });
  });
});
