/**
 * manifest.json of a built image version (reference: docs/images.md). JSON
 * is YAML, so the same positioned validation as hosts/*.yaml applies.
 */
import { z } from 'zod';
import { strictObject, wordField } from '../config/fields.js';
import { parseYaml, type ConfigIssue } from '../config/yaml-config.js';

export const MANIFEST_FILE = 'manifest.json';
/** The image's post-boot smoke test, beside the manifest (recipe key smoke_test). */
export const SMOKE_TEST_FILE = 'smoketest.sh';

/** A file name inside a version folder: no folders, nothing hidden. */
const FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const fileName = z.string({ error: 'expected a file name' }).regex(FILE_RE, { error: 'expected a plain file name like vmlinuz (no folders)' });

const manifestSchema = strictObject({
  name: z.string({ error: 'expected the image name' }),
  version: z.string({ error: 'expected the version' }),
  kernel: fileName,
  initrds: z.array(fileName, { error: 'expected a list of initrd file names' }).min(1, { error: 'expected at least one initrd' }),
  kernel_version: z.string({ error: 'expected the kernel version like 6.1.0-27-cloud-amd64' }),
  /** The architecture it runs on; absent: amd64 (versions built before there were others). */
  arch: z.enum(['amd64', 'arm64'], { error: 'expected amd64 or arm64' }).optional(),
  built_at: z.string({ error: 'expected an ISO 8601 time' }).refine((s) => !Number.isNaN(Date.parse(s)), { error: 'expected an ISO 8601 time' }),
  recipe_commit: z.string({ error: 'expected the recipe commit' }),
  /** Kernel arguments the image always needs, before bootd's and the host's. */
  cmdline: z.array(wordField, { error: 'expected a list of kernel arguments' }).optional(),
  files: z.record(
    fileName,
    strictObject({
      sha256: z.string({ error: 'expected a sha256 in hex' }).regex(/^[0-9a-f]{64}$/, { error: 'expected a sha256 in hex (64 lower-case digits)' }),
      size: z.number({ error: 'expected a size in bytes' }).int().nonnegative(),
    }),
    { error: 'expected a mapping from file name to {sha256, size}' },
  ),
  /** The kernel's Secure Boot signature (src/images/pe-signature.ts): present or not, and whose. */
  kernel_signature: strictObject({
    signed: z.boolean({ error: 'expected true or false' }),
    signers: z.array(z.string(), { error: 'expected a list of signer names' }),
  }).optional(),
  /**
   * The NVIDIA driver payload (recipe key nvidia): a file of `files` that is
   * not an initrd; the image fetches it from its own version when it finds a
   * GPU. The modules with the vermagic they were checked against.
   */
  nvidia: strictObject({
    file: fileName,
    driver: z.string({ error: 'expected the driver branch' }),
    version: z.string({ error: 'expected the driver version' }),
    modules: z.array(strictObject({ name: z.string(), vermagic: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }), { error: 'expected a list of modules' }),
    firmware: z.array(z.string(), { error: 'expected a list of firmware files' }),
    cuda: z.boolean({ error: 'expected true or false' }),
    stress: z.string().nullable(),
    /** The certificate the modules are signed for (recipe nvidia: sign:); absent or null: not signed. */
    signer: strictObject({ subject: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).nullable().optional(),
  }).optional(),
  /** What went in (package versions and the like); recorded, not interpreted. */
  inputs: z.record(z.string(), z.unknown()).optional(),
});

export type Manifest = z.output<typeof manifestSchema>;

export type ManifestResult = { readonly ok: true; readonly manifest: Manifest } | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** Validates a manifest, including that it names its own folder and lists the kernel and initrds. */
export function parseManifest(file: string, text: string, expect: { name: string; version: string }): ManifestResult {
  const r = parseYaml(file, text, manifestSchema);
  if (!r.ok) return r;
  const m = r.value;
  const issues: ConfigIssue[] = [];
  if (m.name !== expect.name) issues.push(r.doc.issue(['name'], `expected ${JSON.stringify(expect.name)} (the folder it is in), got ${JSON.stringify(m.name)}`));
  if (m.version !== expect.version) issues.push(r.doc.issue(['version'], `expected ${JSON.stringify(expect.version)} (the folder it is in), got ${JSON.stringify(m.version)}`));
  for (const [key, f] of [['kernel', m.kernel], ...m.initrds.map((x, i) => [['initrds', i], x] as const), ...(m.nvidia ? [[['nvidia', 'file'], m.nvidia.file] as const] : [])] as const) {
    if (!(f in m.files)) issues.push(r.doc.issue(Array.isArray(key) ? key : [key as string], `${f} is not listed in files`));
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, manifest: m };
}
