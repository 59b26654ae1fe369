/**
 * images/<name>/recipe.yaml: what the one builder (./builder.ts) makes of an
 * image. Declarative on purpose: the builder owns the steps (resolve,
 * download, kernel, root, modules, overlay, hooks, pack, publish); a recipe
 * only fills them in, and its shell hooks do what is particular to it.
 * Reference: docs/images.md.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { intField, strictObject, wordField } from '../config/fields.js';
import { ConfigError, parseYaml } from '../config/yaml-config.js';

/** Debian package name (Debian Policy 5.6.1), optionally `=version`. */
const PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]+(=[0-9A-Za-z.+~:-]+)?$/;
const packageField = z.string({ error: 'expected a Debian package name like dropbear-bin' }).regex(PACKAGE_RE, { error: 'expected a Debian package name like dropbear-bin' });

/** An absolute path inside the image: no `..`, no doubled or trailing slash. */
const imagePathField = z
  .string({ error: 'expected an absolute path like /usr/sbin/dropbear' })
  .regex(/^(\/[A-Za-z0-9._+@-]+)+$/, { error: 'expected an absolute path like /usr/sbin/dropbear' })
  .refine((p) => !p.split('/').includes('..'), { error: 'expected a path without ..' });

/** A path relative to the recipe folder (overlay, hooks). */
const recipePathField = z
  .string({ error: 'expected a path inside the recipe folder like hooks/10-users.sh' })
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, { error: 'expected a path inside the recipe folder like hooks/10-users.sh' })
  .refine((p) => !p.split('/').includes('..'), { error: 'expected a path without ..' });

/** An absolute path on the build host (a signing key kept outside the catalog). */
const hostPathField = z
  .string({ error: 'expected an absolute path on the build host like /etc/bootd/mok/MOK.priv' })
  .regex(/^(\/[A-Za-z0-9._+@-]+)+$/, { error: 'expected an absolute path on the build host like /etc/bootd/mok/MOK.priv' })
  .refine((p) => !p.split('/').includes('..'), { error: 'expected a path without ..' });

/** A module pattern relative to /lib/modules/<kver>/kernel/: `drivers/net/virtio_net` or `drivers/net/ethernet/intel/**`. */
const modulePatternField = z
  .string({ error: 'expected a module path like drivers/net/virtio_net or a folder glob like drivers/ata/**' })
  .regex(/^[A-Za-z0-9_*/.-]+$/, { error: 'expected a module path like drivers/net/virtio_net or a folder glob like drivers/ata/**' });

export const KERNEL_FLAVOUR_RE = /^[a-z0-9][a-z0-9-]*$/;

const recipeSchema = strictObject({
  description: z.string({ error: 'expected a one-line description' }),
  /** The architecture the image is built for unless `bootd images build --arch` says otherwise (default amd64). */
  arch: z.enum(['amd64', 'arm64'], { error: 'expected amd64 or arm64' }).optional(),
  kernel: strictObject({
    /**
     * Debian linux-image flavour: `cloud-amd64` (small; virtio as modules,
     * no e1000: enough for QEMU) or `amd64` (real NICs). The builder
     * downloads `linux-image-<flavour>` and follows it to the versioned package.
     */
    flavour: z.string({ error: 'expected a flavour like cloud-amd64' }).regex(KERNEL_FLAVOUR_RE, { error: 'expected a flavour like cloud-amd64' }),
    /** Modules copied into the initrd, with everything they depend on (modules.dep). */
    modules: z.array(modulePatternField, { error: 'expected a list of module paths' }).default([]),
  }),
  root: z.discriminatedUnion(
    'base',
    [
      strictObject({
        /** Programs taken from unpacked .debs, each with its shared libraries (copy_exec). */
        base: z.literal('packages'),
        packages: z.array(packageField, { error: 'expected a list of Debian packages' }),
        programs: z.array(imagePathField, { error: 'expected a list of absolute program paths' }),
        /** Plain files copied as they are (data such as pci.ids). */
        files: z.array(imagePathField, { error: 'expected a list of absolute file paths' }).default([]),
      }),
      strictObject({
        /** A Debian root made by debootstrap, with extra packages installed. */
        base: z.literal('debootstrap'),
        suite: z.string({ error: 'expected a Debian suite like bookworm' }).regex(/^[a-z]+$/, { error: 'expected a Debian suite like bookworm' }),
        variant: z.enum(['minbase', 'buildd'], { error: 'expected minbase or buildd' }).default('minbase'),
        packages: z.array(packageField, { error: 'expected a list of Debian packages' }).default([]),
      }),
    ],
    { error: 'expected base: packages or base: debootstrap' },
  ),
  /**
   * Debian archive components beyond `main` (non-free, contrib,
   * non-free-firmware): the builder then asks apt through sources of its own
   * (the build host's Debian sources with these components), never the host's.
   */
  apt: strictObject({
    components: z.array(z.enum(['main', 'contrib', 'non-free', 'non-free-firmware'], { error: 'expected main, contrib, non-free or non-free-firmware' }), { error: 'expected a list of archive components' }).min(1),
  }).optional(),
  /**
   * The NVIDIA driver (src/images/nvidia.ts): kernel modules built at image
   * time against the image's own kernel from Debian's DKMS sources,
   * nvidia-smi and libnvidia-ml, the GSP firmware, in a payload of their own
   * (nvidia.img) that the image fetches when it finds an NVIDIA GPU.
   */
  nvidia: strictObject({
    /** Debian's driver branch: tesla-535 (nvidia-graphics-drivers-tesla-535, the datacenter driver) or current (nvidia-graphics-drivers). */
    driver: z.enum(['tesla-535', 'current'], { error: 'expected tesla-535 or current' }).default('tesla-535'),
    /** Modules of the DKMS package to ship, in load order (nvidia-drm needs DRM, nvidia-peermem InfiniBand: not by default). */
    modules: z.array(z.enum(['nvidia', 'nvidia-modeset', 'nvidia-uvm', 'nvidia-drm', 'nvidia-peermem'], { error: 'expected nvidia, nvidia-modeset, nvidia-uvm, nvidia-drm or nvidia-peermem' }), { error: 'expected a list of module names' }).min(1).default(['nvidia', 'nvidia-modeset', 'nvidia-uvm']),
    /** GSP firmware (Turing and newer; Hopper cannot run without it). */
    firmware: z.boolean({ error: 'expected true or false' }).default(true),
    /** libcuda.so.1 (29 MiB): for CUDA programs such as a stress test; nvidia-smi needs only libnvidia-ml. */
    cuda: z.boolean({ error: 'expected true or false' }).default(false),
    /**
     * A GPU stress program placed by the operator (a file or a folder in the
     * recipe folder, e.g. gpu_burn with its compare.ptx; never downloaded),
     * copied to /usr/local/lib/gpu-stress and run by the smoke test only when
     * the host's kernel arguments ask (bee.gpu_stress=<seconds>). Implies cuda.
     */
    stress: recipePathField.optional(),
    /**
     * Sign the modules with a machine owner key (src/images/module-sign.ts),
     * so that a kernel under Secure Boot loads them once the certificate is
     * enrolled on the server (`mokutil --import`). Paths on the build host,
     * outside the image catalog: the private key is never copied anywhere.
     */
    sign: strictObject({
      /** The private key (PEM, not passphrase-protected). */
      key: hostPathField,
      /** Its certificate (PEM or DER; DER is what mokutil imports). */
      cert: hostPathField,
    }).optional(),
  }).optional(),
  /** Recipe folder copied over the root (default `overlay` when it exists). */
  overlay: recipePathField.optional(),
  /** Scripts run on the build host in order, with ROOT, IMAGE, VERSION, KERNEL_VERSION, AUTHORIZED_KEYS set. */
  hooks: z.array(recipePathField, { error: 'expected a list of hook scripts' }).default([]),
  /** Paths removed from the root before packing (documentation, locales). */
  strip: z.array(imagePathField, { error: 'expected a list of absolute paths' }).default([]),
  initrd: strictObject({
    compression: z.enum(['zstd', 'xz', 'gzip'], { error: 'expected zstd, xz or gzip' }).default('zstd'),
    level: intField(1, 19, 'a compression level').default(12),
  }).default({ compression: 'zstd', level: 12 }),
  /** Kernel arguments the image always needs (manifest.json cmdline). */
  cmdline: z.array(wordField, { error: 'expected a list of kernel arguments' }).default([]),
  /**
   * The post-boot smoke test, a shell script in the recipe folder that bootd
   * pipes into `sh -s` over SSH once a host is up (PASS/FAIL lines, exit 0 =
   * all required checks passed). Copied next to the manifest as smoketest.sh.
   */
  smoke_test: recipePathField.optional(),
});

export type Recipe = z.output<typeof recipeSchema>;

export interface LoadedRecipe {
  readonly name: string;
  readonly dir: string;
  readonly file: string;
  readonly recipe: Recipe;
}

/** Parses a recipe text; errors carry file:line:col as in hosts/*.yaml. */
export function parseRecipe(file: string, text: string): Recipe {
  const r = parseYaml(file, text, recipeSchema);
  if (!r.ok) throw new ConfigError(r.issues);
  return r.value;
}

export async function loadRecipe(imagesDir: string, name: string): Promise<LoadedRecipe> {
  const dir = path.join(imagesDir, name);
  const file = path.join(dir, 'recipe.yaml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`image ${name} has no recipe (${file} is missing)`);
  }
  return { name, dir, file, recipe: parseRecipe(file, text) };
}
