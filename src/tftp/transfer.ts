/**
 * Runs one read transfer: wires a ReadSession to its own socket (the transfer
 * ID of RFC 1350), a timer and a byte source. Only glue: every protocol
 * decision is in session.ts.
 */
import type { Clock, TimerHandle } from '../net/clock.js';
import { PUMP_ACKED, PUMP_ANSWERED, PUMP_SENT, PUMP_TOTAL, type Remote, type UdpSocket } from '../net/udp.js';
import { Opcode, dataHeader, errorPacket } from './packet.js';
import type { Action, Outcome, ReadSession } from './session.js';
import type { BlockSource } from '../files/source.js';

export interface TransferResult {
  readonly peer: Remote;
  readonly file: string;
  readonly direction: 'read' | 'write';
  readonly bytes: number;
  readonly size: number;
  readonly blksize: number;
  readonly windowsize: number;
  readonly durationMs: number;
  readonly outcome: Outcome;
  readonly detail?: string;
  readonly retransmits: number;
  readonly timeouts: number;
  /** ACKs the socket's pump answered without JavaScript (fastudp transport only). */
  readonly pumpedAcks?: number;
}

export interface ReadTransferParams {
  readonly socket: UdpSocket;
  readonly clock: Clock;
  readonly source: BlockSource;
  readonly session: ReadSession;
  readonly oack: Buffer | null;
  readonly peer: Remote;
  readonly file: string;
  readonly blksize: number;
  readonly windowsize: number;
  readonly onDone: (r: TransferResult) => void;
}

/** Timer slack: Node may call a timer up to ~1 ms before the computed deadline. */
const TIMER_SLACK_MS = 1;

export class ReadTransfer {
  private readonly startedAt: number;
  private deadline = Infinity;
  private timer: TimerHandle | null = null;
  private timerAt = Infinity;
  private queue: Action[] = [];
  private waiting = false;
  private finished = false;
  /** Shared with the socket's ACK pump once it runs (src/net/udp.ts AckPump). */
  private pumpState: Int32Array | null = null;
  private pumpSeen = 0;

  constructor(private readonly p: ReadTransferParams) {
    this.startedAt = p.clock.now();
    p.socket.onMessage((msg) => this.onPacket(msg));
    p.socket.onError(() => {
      // ICMP port unreachable after the client went away shows up here; the
      // retransmission timer and give-up handle it.
    });
  }

  start(): void {
    this.run(this.p.session.start(this.p.clock.now()));
  }

  /** Ends the transfer from the server side with an ERROR to the client. */
  abort(outcome: Outcome, message: string): void {
    this.run(this.p.session.abort(outcome, message));
  }

  /** A new, different request came from the same client port. */
  supersede(): void {
    this.run(this.p.session.supersede());
  }

  private onPacket(msg: Buffer): void {
    if (this.finished || msg.length < 4) return;
    const op = msg.readUInt16BE(0);
    const now = this.p.clock.now();
    this.syncPump(now);
    if (op === Opcode.ACK) this.run(this.p.session.onAck(msg.readUInt16BE(2), now));
    else if (op === Opcode.ERROR) {
      const end = msg.indexOf(0, 4);
      this.run(this.p.session.onError(msg.readUInt16BE(2), msg.toString('latin1', 4, end < 0 ? msg.length : end)));
    }
    // anything else from the client during a read is ignored (RFC 1350 leaves it undefined)
  }

  private run(actions: Action[]): void {
    if (this.waiting) {
      for (const a of actions) this.queue.push(a);
      return;
    }
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i] as Action;
      if (a.kind === 'data') {
        const { start, end } = this.p.session.blockRange(a.block);
        const bytes = this.p.source.read(start, end);
        if (bytes instanceof Promise) {
          // Only the streaming source gets here, at a chunk boundary: hold the
          // rest of the actions (and any that arrive meanwhile) until the read lands.
          this.waiting = true;
          this.queue = actions.slice(i + 1).concat(this.queue);
          bytes.then(
            (b) => this.resume(a.block, b),
            (err: unknown) => this.resume(a.block, null, err),
          );
          return;
        }
        this.p.socket.send([dataHeader(a.block), bytes]);
      } else this.apply(a);
    }
    this.handOver();
  }

  /**
   * After JavaScript has acted: tell a running pump what was sent, or start
   * one once the transfer is sending DATA from a file wholly in memory. From
   * then on the socket answers each in-order ACK itself and this class sees
   * only the rest (duplicates, gaps, the final ACK, errors) and its timer.
   */
  private handOver(): void {
    const st = this.pumpState;
    const s = this.p.session;
    if (this.finished) return;
    if (st) {
      st[PUMP_ACKED] = s.acked;
      st[PUMP_SENT] = s.sent;
      return;
    }
    if (!this.p.socket.pump || !s.pumpable) return;
    const file = this.p.source.whole?.() ?? null;
    if (!file || file.length !== this.p.source.size) return;
    const state = new Int32Array(new ArrayBuffer(16));
    state[PUMP_ACKED] = s.acked;
    state[PUMP_SENT] = s.sent;
    state[PUMP_TOTAL] = s.totalBlocks;
    this.pumpState = state;
    this.p.socket.pump({ file, blksize: this.p.blksize, windowsize: this.p.windowsize, state });
    this.schedule(this.p.clock.now());
  }

  /** Brings the session up to what the pump did; true when it answered anything since the last look. */
  private syncPump(now: number): boolean {
    const st = this.pumpState;
    if (!st || st[PUMP_ANSWERED] === this.pumpSeen) return false;
    this.pumpSeen = st[PUMP_ANSWERED] as number;
    this.p.session.pumped(st[PUMP_ACKED] as number, st[PUMP_SENT] as number, now);
    return true;
  }

  private resume(block: number, bytes: Buffer | null, err?: unknown): void {
    this.waiting = false;
    const rest = this.queue;
    this.queue = [];
    if (bytes === null) {
      this.run(this.p.session.abort('server-error', `read error: ${String(err)}`));
      return;
    }
    if (!this.finished) this.p.socket.send([dataHeader(block), bytes]);
    this.run(rest);
  }

  private apply(a: Exclude<Action, { kind: 'data' }>): void {
    switch (a.kind) {
      case 'oack':
        if (this.p.oack) this.p.socket.send(this.p.oack);
        break;
      case 'error':
        this.p.socket.send(errorPacket(a.code, a.message));
        break;
      case 'timer':
        this.arm(a.ms);
        break;
      case 'done':
        this.finish(a.outcome, a.detail);
        break;
    }
  }

  /**
   * Re-arming on every packet would cost a timer per packet; instead keep one
   * deadline and a single timer that, when it fires early, re-arms for the rest.
   */
  private arm(ms: number): void {
    const now = this.p.clock.now();
    this.deadline = now + ms;
    this.schedule(now);
  }

  /**
   * The timer fires at the deadline, and while a pump runs also every half
   * timeout to see its progress: a block the pump sent and that was lost is
   * then resent at most 1.5 timeouts after it went out.
   */
  private schedule(now: number): void {
    let at = this.deadline;
    if (this.pumpState) at = Math.min(at, now + Math.max(1, this.p.session.currentRtoMs / 2));
    if (at !== Infinity && (this.timer === null || at < this.timerAt)) {
      this.timer?.cancel();
      this.timerAt = at;
      this.timer = this.p.clock.setTimer(at - now, () => this.onTimer());
    }
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.finished) return;
    const now = this.p.clock.now();
    // the pump's progress moves the deadline as an ACK handled here would
    if (this.syncPump(now)) this.deadline = now + this.p.session.currentRtoMs;
    if (now + TIMER_SLACK_MS >= this.deadline) {
      this.deadline = Infinity;
      this.run(this.p.session.onTimeout(now));
    } else this.schedule(now);
  }

  private finish(outcome: Outcome, detail?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.timer?.cancel();
    this.timer = null;
    this.p.socket.close();
    this.p.source.release();
    const s = this.p.session;
    // the session ends first (abort, timeout) and takes no more of the pump's progress: read it here
    const acked = Math.max(s.acked, this.pumpState?.[PUMP_ACKED] ?? 0);
    const bytes = outcome === 'complete' ? this.p.source.size : Math.min(acked * this.p.blksize, this.p.source.size);
    this.p.onDone({
      peer: this.p.peer,
      file: this.p.file,
      direction: 'read',
      bytes,
      size: this.p.source.size,
      blksize: this.p.blksize,
      windowsize: this.p.windowsize,
      durationMs: Math.round((this.p.clock.now() - this.startedAt) * 1000) / 1000,
      outcome,
      ...(detail !== undefined ? { detail } : {}),
      retransmits: s.stats.retransmits,
      timeouts: s.stats.timeouts,
      ...(this.pumpState ? { pumpedAcks: this.pumpState[PUMP_ANSWERED] as number } : {}),
    });
  }
}
