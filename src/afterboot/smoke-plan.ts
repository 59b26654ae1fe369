/**
 * How to smoke-test one host, or why not: the host file's smoke settings
 * over the appliance's over the defaults, the host's own script or its
 * image's, and the SSH key. Pure decisions over injected lookups; the file
 * reads are the only I/O.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { SmokePlan } from './tracker.js';

/** What a host file says about its smoke test (hosts/*.yaml `smoke:`). */
export interface HostSmokeSettings {
  readonly user?: string;
  readonly port?: number;
  /** Private key file; absent: the appliance's, else bootd's own key from its state directory. */
  readonly identityFile?: string;
  readonly timeoutSeconds?: number;
  /** false: never run the smoke test on this host. */
  readonly enabled?: boolean;
  /** A script to run instead of the image's (relative paths: to the hosts directory). */
  readonly script?: string;
}

export interface ImageName {
  readonly name: string;
  readonly version?: string;
}

export interface SmokePlanDeps {
  /** The host in hosts/ by name: its smoke settings and what it netboots; undefined: not in hosts/ (an unknown machine). */
  readonly host: (name: string) => { readonly smoke: HostSmokeSettings; readonly netboot: boolean; readonly image: ImageName } | undefined;
  /** The appliance's settings over bootd's defaults (hosts/ keys win over these). */
  readonly defaults: { readonly user: string; readonly port: number; readonly timeoutSeconds: number; readonly identityFile?: string | undefined };
  /** Relative smoke scripts are found here (the hosts directory). */
  readonly scriptsDir: string;
  /** What unknown machines boot (unknown_hosts: boot); undefined: they boot nothing of ours. */
  readonly unknownImage: string | undefined;
  /** The image's own smoke test (recipe key smoke_test); null when it has none. */
  readonly smokeScript: (image: ImageName) => Promise<{ readonly script: string } | null>;
  /** bootd's own key pair's private half, made when first asked. */
  readonly defaultKeyFile: () => Promise<string>;
}

export function smokePlanner(d: SmokePlanDeps): (name: string) => Promise<SmokePlan> {
  return async (name) => {
    const host = d.host(name);
    const hs = host?.smoke ?? {};
    const port = hs.port ?? d.defaults.port;
    if (hs.enabled === false) return { ok: false, reason: `the smoke test is off for ${name} (smoke: enabled: false)`, port };
    let script: string | null;
    if (hs.script !== undefined) {
      const from = path.resolve(d.scriptsDir, hs.script);
      script = await fs.readFile(from, 'utf8').catch(() => null);
      if (script === null) return { ok: false, reason: `cannot read the smoke script ${from}`, port };
    } else {
      const image = host ? host.image : d.unknownImage !== undefined ? { name: d.unknownImage } : undefined;
      if (!image || (host !== undefined && !host.netboot)) return { ok: false, reason: `${name} netboots no image`, port };
      const got = await d.smokeScript(image);
      if (got === null) return { ok: false, reason: `image ${image.name} has no smoke test (recipe key smoke_test)`, port };
      script = got.script;
    }
    const keyFile = hs.identityFile ?? d.defaults.identityFile ?? (await d.defaultKeyFile());
    const privateKey = await fs.readFile(keyFile).catch(() => null);
    if (privateKey === null) return { ok: false, reason: `cannot read the SSH key ${keyFile}`, port };
    return { ok: true, user: hs.user ?? d.defaults.user, port, privateKey, script, timeoutMs: (hs.timeoutSeconds ?? d.defaults.timeoutSeconds) * 1000 };
  };
}
