/**
 * bootd's own SSH key pair (<state>/ssh/bootd_ed25519): its public half is
 * built into images as root's authorized key, its private half is what the
 * post-boot smoke test logs in with. Made once with ssh-keygen, never
 * overwritten.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';

export interface KeyPair {
  readonly privateKey: string;
  readonly publicKey: string;
}

export function keyPairPaths(stateDir: string): KeyPair {
  const privateKey = path.join(stateDir, 'ssh', 'bootd_ed25519');
  return { privateKey, publicKey: `${privateKey}.pub` };
}

export async function ensureKeyPair(stateDir: string): Promise<KeyPair> {
  const k = keyPairPaths(stateDir);
  if (existsSync(k.privateKey) && existsSync(k.publicKey)) return k;
  mkdirSync(path.dirname(k.privateKey), { recursive: true, mode: 0o700 });
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bootd smoke test', '-f', k.privateKey], { stdin: 'ignore' });
  return k;
}
