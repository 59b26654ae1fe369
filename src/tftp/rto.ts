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
  private rto: number;

  constructor(private readonly cfg: RtoConfig) {
    this.rto = clamp(cfg.initialMs, cfg.minMs, cfg.maxMs);
  }

  /** Current timeout in ms. */
  get current(): number {
    return this.rto;
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
    this.rto = clamp(this.srtt + Math.max(GRANULARITY_MS, K * this.rttvar), this.cfg.minMs, this.cfg.maxMs);
  }

  /** RFC 6298 section 5.5: double the timeout after it fired. */
  backoff(): void {
    if (!this.cfg.adaptive) return;
    this.rto = Math.min(this.rto * 2, this.cfg.maxMs);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), Math.max(lo, hi));
}
