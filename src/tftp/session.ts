/**
 * The read-transfer state machine (server side of an RRQ). Pure: events in
 * (`start`, `onAck`, `onError`, `onTimeout`, `abort`), actions out (send OACK,
 * send DATA block n, send ERROR, arm timer, done). The caller owns the socket,
 * the timer and the file bytes; this class owns only numbers, so it is tested
 * with a fake clock and no I/O.
 *
 * Blocks are numbered absolutely from 1 (RFC 1350) and put on the wire modulo
 * 65536, so files longer than 65535 blocks roll over (block 65535 is followed
 * by block 0, as tftp-hpa, atftp, curl and iPXE expect).
 */
import { ErrorCode } from './packet.js';
import { RtoEstimator, type RtoConfig } from './rto.js';

export interface TimingConfig extends RtoConfig {
  /** Give up when no ACK has advanced the transfer for this long. */
  readonly giveUpMs: number;
}

export interface ReadSessionConfig {
  /** Bytes to send. */
  readonly size: number;
  readonly blksize: number;
  readonly windowsize: number;
  /** true when options were accepted: send an OACK and wait for ACK 0 first (RFC 2347). */
  readonly sendOack: boolean;
  readonly timing: TimingConfig;
}

/**
 * How a transfer ended. `probe-aborted` is a normal end: EDK2 (OVMF) asks
 * `tsize=0`, reads the size from the OACK and aborts with ERROR 8, then asks
 * again for the real transfer. It is not a failure.
 */
export type Outcome = 'complete' | 'probe-aborted' | 'client-error' | 'timeout' | 'shutdown' | 'server-error';

export type Action =
  | { readonly kind: 'oack' }
  | { readonly kind: 'data'; readonly block: number }
  | { readonly kind: 'error'; readonly code: number; readonly message: string }
  | { readonly kind: 'timer'; readonly ms: number }
  | { readonly kind: 'done'; readonly outcome: Outcome; readonly detail?: string };

export interface SessionStats {
  retransmits: number;
  duplicateAcks: number;
  staleAcks: number;
  timeouts: number;
}

type Phase = 'idle' | 'oack' | 'data' | 'done';

export class ReadSession {
  /** Number of DATA blocks: a final short (possibly empty) block always ends the file. */
  readonly totalBlocks: number;
  readonly stats: SessionStats = { retransmits: 0, duplicateAcks: 0, staleAcks: 0, timeouts: 0 };
  private phase: Phase = 'idle';
  private lastAcked = 0;
  private lastSent = 0;
  private lastProgressAt = 0;
  private readonly rto: RtoEstimator;
  /** Karn's rule: the block whose ACK yields an RTT sample; -1 when none is valid. */
  private sampleBlock = -1;
  private sampleSentAt = 0;
  /** First block of the last window resent after a partial ACK, and when (0: none). */
  private restartFrom = 0;
  private restartAt = 0;
  /** Timeouts since the last progress: the first one only probes. */
  private consecutiveTimeouts = 0;

  constructor(private readonly cfg: ReadSessionConfig) {
    this.totalBlocks = Math.floor(cfg.size / cfg.blksize) + 1;
    this.rto = new RtoEstimator(cfg.timing);
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  /** Highest block the client has acknowledged (absolute). */
  get acked(): number {
    return this.lastAcked;
  }

  /** Highest block sent (absolute). */
  get sent(): number {
    return this.lastSent;
  }

  /**
   * Sending DATA (after the OACK, before the end) with an RTT measured: an
   * ACK pump may take over. It yields no samples (nothing it answers is
   * timed), so without one first the timeout would stay at its initial 1 s.
   */
  get pumpable(): boolean {
    return this.phase === 'data' && this.rto.smoothed !== null;
  }

  get currentRtoMs(): number {
    return this.rto.current;
  }

  /** Byte range of an absolute block number. */
  blockRange(block: number): { start: number; end: number } {
    const start = (block - 1) * this.cfg.blksize;
    return { start, end: Math.min(start + this.cfg.blksize, this.cfg.size) };
  }

  start(now: number): Action[] {
    if (this.phase !== 'idle') return [];
    this.lastProgressAt = now;
    if (this.cfg.sendOack) {
      this.phase = 'oack';
      this.sampleBlock = 0;
      this.sampleSentAt = now;
      return [{ kind: 'oack' }, this.timer()];
    }
    this.phase = 'data';
    return this.sendWindow(1, now, false);
  }

  /** An ACK with the 16-bit block number from the wire. */
  onAck(wireBlock: number, now: number): Action[] {
    if (this.phase === 'oack') {
      // RFC 2347: the client acknowledges the OACK with ACK 0.
      if (wireBlock !== 0) {
        this.stats.staleAcks++;
        return [];
      }
      if (this.sampleBlock === 0) this.rto.sample(now - this.sampleSentAt);
      this.rto.progress();
      this.phase = 'data';
      this.lastProgressAt = now;
      return this.sendWindow(1, now, false);
    }
    if (this.phase !== 'data') return [];
    // Map the 16-bit number onto the window [lastAcked, lastSent]: a window is
    // at most 64 blocks, far below 65536, so the mapping is unambiguous.
    const ahead = (wireBlock - (this.lastAcked & 0xffff)) & 0xffff;
    if (ahead === 0) {
      // Sorcerer's Apprentice (RFC 1123 section 4.2.3.1): a duplicate ACK must
      // never trigger a resend, or every later block is sent twice.
      this.stats.duplicateAcks++;
      return [];
    }
    const block = this.lastAcked + ahead;
    if (block > this.lastSent) {
      this.stats.staleAcks++; // an old ACK from before a wrap, or garbage
      return [];
    }
    if (this.sampleBlock > 0 && block >= this.sampleBlock) {
      this.rto.sample(now - this.sampleSentAt);
      this.sampleBlock = -1;
    }
    this.lastAcked = block;
    this.lastProgressAt = now;
    this.consecutiveTimeouts = 0;
    this.rto.progress();
    if (block >= this.totalBlocks) {
      this.phase = 'done';
      return [{ kind: 'done', outcome: 'complete' }];
    }
    if (block === this.lastSent) return this.sendWindow(block + 1, now, false);
    // A partial ACK. RFC 7440 section 4: a receiver that sees a gap
    // acknowledges the last block it got in order, and the next window starts
    // right after it. But atftp answers a resent window with one "extra" ACK
    // per stale block it sees, so ACKs for blocks of a window we restarted
    // less than one RTT ago are the receiver catching up, not new gaps:
    // restarting again for each would send every later window twice.
    const srtt = this.rto.smoothed ?? this.rto.current;
    if (this.restartFrom > 0 && block + 1 >= this.restartFrom && now - this.restartAt < srtt) {
      return this.slide(block);
    }
    this.stats.retransmits += this.lastSent - block;
    this.restartFrom = block + 1;
    this.restartAt = now;
    return this.sendWindow(block + 1, now, true);
  }

  /**
   * The socket answered in-order ACKs itself (an ACK pump, src/net/udp.ts)
   * up to `acked` and has sent blocks through `sent`: the same as handling
   * each of those ACKs here, minus RTT samples (Karn: none was timed).
   */
  pumped(acked: number, sent: number, now: number): void {
    if (this.phase !== 'data' || acked <= this.lastAcked || sent < acked || acked >= this.totalBlocks || sent > this.totalBlocks) return;
    this.lastAcked = acked;
    this.lastSent = Math.max(this.lastSent, sent);
    this.lastProgressAt = now;
    this.consecutiveTimeouts = 0;
    this.sampleBlock = -1;
    this.rto.progress();
  }

  /** Keeps `windowsize` blocks outstanding past `block` without resending any. */
  private slide(block: number): Action[] {
    const last = Math.min(block + this.cfg.windowsize, this.totalBlocks);
    if (last <= this.lastSent) return [];
    const first = this.lastSent + 1;
    const actions: Action[] = [];
    for (let b = first; b <= last; b++) actions.push({ kind: 'data', block: b });
    this.lastSent = last;
    this.sampleBlock = -1;
    actions.push(this.timer());
    return actions;
  }

  onError(code: number, message: string): Action[] {
    if (this.phase === 'done') return [];
    const wasOack = this.phase === 'oack' || this.phase === 'idle';
    this.phase = 'done';
    return [{ kind: 'done', outcome: wasOack ? 'probe-aborted' : 'client-error', detail: `client ERROR ${code}: ${message}` }];
  }

  /** The armed timer fired. */
  onTimeout(now: number): Action[] {
    if (this.phase === 'done' || this.phase === 'idle') return [];
    this.stats.timeouts++;
    if (now - this.lastProgressAt >= this.cfg.timing.giveUpMs) {
      this.phase = 'done';
      const detail = `no ACK for ${Math.round(now - this.lastProgressAt)} ms`;
      return [
        { kind: 'error', code: ErrorCode.NOT_DEFINED, message: 'transfer timed out' },
        { kind: 'done', outcome: 'timeout', detail },
      ];
    }
    this.rto.backoff();
    this.sampleBlock = -1; // Karn: never sample across a retransmission
    this.consecutiveTimeouts++;
    if (this.phase === 'oack') {
      this.stats.retransmits++;
      return [{ kind: 'oack' }, this.timer()];
    }
    if (this.consecutiveTimeouts === 1 && this.lastSent - this.lastAcked > 1) {
      // Tail-loss probe: a window times out only when its ACK or its last
      // blocks were lost (a gap earlier in the window draws an ACK). Resending
      // just the last block settles both: the receiver acknowledges, or
      // reports the gap. The whole window goes again only on a second timeout.
      this.stats.retransmits++;
      return [{ kind: 'data', block: this.lastSent }, this.timer()];
    }
    this.stats.retransmits += this.lastSent - this.lastAcked;
    return this.sendWindow(this.lastAcked + 1, now, true);
  }

  /**
   * The client sent a different request from the same address and port: it
   * has moved on (EDK2 follows its tsize probe with the real RRQ, and the RRQ
   * may overtake the ERROR 8 that ends the probe). End without an ERROR.
   */
  supersede(): Action[] {
    if (this.phase === 'done') return [];
    const wasOack = this.phase === 'oack' || this.phase === 'idle';
    this.phase = 'done';
    return [{ kind: 'done', outcome: wasOack ? 'probe-aborted' : 'client-error', detail: 'superseded by a new request from the same port' }];
  }

  /** Ends the transfer from our side (shutdown, read error). */
  abort(outcome: Outcome, message: string): Action[] {
    if (this.phase === 'done') return [];
    this.phase = 'done';
    return [
      { kind: 'error', code: ErrorCode.NOT_DEFINED, message },
      { kind: 'done', outcome, detail: message },
    ];
  }

  private sendWindow(first: number, now: number, resend: boolean): Action[] {
    const last = Math.min(first + this.cfg.windowsize - 1, this.totalBlocks);
    const actions: Action[] = [];
    for (let b = first; b <= last; b++) actions.push({ kind: 'data', block: b });
    if (last > this.lastSent) this.lastSent = last;
    if (!resend) {
      this.sampleBlock = last;
      this.sampleSentAt = now;
    } else {
      this.sampleBlock = -1;
    }
    actions.push(this.timer());
    return actions;
  }

  private timer(): Action {
    return { kind: 'timer', ms: this.rto.current };
  }
}
