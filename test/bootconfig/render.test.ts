/**
 * Golden tests of every rendered file kind (test/golden/bootconfig/; rewrite
 * them with UPDATE_GOLDEN=1 after a deliberate change and review the diff).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BootFiles } from '../../src/bootconfig/files.js';
import { BootTemplates, grubWord, targetFor, type BootPolicy } from '../../src/bootconfig/render.js';
import { render, TemplateError } from '../../src/bootconfig/template.js';
import { HostSet } from '../../src/hosts/directory.js';
import { parseHostFile } from '../../src/hosts/schema.js';
import type { Host, Mac } from '../../src/hosts/types.js';
import { ImageCatalog } from '../../src/images/catalog.js';
import { addRecipe, addVersion } from '../helpers/catalog.js';
import { REPO } from '../helpers/bootd.js';
import { makeWorkDir } from '../helpers/workdir.js';

const GOLDEN = path.join(REPO, 'test/golden/bootconfig');

async function golden(name: string, actual: string): Promise<void> {
  const file = path.join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI === 'true' && !existsSync(file)) throw new Error(`golden file ${name} is missing; run the tests with UPDATE_GOLDEN=1 and commit it`);
    await mkdir(GOLDEN, { recursive: true });
    await writeFile(file, actual);
  }
  expect(actual).toBe(await readFile(file, 'utf8'));
}

function host(name: string, text: string): Host {
  const r = parseHostFile(`hosts/${name}.yaml`, name, text);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.host;
}

const BEE = host('bee-01', 'mac: 52:54:00:aa:00:01\nimage: bee\nkernel_args: quiet\nparams: { collectors: all }\n');
const BUILD = host('build-01', 'mac: 52:54:00:bb:00:01\nip: 198.18.0.20\nimage: buildos@2026.11.20-1\nparams: { toolchain_url: "https://stage.build2.org/0/toolchain.sha256" }\nbuild: true\n');
const OFF = host('old-01', 'mac: 52:54:00:cc:00:01\nnetboot: false\n');
const MISSING = host('new-01', 'mac: 52:54:00:dd:00:01\nimage: buildos\n');

describe('rendered boot configs', () => {
  let dir: string;
  let catalog: ImageCatalog;
  const templates = BootTemplates.load();
  const policy: BootPolicy = { serverIp: '198.18.0.1', kernelArgs: ['console=ttyS0,115200'], reportTftpPort: 6970, unknownImage: { name: 'bee' } };
  const mac = (h: Host): Mac => h.macs[0] as Mac;

  beforeAll(async () => {
    dir = await makeWorkDir('render');
    catalog = new ImageCatalog(dir);
    await addVersion(dir, { name: 'bee', version: '2026.11.22-1', files: { vmlinuz: 'k', 'initrd.img': 'i', 'overlay.img': 'o' }, cmdline: ['modules=loop,squashfs'], current: true });
    await addRecipe(dir, 'buildos');
    await addVersion(dir, { name: 'buildos', version: '2026.11.20-1' });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('pxelinux.cfg/01-<mac> for a bee host: both initrds, image and host arguments, report upload', async () => {
    await golden('pxelinux-bee-host.cfg', templates.pxelinux(await targetFor(mac(BEE), BEE, policy, catalog)));
  });

  it('pxelinux.cfg/01-<mac> for a buildos host pinned to a version, with buildos.* parameters', async () => {
    await golden('pxelinux-buildos-host.cfg', templates.pxelinux(await targetFor(mac(BUILD), BUILD, policy, catalog)));
  });

  it('a host whose image is on its way from the image origin waits and asks again: PXELINUX and iPXE', async () => {
    const onItsWay = { resolve: async () => ({ ok: false as const, reason: 'image buildos is not here yet, it is being fetched from the image origin http://198.18.0.2:8080/images', wait: true }) };
    const t = await targetFor(mac(MISSING), MISSING, policy, onItsWay);
    expect(t.kind).toBe('wait');
    await golden('pxelinux-wait.cfg', templates.pxelinux(t));
    await golden('ipxe-wait.ipxe', templates.ipxe(t));
  });

  it('an image with files of its own beyond kernel and initrds gets bootd.image=, the URL of its version; others do not', async () => {
    await addVersion(dir, { name: 'gpu', version: '2026.12.02-1', files: { vmlinuz: 'k', 'initrd.img': 'i' }, payloads: { 'nvidia.img': 'n' }, current: true });
    await addVersion(dir, { name: 'plain', version: '2026.12.02-1', current: true });
    const withBase = { ...policy, imageBase: 'http://198.18.0.1:8080' };
    const gpu = host('gpu-01', 'mac: 52:54:00:ee:00:01\nimage: gpu\n');
    const plain = host('plain-01', 'mac: 52:54:00:ee:00:02\nimage: plain\n');
    const t = await targetFor(mac(gpu), gpu, withBase, catalog);
    expect(t.kind === 'boot' && t.args).toContain('bootd.image=http://198.18.0.1:8080/images/gpu/2026.12.02-1/');
    expect(templates.ipxe(t)).toMatch(/^kernel \S+ .*bootd\.image=http:\/\/198\.18\.0\.1:8080\/images\/gpu\/2026\.12\.02-1\/ /m);
    const p = await targetFor(mac(plain), plain, withBase, catalog);
    expect(p.kind === 'boot' && p.args.some((a) => a.startsWith('bootd.image='))).toBe(false);
    // served like the kernel: the payload is a file of the version
    expect(await catalog.servePath('images/gpu/2026.12.02-1/nvidia.img')).toBe(path.join(dir, 'gpu', '2026.12.02-1', 'nvidia.img'));
  });

  it('pxelinux.cfg/default boots unknown machines into the unknown image, with IPAPPEND 2 for BOOTIF', async () => {
    await golden('pxelinux-default-boot.cfg', templates.pxelinux(await targetFor(undefined, undefined, policy, catalog)));
  });

  it('pxelinux.cfg/default sends unknown machines to their disk when the policy boots nothing', async () => {
    const { unknownImage: _u, ...noImage } = policy;
    await golden('pxelinux-default-local.cfg', templates.pxelinux(await targetFor(undefined, undefined, noImage, catalog)));
  });

  it('a host with netboot off gets localboot', async () => {
    await golden('pxelinux-netboot-off.cfg', templates.pxelinux(await targetFor(mac(OFF), OFF, policy, catalog)));
  });

  it('a host whose image has no built version falls through to local boot, saying why', async () => {
    await golden('pxelinux-image-missing.cfg', templates.pxelinux(await targetFor(mac(MISSING), MISSING, policy, catalog)));
  });

  it('ipxe/<mac>.ipxe for a bee host names each initrd on the kernel line for the EFI stub', async () => {
    await golden('ipxe-bee-host.ipxe', templates.ipxe(await targetFor(mac(BEE), BEE, policy, catalog)));
  });

  it('ipxe/<mac>.ipxe for a host with netboot off exits so the firmware tries its disk', async () => {
    await golden('ipxe-netboot-off.ipxe', templates.ipxe(await targetFor(mac(OFF), OFF, policy, catalog)));
  });

  it('the iPXE dispatcher chains the per-MAC script', async () => {
    await golden('ipxe-dispatch.ipxe', templates.ipxeDispatch());
  });

  it('grub/mac-<mac>.cfg for a Secure Boot host: kernel and initrds over TFTP, every argument one GRUB word', async () => {
    const sb = host('sb-01', 'mac: 52:54:00:ab:00:01\nimage: bee\nsecure_boot: true\nkernel_args: [quiet]\n');
    expect(sb.loader).toBe('grub');
    const cfg = templates.grub(await targetFor(mac(sb), sb, policy, catalog), '(tftp,198.18.0.1)');
    await golden('grub-bee-host.cfg', cfg);
    // what GRUB's lexer would otherwise expand or split reaches the kernel as typed (host files allow
    // none of it today; the rendering does not rely on that)
    expect(['quiet', 'note=a b', 'x=$y', "it's", 'a;b'].map(grubWord)).toEqual(['quiet', "'note=a b'", "'x=$y'", "'it'\\''s'", "'a;b'"]);
    expect(cfg).toContain('initrd (tftp,198.18.0.1)/images/bee/2026.11.22-1/initrd.img (tftp,198.18.0.1)/images/bee/2026.11.22-1/overlay.img\n');
  });

  it('grub: netboot off exits to the firmware; an image on its way makes GRUB ask again; the dispatcher picks the MAC', async () => {
    await golden('grub-netboot-off.cfg', templates.grub(await targetFor(mac(OFF), OFF, policy, catalog), '(tftp,198.18.0.1)'));
    const onItsWay = { resolve: async () => ({ ok: false as const, reason: 'image buildos is not here yet, it is being fetched from the image origin http://198.18.0.2:8080/images', wait: true }) };
    await golden('grub-wait.cfg', templates.grub(await targetFor(mac(MISSING), MISSING, policy, onItsWay), '(tftp,198.18.0.1)', 'grub/mac-52:54:00:dd:00:01.cfg'));
    await golden('grub-dispatch.cfg', templates.grubDispatch());
  });

  it('a host that boots under Secure Boot with a loader Debian does not sign is refused, naming the key', () => {
    const r = parseHostFile('hosts/sb-02.yaml', 'sb-02', 'mac: 52:54:00:ab:00:02\nimage: bee\nsecure_boot: true\nloader: ipxe\n');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues[0]).toMatchObject({ file: 'hosts/sb-02.yaml', line: 4, path: 'loader' });
    expect(r.issues[0]?.message).toMatch(/^loader ipxe cannot boot under Secure Boot \(secure_boot: true\): Debian ships no signed iPXE/);
  });

  it('falls back to local boot when the command line would exceed the kernel limit', async () => {
    const long = host('long-01', `mac: 52:54:00:ee:00:01\nimage: bee\nkernel_args: [${Array.from({ length: 120 }, (_, i) => `opt${i}=xxxxxxxxxxxx`).join(', ')}]\n`);
    const t = await targetFor(mac(long), long, policy, catalog);
    expect(t.kind === 'local' && t.reason).toMatch(/^kernel command line for bee is \d+ bytes, over Linux's 2047$/);
  });

  it('serves each file kind by name, and nothing for an unknown MAC in pxelinux.cfg', async () => {
    const files = new BootFiles({ hosts: () => new HostSet([BEE, OFF]), images: catalog, templates, policy: () => policy, ipxeBootFile: 'boot.ipxe' });
    const text = async (p: string): Promise<string | undefined> => {
      const got = await files.get(p);
      return Buffer.isBuffer(got) ? got.toString() : got === undefined ? undefined : `file:${got.file}`;
    };
    expect(await text('pxelinux.cfg/01-52-54-00-aa-00-01')).toContain('KERNEL /images/bee/2026.11.22-1/vmlinuz');
    expect(await text('pxelinux.cfg/01-52-54-00-AA-00-01')).toContain('KERNEL /images/bee/2026.11.22-1/vmlinuz');
    expect(await text('pxelinux.cfg/01-52-54-00-99-99-99')).toBeUndefined();
    expect(await text('pxelinux.cfg/C612000A')).toBeUndefined();
    expect(await text('pxelinux.cfg/default')).toContain('IPAPPEND 2');
    expect(await text('ipxe/52-54-00-cc-00-01.ipxe')).toContain('exit 1');
    expect(await text('ipxe/52-54-00-99-99-99.ipxe')).toContain('# Generated by bootd for unknown machine 52:54:00:99:99:99');
    expect(await text('boot.ipxe')).toContain('chain /ipxe/${mac:hexhyp}.ipxe');
    expect(await text('grub/grub.cfg')).toContain('configfile "${prefix}/mac-${net_default_mac}.cfg"');
    expect(await text('grub/mac-52:54:00:aa:00:01.cfg')).toContain('linux (tftp,198.18.0.1)/images/bee/2026.11.22-1/vmlinuz ');
    expect(await text('grub/mac-52:54:00:99:99:99.cfg')).toContain('# Generated by bootd for unknown machine 52:54:00:99:99:99');
    expect(await text('grub/x86_64-efi/grub.cfg')).toBeUndefined();
    // arm64 GRUB is sent by ${grub_cpu} to grub/arm64-efi/: its configs boot the images' arm64 versions
    expect(await text('grub/grub.cfg')).toContain('if [ "${grub_cpu}" = "arm64" ]; then\n    configfile "${prefix}/arm64-efi/mac-${net_default_mac}.cfg"');
    expect(await text('grub/arm64-efi/mac-52:54:00:aa:00:01.cfg')).toContain('# Not netbooted: image bee has no current arm64 version (not built yet? bootd images build bee --arch arm64).');
    expect(await text('images/bee/2026.11.22-1/overlay.img')).toBe(`file:${path.join(dir, 'bee/2026.11.22-1/overlay.img')}`);
    expect(await text('images/bee/2026.11.22-1/manifest.json')).toBe(`file:${path.join(dir, 'bee/2026.11.22-1/manifest.json')}`);
    expect(await text('images/bee/2026.11.22-1/recipe.yaml')).toBeUndefined();
    // without HTTP there is no http/ view
    expect(await text('http/pxelinux.cfg/01-52-54-00-aa-00-01')).toBeUndefined();
  });

  it('http/pxelinux.cfg/* for lpxelinux.0: the same config with kernel and initrds as http:// URLs', async () => {
    const files = new BootFiles({ hosts: () => new HostSet([BEE, OFF]), images: catalog, templates, policy: () => policy, ipxeBootFile: 'boot.ipxe', httpBase: 'http://198.18.0.1:80' });
    const text = async (p: string): Promise<string | undefined> => {
      const got = await files.get(p);
      return Buffer.isBuffer(got) ? got.toString() : undefined;
    };
    const cfg = await text('http/pxelinux.cfg/01-52-54-00-aa-00-01');
    await golden('pxelinux-bee-host-http.cfg', cfg ?? '');
    expect(cfg).toContain('KERNEL http://198.18.0.1:80/images/bee/2026.11.22-1/vmlinuz');
    expect(cfg).toContain('APPEND initrd=http://198.18.0.1:80/images/bee/2026.11.22-1/initrd.img,http://198.18.0.1:80/images/bee/2026.11.22-1/overlay.img ');
    // the plain name still says TFTP paths (syslinux.efi reads it), local boot stays local boot
    expect(await text('pxelinux.cfg/01-52-54-00-aa-00-01')).toContain('KERNEL /images/bee/2026.11.22-1/vmlinuz');
    expect(await text('http/pxelinux.cfg/01-52-54-00-cc-00-01')).toContain('LOCALBOOT 0');
    expect(await text('http/pxelinux.cfg/default')).toContain('KERNEL http://198.18.0.1:80/images/bee/2026.11.22-1/vmlinuz');
    expect(await text('http/pxelinux.cfg/01-52-54-00-99-99-99')).toBeUndefined();
  });
});

describe('the template language', () => {
  it('substitutes values, sections and lists', () => {
    expect(render('a={{a}}\n{{#on}}on\n{{/on}}{{^on}}off\n{{/on}}{{#each xs}}- {{.n}}\n{{/each}}', { a: '1', on: false, xs: [{ n: 'x' }, { n: 'y' }] })).toBe('a=1\noff\n- x\n- y\n');
  });

  it('refuses a missing value', () => {
    expect(() => render('KERNEL {{kernel}}\n', {}, 't.cfg')).toThrow(new TemplateError('t.cfg: no value for {{kernel}}'));
  });

  it('refuses a value that would inject a line', () => {
    expect(() => render('APPEND {{append}}\n', { append: 'quiet\nLABEL evil' }, 't.cfg')).toThrow('t.cfg: value of {{append}} contains a control character: "quiet\\nLABEL evil"');
  });
});
