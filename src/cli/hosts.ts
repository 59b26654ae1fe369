/**
 * `bootd hosts check|list|show` and `bootd images list`: read-only views of
 * hosts/*.yaml and the image catalog, for operators and for the hosts
 * repository's own CI (`bootd hosts check` exits non-zero on any error).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BootRecord } from '../afterboot/record.js';
import { formatSummary, type InventoryEntry } from '../afterboot/inventory.js';
import { FileHostRecords } from '../state/host-records.js';
import { readHostRecords } from '../state/pg/host-records.js';
import type { Command } from 'commander';
import { BootTemplates, targetFor } from '../bootconfig/render.js';
import { macHyphen } from '../hosts/types.js';
import { formatIssue } from '../config/yaml-config.js';
import type { Assembly } from '../hosts/directory.js';
import { loadHosts } from '../hosts/loader.js';
import { formatImageRef, type Host } from '../hosts/types.js';
import { ImageCatalog } from '../images/catalog.js';
import { ARCH_TABLE } from '../dhcp/boot-policy.js';

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function hostJson(h: Host): Record<string, unknown> {
  return { ...h, image: formatImageRef(h.image) };
}

async function load(dir: string, imagesDir: string | null): Promise<Assembly> {
  if (!existsSync(dir)) throw new Error(`hosts directory ${dir} does not exist`);
  return loadHosts(dir, imagesDir === null ? undefined : new ImageCatalog(imagesDir));
}

function table(rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
}

export function bytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function printRecords(lastBoot: BootRecord | null, inv: InventoryEntry | undefined): void {
  out(`last boot: ${lastBoot ? `${lastBoot.startedAt} ${lastBoot.phase}${lastBoot.ip ? ` at ${lastBoot.ip}` : ''}${lastBoot.smoke ? `, smoke ${lastBoot.smoke.ok ? 'passed' : `FAILED: ${lastBoot.smoke.error ?? lastBoot.smoke.failed.join('; ')}`}` : ''}` : 'none recorded'}`);
  if (!inv) {
    out('inventory: none (no audit report received)');
    return;
  }
  out(`inventory: report of ${inv.collectedAt ?? '?'}, received ${inv.receivedAt} (${inv.file})`);
  for (const l of formatSummary(inv.summary)) out(`  ${l}`);
  if (inv.rejected) out(`  last report refused at ${inv.rejected.at}: ${inv.rejected.error} (kept as ${inv.rejected.file})`);
}

export function addHostCommands(program: Command): Command {
  const hosts = program.command('hosts').description('validate and inspect hosts/*.yaml');
  addCheckCommand(hosts);
  addListCommand(hosts);
  addShowCommand(hosts);
  return addImageListCommand(program);
}

function addCheckCommand(hosts: Command): void {
  hosts
    .command('check [dir]')
    .description('validate every host file; exit 1 on any error (run it in the hosts repository CI)')
    .option('--images <dir>', 'image catalog that image: references must exist in', 'images')
    .option('--skip-image-check', 'do not check that images exist (the catalog is not available here)')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string | undefined, o: { images: string; skipImageCheck?: boolean; json?: boolean }) => {
      const a = await load(dir ?? 'hosts', o.skipImageCheck ? null : o.images);
      if (o.json) out(JSON.stringify({ ok: a.issues.length === 0, hosts: a.set.size, issues: a.issues }, null, 2));
      else {
        for (const i of a.issues) process.stderr.write(`${formatIssue(i)}\n`);
        const bad = new Set(a.issues.map((i) => i.file)).size;
        out(a.issues.length === 0 ? `${a.set.size} hosts, no errors` : `${a.issues.length} error(s) in ${bad} file(s); ${a.files.length - bad} of ${a.files.length} files are valid`);
      }
      process.exitCode = a.issues.length === 0 ? 0 : 1;
    });
}

function addListCommand(hosts: Command): void {
  hosts
    .command('list')
    .description('list the hosts that load (errors go to stderr)')
    .option('--hosts <dir>', 'hosts directory', 'hosts')
    .option('--images <dir>', 'image catalog', 'images')
    .option('--json', 'print JSON')
    .action(async (o: { hosts: string; images: string; json?: boolean }) => {
      const a = await load(o.hosts, o.images);
      for (const i of a.issues) process.stderr.write(`${formatIssue(i)}\n`);
      if (o.json) return out(JSON.stringify(a.set.hosts.map(hostJson), null, 2));
      table([
        ['NAME', 'MAC', 'IP', 'IMAGE', 'NETBOOT', 'BUILD'],
        ...a.set.hosts.map((h) => [h.name, h.macs.join(','), h.ip ?? '-', h.netboot ? formatImageRef(h.image) : '-', h.netboot ? 'yes' : 'no', h.build ? bytes(h.build.quotaBytes) : 'no']),
      ]);
    });
}

function addShowCommand(hosts: Command): void {
  hosts
    .command('show <name>')
    .description('one host in full: its file, what it boots now, its generated config, its last boot and its inventory (the audit report)')
    .option('--hosts <dir>', 'hosts directory', 'hosts')
    .option('--images <dir>', 'image catalog', 'images')
    .option('--state <dir>', 'bootd state directory (boots, smoke results, inventory)', '/var/lib/bootd')
    .option('--state-url <url>', 'the PostgreSQL database bootd keeps its records in (bootd serve --state-url); the audit report itself is read from --state')
    .option('--server-address <addr>', 'bootd address to render configs with', '0.0.0.0')
    .option('--json', 'print JSON, with the whole audit report')
    .action(async (name: string, o: { hosts: string; images: string; state: string; stateUrl?: string; serverAddress: string; json?: boolean }) => {
      const a = await load(o.hosts, o.images);
      const h = a.set.byName(name);
      const issues = a.issues.filter((i) => i.file.endsWith(`/${name}.yaml`) || i.file.endsWith(`/${name}.yml`));
      for (const i of issues) process.stderr.write(`${formatIssue(i)}\n`);
      const records = o.stateUrl !== undefined ? await readHostRecords(o.stateUrl) : await FileHostRecords.reader(o.state);
      const inv = await records.inventory(name);
      const lastBoot = (await records.boots(name, { limit: 1 })).items[0] ?? null;
      const report = inv ? await readFile(path.join(o.state, inv.file), 'utf8').then((t) => JSON.parse(t) as unknown, () => null) : null;
      if (!h && !inv && !lastBoot) {
        process.stderr.write(`bootd: no valid host ${name} in ${o.hosts} and no record of it in ${o.state}\n`);
        process.exitCode = 1;
        return;
      }
      if (!h) {
        // a machine bootd saw (an unknown MAC, enlisted by the audit image) without a host file
        if (o.json) return out(JSON.stringify({ host: null, lastBoot, inventory: inv ?? null, report }, null, 2));
        out(`name:      ${name} (no host file; seen by bootd)`);
        printRecords(lastBoot, inv);
        return;
      }
      const catalog = new ImageCatalog(o.images);
      const templates = BootTemplates.load();
      const mac = h.macs[0] as Host['macs'][number];
      const learned = lastBoot?.clientArch !== undefined ? ARCH_TABLE.get(lastBoot.clientArch)?.firmware : undefined;
      const arch = h.arch ?? (learned === 'efi-arm64' ? 'arm64' : 'amd64');
      const target = await targetFor(mac, h, { serverIp: o.serverAddress, kernelArgs: [] }, catalog, arch);
      const files = h.macs.map((m) => ({ pxelinux: `pxelinux.cfg/01-${macHyphen(m)}`, ipxe: `ipxe/${macHyphen(m)}.ipxe`, grub: `grub/${arch === 'arm64' ? 'arm64-efi/' : ''}mac-${m}.cfg` }));
      const boots = target.kind === 'boot' ? `${target.image.name}@${target.image.version}` : `local disk (${target.reason})`;
      const grub = templates.grub(target, `(tftp,${o.serverAddress})`, files[0]?.grub);
      if (o.json) return out(JSON.stringify({ host: hostJson(h), boots, files, pxelinux: templates.pxelinux(target), ipxe: templates.ipxe(target), grub, lastBoot, inventory: inv ?? null, report }, null, 2));
      out(`name:      ${h.name} (${h.file})`);
      out(`macs:      ${h.macs.join(', ')}`);
      out(`ip:        ${h.ip ?? 'from the pool'}`);
      out(`hostname:  ${h.hostname}`);
      out(`image:     ${h.netboot ? formatImageRef(h.image) : '(netboot off)'}`);
      out(`boots:     ${boots}`);
      out(`loader:    ${arch === 'arm64' ? 'grub (arm64)' : (h.loader ?? 'the appliance default')}${h.secureBoot === true ? ', Secure Boot (signed chain, signed kernel)' : ''}`);
      const fw = lastBoot?.clientArch !== undefined ? `${ARCH_TABLE.get(lastBoot.clientArch)?.name ?? 'unknown'} (option 93 = ${lastBoot.clientArch})` : null;
      out(`arch:      ${arch}${h.arch !== undefined ? ' (hosts file)' : learned !== undefined ? ' (learned)' : ' (default)'}${fw !== null ? `; last boot's firmware: ${fw}` : ''}`);
      out(`build:     ${h.build ? `yes, quota ${bytes(h.build.quotaBytes)}` : 'no'}`);
      const sm = h.smoke;
      out(`smoke:     ${sm.enabled === false ? 'off' : `${sm.user ?? '(appliance user, default root)'}@:${sm.port ?? 22}${sm.identityFile ? ` key ${sm.identityFile}` : ''}${sm.timeoutSeconds !== undefined ? `, timeout ${sm.timeoutSeconds} s` : ''}${sm.script ? `, script ${sm.script}` : ''}`}`);
      out(`quirks:    ${JSON.stringify(h.quirks)}`);
      out(`files:     ${files.flatMap((f) => [f.pxelinux, f.ipxe, f.grub]).join(', ')}`);
      printRecords(lastBoot, inv);
      out();
      if (h.loader === 'grub' || arch === 'arm64') {
        out(`--- ${files[0]?.grub ?? ''}`);
        process.stdout.write(grub);
      } else {
        out(`--- ${files[0]?.pxelinux ?? ''}`);
        process.stdout.write(templates.pxelinux(target));
      }
    });
}

/** `bootd images list`; returns the `images` command for the build subcommand (./images.ts). */
function addImageListCommand(program: Command): Command {
  const images = program.command('images').description('the image catalog');
  images
    .command('list')
    .description('images, their versions and sizes, current, and which hosts use each')
    .option('--images <dir>', 'image catalog', 'images')
    .option('--hosts <dir>', 'hosts directory (for "used by")', 'hosts')
    .option('--json', 'print JSON')
    .action(async (o: { images: string; hosts: string; json?: boolean }) => {
      const catalog = new ImageCatalog(o.images);
      const hostSet = existsSync(o.hosts) ? (await loadHosts(o.hosts, catalog)).set : null;
      const usedBy = (name: string): string[] => (hostSet?.hosts ?? []).filter((h) => h.netboot && h.image.name === name).map((h) => (h.image.version ? `${h.name}@${h.image.version}` : h.name));
      const list = catalog.list().map((i) => ({ ...i, usedBy: usedBy(i.name) }));
      if (o.json) return out(JSON.stringify(list, null, 2));
      table([
        ['IMAGE', 'VERSION', 'CURRENT', 'SIZE', 'KERNEL', 'SIGNED', 'BUILT', 'USED BY'],
        ...list.flatMap((i) =>
          i.versions.length === 0
            ? [[i.name, '(not built)', '-', '-', '-', '-', '-', i.usedBy.join(',') || '-']]
            // SIGNED: the kernel carries a Secure Boot signature (hosts with secure_boot: true need one)
            : i.versions.map((v) => [i.name, v.version, v.version === i.current ? '*' : '', v.valid ? bytes(v.bytes) : 'invalid manifest', v.kernelVersion ?? '-', v.kernelSigned === null ? '-' : v.kernelSigned ? 'yes' : 'no', v.builtAt ?? '-', i.usedBy.join(',') || '-']),
        ),
      ]);
    });
  return images;
}
