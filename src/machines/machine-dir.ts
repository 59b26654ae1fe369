/**
 * One build machine's directory as its TFTP port sees it: anyone who can
 * reach the port may read (the machine fetches its task; operators read its
 * results), only the machine's own address may write, and no name leads out
 * of the directory. Writes go through HostUploadDirs (temporary file, rename
 * after the last block, quota, overwrite policy).
 */
import path from 'node:path';
import type { Remote } from '../net/udp.js';
import { ErrorCode } from '../tftp/packet.js';
import { FileRoot, notFound, type RequestContext, type Resolution, type Resolver } from '../files/root.js';
import { normalizeRequestPath } from '../files/paths.js';
import type { WriteDecision, WritePolicy } from '../tftp/write-transfer.js';
import { isPartialPath } from '../uploads/file-sink.js';
import { HostUploadDirs } from '../uploads/host-dirs.js';

export interface MachineDirOptions {
  readonly name: string;
  /** The machine's address now (its reservation or lease); undefined: nobody may write. */
  readonly ownerAddress: () => string | undefined;
  readonly quotaBytes: number;
  readonly overwrite: boolean;
}

export class MachineDir implements Resolver, WritePolicy {
  private readonly writes: HostUploadDirs;

  /** `parent` holds one folder per machine; this one's is `<parent>/<name>`. */
  constructor(
    readonly parent: string,
    private readonly o: MachineDirOptions,
  ) {
    this.writes = new HostUploadDirs(parent, { whoIs: () => o.name, quotaBytes: () => o.quotaBytes, overwrite: () => o.overwrite });
  }

  get dir(): string {
    return path.join(this.parent, this.o.name);
  }

  async resolve(rawName: string, ctx: RequestContext): Promise<Resolution> {
    const n = normalizeRequestPath(rawName);
    if (n.ok && isPartialPath(n.path)) return notFound('upload in progress');
    const root = await FileRoot.open(this.dir).catch(() => null);
    if (root === null) return notFound('nothing uploaded yet');
    return root.resolve(rawName, ctx);
  }

  async authorize(peer: Remote, filename: string): Promise<WriteDecision> {
    const owner = this.o.ownerAddress();
    if (owner === undefined || owner !== peer.address) {
      return { ok: false, code: ErrorCode.ACCESS_VIOLATION, message: `Writes are accepted only from ${this.o.name}`, reason: owner === undefined ? `${this.o.name} has no known address` : `${peer.address} is not ${this.o.name} (${owner})` };
    }
    return this.writes.authorize(peer, filename);
  }
}
