/**
 * The write-transfer state machine (server side of a WRQ), the mirror of
 * ReadSession: events in (`start`, `onData`, `onError`, `onTimeout`, `abort`),
 * actions out (send OACK or ACK, write bytes, send ERROR, arm timer, done).
 * Pure: the caller owns the socket, the timer and the file. The main port
 * never starts one (writes are refused there); per-machine write ports, a
 * later issue, run it behind their own address and quota checks, writing to
 * a temporary file that is renamed on the `write` action marked `last`.
 */
import { ErrorCode } from './packet.js';
import { RtoEstimator } from './rto.js';
import type { Outcome, TimingConfig } from './session.js';

export interface WriteSessionConfig {
  readonly blksize: number;
  /** RFC 7440 for writes: acknowledge every `windowsize` blocks. */
  readonly windowsize: number;
  /** true when options were accepted: answer with OACK instead of ACK 0 (RFC 2347). */
  readonly sendOack: boolean;
  /** Largest upload accepted, in bytes; beyond it ERROR 3 (RFC 1350 "Disk full or allocation exceeded"). */
  readonly maxBytes: number;
  readonly timing: TimingConfig;
}

export type WriteOutcome = Outcome | 'quota-exceeded';

export type WriteAction =
  | { readonly kind: 'oack' }
  | { readonly kind: 'ack'; readonly block: number }
  | { readonly kind: 'write'; readonly offset: number; readonly data: Buffer; readonly last: boolean }
  | { readonly kind: 'error'; readonly code: number; readonly message: string }
  | { readonly kind: 'timer'; readonly ms: number }
  | { readonly kind: 'done'; readonly outcome: WriteOutcome; readonly detail?: string };

type Phase = 'idle' | 'receiving' | 'dally' | 'done';

export class WriteSession {
  private phase: Phase = 'idle';
  /** Blocks received in order (absolute). */
  private received = 0;
  private bytes = 0;
  /** Highest block acknowledged so far. */
  private acked = 0;
  /** A gap was reported for the current position: do not report it again for every later block. */
  private gapReported = false;
  private lastProgressAt = 0;
  private readonly rto: RtoEstimator;
  readonly stats = { duplicates: 0, gaps: 0, timeouts: 0 };

  constructor(private readonly cfg: WriteSessionConfig) {
    this.rto = new RtoEstimator(cfg.timing);
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  get bytesReceived(): number {
    return this.bytes;
  }

  start(now: number): WriteAction[] {
    if (this.phase !== 'idle') return [];
    this.phase = 'receiving';
    this.lastProgressAt = now;
    return [this.cfg.sendOack ? { kind: 'oack' } : { kind: 'ack', block: 0 }, this.timer()];
  }

  /** A DATA packet with its 16-bit block number from the wire. */
  onData(wireBlock: number, data: Buffer, now: number): WriteAction[] {
    if (this.phase === 'dally') {
      // our final ACK was lost and the client resent its last block: acknowledge again
      return wireBlock === (this.received & 0xffff) ? [{ kind: 'ack', block: this.received }] : [];
    }
    if (this.phase !== 'receiving') return [];
    const expected = (this.received + 1) & 0xffff;
    if (wireBlock !== expected) {
      const behind = (((this.received & 0xffff) - wireBlock) & 0xffff) < 0x8000;
      if (behind) {
        // RFC 1350: a duplicate DATA means our ACK was lost; acknowledge what we have.
        this.stats.duplicates++;
        return [{ kind: 'ack', block: this.received }];
      }
      // RFC 7440 section 4: a gap; report the last block received in order, once.
      this.stats.gaps++;
      if (this.gapReported) return [];
      this.gapReported = true;
      return [{ kind: 'ack', block: this.received }];
    }
    if (data.length > this.cfg.blksize) {
      return this.abort('client-error', `DATA of ${data.length} bytes exceeds blksize ${this.cfg.blksize}`, ErrorCode.ILLEGAL_OPERATION);
    }
    if (this.bytes + data.length > this.cfg.maxBytes) {
      this.phase = 'done';
      return [
        { kind: 'error', code: ErrorCode.DISK_FULL, message: `Allocation exceeded: limit is ${this.cfg.maxBytes} bytes` },
        { kind: 'done', outcome: 'quota-exceeded', detail: `upload passed ${this.cfg.maxBytes} bytes` },
      ];
    }
    const offset = this.bytes;
    this.received++;
    this.bytes += data.length;
    this.gapReported = false;
    this.lastProgressAt = now;
    this.rto.progress();
    const last = data.length < this.cfg.blksize;
    const actions: WriteAction[] = [{ kind: 'write', offset, data, last }];
    if (last) {
      // RFC 1350 section 6: acknowledge the final block, then dally a while
      // in case that ACK is lost and the block comes again.
      this.phase = 'dally';
      this.acked = this.received;
      actions.push({ kind: 'ack', block: this.received }, this.timer());
    } else if (this.received - this.acked >= this.cfg.windowsize) {
      this.acked = this.received;
      actions.push({ kind: 'ack', block: this.received }, this.timer());
    }
    return actions;
  }

  onError(code: number, message: string): WriteAction[] {
    if (this.phase === 'done') return [];
    const ended = this.phase === 'dally';
    this.phase = 'done';
    return [{ kind: 'done', outcome: ended ? 'complete' : 'client-error', detail: `client ERROR ${code}: ${message}` }];
  }

  onTimeout(now: number): WriteAction[] {
    if (this.phase === 'dally') {
      this.phase = 'done';
      return [{ kind: 'done', outcome: 'complete' }];
    }
    if (this.phase !== 'receiving') return [];
    this.stats.timeouts++;
    if (now - this.lastProgressAt >= this.cfg.timing.giveUpMs) {
      this.phase = 'done';
      return [
        { kind: 'error', code: ErrorCode.NOT_DEFINED, message: 'transfer timed out' },
        { kind: 'done', outcome: 'timeout', detail: `no DATA for ${Math.round(now - this.lastProgressAt)} ms` },
      ];
    }
    this.rto.backoff();
    // Resend what the client is waiting for: the OACK before any data, else the last ACK.
    const again: WriteAction = this.received === 0 && this.cfg.sendOack ? { kind: 'oack' } : { kind: 'ack', block: this.received };
    this.acked = this.received;
    return [again, this.timer()];
  }

  abort(outcome: Outcome, message: string, code: number = ErrorCode.NOT_DEFINED): WriteAction[] {
    if (this.phase === 'done') return [];
    if (this.phase === 'dally') {
      // The last block is in and acknowledged (RFC 1350 section 6): the upload is
      // complete for the client, so it gets no ERROR, and it is not an abort.
      this.phase = 'done';
      return [{ kind: 'done', outcome: 'complete', detail: `ended while dallying: ${message}` }];
    }
    this.phase = 'done';
    return [
      { kind: 'error', code, message },
      { kind: 'done', outcome, detail: message },
    ];
  }

  private timer(): WriteAction {
    return { kind: 'timer', ms: this.rto.current };
  }
}
