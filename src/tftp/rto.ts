/**
 * Retransmission timeout from measured round-trip times, after RFC 6298
 * (TCP's estimator): SRTT/RTTVAR smoothing, Karn's rule left to the caller
 * (never sample a retransmitted block), exponential backoff on timeout.
 * Plain TFTP uses a fixed timeout; on a lossy 1 ms link a fixed 1 s timeout
 * stalls a windowed transfer for a thousand round trips per loss.
 */
export interface RtoConfig {
  /** RTO before the first sample (RFC 6298 section 2.1 says 1 s). */
  readonly initialMs: number;
  /** Floor, so event-loop jitter does not cause spurious retransmissions. */
  readonly minMs: number;
  /** Ceiling; a client's RFC 2349 timeout becomes the ceiling for its transfer. */
  readonly maxMs: number;
  /** false: fixed RTO = initialMs (classic TFTP), kept for comparison runs. */
  readonly adaptive: boolean;
}

const ALPHA = 1 / 8; // RFC 6298 section 2.3
const BETA = 1 / 4;
const K = 4;
const GRANULARITY_MS = 1;

export class RtoEstimator {
  private srtt: number | null = null;
  private rttvar = 0;
  /** RTO from the estimator, before backoff. */
  private base: number;
  private factor = 1;

  constructor(private readonly cfg: RtoConfig) {
    this.base = clamp(cfg.initialMs, cfg.minMs, cfg.maxMs);
  }

  /** Smoothed RTT in ms, or null before the first sample. */
  get smoothed(): number | null {
    return this.srtt;
  }

  /** Current timeout in ms, backoff included. */
  get current(): number {
    return Math.min(this.base * this.factor, Math.max(this.cfg.minMs, this.cfg.maxMs));
  }

  /** Feeds one RTT measurement from a block that was sent exactly once. */
  sample(rttMs: number): void {
    if (!this.cfg.adaptive || !(rttMs >= 0)) return;
    if (this.srtt === null) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - rttMs);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * rttMs;
    }
    this.base = clamp(this.srtt + Math.max(GRANULARITY_MS, K * this.rttvar), this.cfg.minMs, this.cfg.maxMs);
  }

  /** RFC 6298 section 5.5: double the timeout after it fired. */
  backoff(): void {
    if (!this.cfg.adaptive) return;
    if (this.base * this.factor < this.cfg.maxMs) this.factor *= 2;
  }

  /**
   * The peer acknowledged new data: drop the backoff, as Linux TCP does on
   * forward progress. Karn's rule forbids sampling retransmitted blocks, so a
   * link that loses something in every window would otherwise never leave
   * backoff and crawl at the ceiling timeout.
   */
  progress(): void {
    this.factor = 1;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), Math.max(lo, hi));
}
