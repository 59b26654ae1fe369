/**
 * Runs one write transfer: a WriteSession on its own socket, a timer and an
 * UploadSink. Only glue; protocol decisions are in write-session.ts.
 *
 * Nothing reaches the final name before the last block is on disk: the sink
 * writes a temporary file and renames it on commit, so an interrupted upload
 * never replaces a complete file (issue 6).
 */
import type { Clock, TimerHandle } from '../net/clock.js';
import type { Remote, UdpSocket } from '../net/udp.js';
import { Opcode, ErrorCode, errorPacket } from './packet.js';
import type { WriteAction, WriteSession } from './write-session.js';
import type { TransferResult } from './transfer.js';

/** Where an upload's bytes go. Writes arrive in order, one at a time. */
export interface UploadSink {
  write(offset: number, data: Buffer): Promise<void>;
  /** After the last block: make the upload visible under its final name. */
  commit(): Promise<void>;
  /** The upload failed: remove every trace of it. */
  discard(): Promise<void>;
}

export type WriteDecision =
  | { readonly ok: true; readonly path: string; readonly sink: UploadSink; readonly maxBytes: number }
  | { readonly ok: false; readonly code: number; readonly message: string; readonly reason: string };

/** What a TFTP listener asks before it accepts a WRQ. */
export interface WritePolicy {
  authorize(peer: Remote, filename: string): Promise<WriteDecision>;
}

export interface WriteTransferParams {
  readonly socket: UdpSocket;
  readonly clock: Clock;
  readonly session: WriteSession;
  readonly sink: UploadSink;
  readonly oack: Buffer | null;
  readonly peer: Remote;
  readonly file: string;
  readonly blksize: number;
  readonly windowsize: number;
  readonly onDone: (r: TransferResult) => void;
}

function ackPacket(block: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(Opcode.ACK, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

export class WriteTransfer {
  private readonly startedAt: number;
  private timer: TimerHandle | null = null;
  private finished = false;
  /** Disk work in order; an ACK for a block goes out only after its bytes are written (and the last one committed). */
  private disk: Promise<void> = Promise.resolve();
  private diskFailed = false;
  private committed = false;
  private endedComplete = false;

  constructor(private readonly p: WriteTransferParams) {
    this.startedAt = p.clock.now();
    p.socket.onMessage((msg) => this.onPacket(msg));
    p.socket.onError(() => {});
  }

  start(): void {
    this.run(this.p.session.start(this.p.clock.now()));
  }

  abort(outcome: 'shutdown' | 'server-error', message: string): void {
    this.run(this.p.session.abort(outcome, message));
  }

  supersede(): void {
    this.run(this.p.session.abort('client-error', 'superseded by a new request from the same port'));
  }

  private onPacket(msg: Buffer): void {
    if (this.finished || msg.length < 4) return;
    const op = msg.readUInt16BE(0);
    const now = this.p.clock.now();
    if (op === Opcode.DATA) this.run(this.p.session.onData(msg.readUInt16BE(2), msg.subarray(4), now));
    else if (op === Opcode.ERROR) {
      const end = msg.indexOf(0, 4);
      this.run(this.p.session.onError(msg.readUInt16BE(2), msg.toString('latin1', 4, end < 0 ? msg.length : end)));
    }
  }

  private run(actions: WriteAction[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'write': {
          const data = Buffer.from(a.data); // the datagram buffer is not ours to keep
          this.disk = this.disk.then(async () => {
            if (this.diskFailed) return;
            await this.p.sink.write(a.offset, data);
            if (a.last) {
              await this.p.sink.commit();
              this.committed = true;
            }
          }).catch((err: unknown) => {
            this.diskFailed = true;
            // a sink may name the TFTP error (quota: 3, a name that appeared meanwhile: 6)
            const code = (err as { tftpCode?: unknown }).tftpCode;
            this.run(this.p.session.abort('server-error', `cannot store the upload: ${(err as Error).message}`, typeof code === 'number' ? code : ErrorCode.DISK_FULL));
          });
          break;
        }
        case 'ack':
          this.disk = this.disk.then(() => {
            // no ACK once the transfer failed; one that ended complete while its final
            // ACK waited for the commit (shutdown while dallying) still sends it: finish() awaits this chain
            if (!this.diskFailed && (!this.finished || this.endedComplete)) this.p.socket.send(ackPacket(a.block));
          });
          break;
        case 'oack':
          if (this.p.oack) this.p.socket.send(this.p.oack);
          break;
        case 'error':
          this.p.socket.send(errorPacket(a.code, a.message));
          break;
        case 'timer':
          this.timer?.cancel();
          this.timer = this.p.clock.setTimer(a.ms, () => {
            this.timer = null;
            if (!this.finished) this.run(this.p.session.onTimeout(this.p.clock.now()));
          });
          break;
        case 'done':
          void this.finish(a.outcome, a.detail);
          break;
      }
    }
  }

  private async finish(outcome: TransferResult['outcome'] | 'quota-exceeded', detail?: string): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.endedComplete = outcome === 'complete';
    this.timer?.cancel();
    this.timer = null;
    await this.disk;
    let out = outcome;
    let why = detail;
    if (out === 'complete' && !this.committed) {
      out = 'server-error';
      why = why ?? 'upload ended before its last block was stored';
    }
    if (!this.committed) await this.p.sink.discard().catch(() => {});
    this.p.socket.close();
    this.p.onDone({
      peer: this.p.peer,
      file: this.p.file,
      direction: 'write',
      bytes: this.p.session.bytesReceived,
      size: this.p.session.bytesReceived,
      blksize: this.p.blksize,
      windowsize: this.p.windowsize,
      durationMs: Math.round((this.p.clock.now() - this.startedAt) * 1000) / 1000,
      outcome: out === 'quota-exceeded' ? 'client-error' : out,
      ...(why !== undefined ? { detail: out === 'quota-exceeded' ? `quota exceeded: ${why}` : why } : {}),
      retransmits: 0,
      timeouts: this.p.session.stats.timeouts,
    });
  }
}
