/**
 * `bootd images build NAME`: runs the image builder (src/images/builder.ts)
 * in the foreground, with progress on a TTY and one line per step
 * elsewhere. A running `bootd serve` sees the new version as soon as
 * `current` moves: both read the same catalog folder.
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { bytes } from './hosts.js';
import { BuildError, buildImage, type BuildResult } from '../images/builder.js';
import { currentLink } from '../images/catalog.js';
import { LineProgress, TtyProgress } from '../images/progress.js';
import { ensureKeyPair } from '../images/ssh-key.js';


export function summary(r: BuildResult): string[] {
  const secs = r.steps.reduce((a, s) => a + s.ms, 0) / 1000;
  return [
    `built ${r.name}@${r.version} for ${r.manifest.arch ?? 'amd64'} in ${secs.toFixed(1)} s (${currentLink(r.manifest.arch ?? 'amd64')} -> ${r.version})`,
    ...Object.entries(r.manifest.files).map(([f, x]) => `  ${f.padEnd(12)} ${bytes(x.size).padStart(10)}  sha256 ${x.sha256.slice(0, 16)}…`),
    `  kernel ${r.manifest.kernel_version}; ${String(r.manifest.inputs?.modules ?? 0)} modules; ${Object.keys((r.manifest.inputs?.packages as object | undefined) ?? {}).length} packages`,
    `  downloads: ${r.downloads.downloaded} packages (${bytes(r.downloads.bytes)}), ${r.downloads.cached} from the cache`,
    `  steps: ${r.steps.map((s) => `${s.name} ${(s.ms / 1000).toFixed(1)}s`).join(', ')}`,
    `  log: ${r.logFile}`,
  ];
}

export function addImageBuildCommand(images: Command): void {
  images
    .command('build <name>')
    .description('build an image from images/<name>/recipe.yaml into a new version and make it current')
    .option('--images <dir>', 'image catalog', 'images')
    .option('--state <dir>', 'state directory (build logs, work tree, download cache, SSH key)', '/var/lib/bootd')
    .option('--cache <dir>', 'download cache (default <state>/cache)')
    .option('--kernel-flavour <flavour>', 'Debian kernel flavour instead of the recipe\'s (amd64 for real NICs)')
    .addOption(new Option('--arch <arch>', 'build for this architecture (default: the recipe\'s arch, else amd64); nothing of the image is run on the build host').choices(['amd64', 'arm64']))
    .option('--mirror <url>', 'Debian mirror for debootstrap', undefined)
    .option('--authorized-keys <file>', 'public keys for root in the image (default: bootd\'s own key, <state>/ssh/bootd_ed25519.pub)')
    .option('--keep-work', 'keep the work tree after a successful build')
    .option('--json', 'print the result as JSON (progress still goes to stderr)')
    .action(async (name: string, o: { images: string; state: string; cache?: string; kernelFlavour?: string; arch?: 'amd64' | 'arm64'; mirror?: string; authorizedKeys?: string; keepWork?: boolean; json?: boolean }) => {
      const stateDir = path.resolve(o.state);
      const keys = o.authorizedKeys ?? (await ensureKeyPair(stateDir)).publicKey;
      const progress = process.stderr.isTTY ? new TtyProgress(process.stderr) : new LineProgress((l) => process.stderr.write(`${l}\n`));
      try {
        const r = await buildImage({
          imagesDir: path.resolve(o.images),
          name,
          stateDir,
          progress,
          authorizedKeys: path.resolve(keys),
          ...(o.cache !== undefined ? { cacheDir: path.resolve(o.cache) } : {}),
          ...(o.kernelFlavour !== undefined ? { kernelFlavour: o.kernelFlavour } : {}),
          ...(o.arch !== undefined ? { arch: o.arch } : {}),
          ...(o.mirror !== undefined ? { mirror: o.mirror } : {}),
          ...(o.keepWork ? { keepWork: true } : {}),
        });
        if (o.json) process.stdout.write(`${JSON.stringify({ name: r.name, version: r.version, dir: r.dir, log: r.logFile, steps: r.steps, downloads: r.downloads, manifest: r.manifest }, null, 2)}\n`);
        else for (const l of summary(r)) process.stdout.write(`${l}\n`);
      } catch (err) {
        process.stderr.write(`bootd: ${(err as Error).message}\n`);
        process.exitCode = err instanceof BuildError ? 2 : 1;
      }
    });
}
