import { describe, expect, it } from 'vitest';
import { ReadSession, type Action, type ReadSessionConfig, type TimingConfig } from '../../src/tftp/session.js';

const fixed: TimingConfig = { initialMs: 1000, minMs: 10, maxMs: 3000, adaptive: false, giveUpMs: 5000 };
const adaptive: TimingConfig = { ...fixed, adaptive: true };

function session(over: Partial<ReadSessionConfig> = {}): ReadSession {
  return new ReadSession({ size: 2048, blksize: 512, windowsize: 1, sendOack: false, timing: fixed, ...over });
}
const blocks = (a: Action[]): number[] => a.flatMap((x) => (x.kind === 'data' ? [x.block] : []));
const kinds = (a: Action[]): string[] => a.map((x) => x.kind);
const outcome = (a: Action[]): string | undefined => a.find((x): x is Extract<Action, { kind: 'done' }> => x.kind === 'done')?.outcome;

describe('ReadSession (server side of an RRQ)', () => {
  it('sends a file of 2048 bytes at blksize 512 as 5 blocks, the last one empty', () => {
    const s = session();
    expect(s.totalBlocks).toBe(5);
    expect(s.blockRange(5)).toEqual({ start: 2048, end: 2048 });
    let a = s.start(0);
    expect(blocks(a)).toEqual([1]);
    for (let b = 1; b <= 4; b++) {
      a = s.onAck(b, b);
      expect(blocks(a)).toEqual([b + 1]);
    }
    expect(outcome(s.onAck(5, 6))).toBe('complete');
    expect(s.done).toBe(true);
  });

  it('sends a 0-byte file as one empty block', () => {
    const s = session({ size: 0 });
    expect(s.totalBlocks).toBe(1);
    expect(blocks(s.start(0))).toEqual([1]);
    expect(outcome(s.onAck(1, 1))).toBe('complete');
  });

  it('sends the OACK first and DATA 1 only after ACK 0 (RFC 2347)', () => {
    const s = session({ sendOack: true });
    expect(kinds(s.start(0))).toEqual(['oack', 'timer']);
    expect(s.onAck(1, 1)).toEqual([]); // not the OACK's ACK
    expect(blocks(s.onAck(0, 2))).toEqual([1]);
  });

  it('treats a client ERROR right after the OACK as a normal end (EDK2 tsize probe, ERROR 8)', () => {
    const s = session({ sendOack: true });
    s.start(0);
    const a = s.onError(8, 'User aborted the transfer');
    expect(outcome(a)).toBe('probe-aborted');
    expect(kinds(a)).toEqual(['done']); // nothing is sent back to an aborting client
  });

  it('counts a client ERROR during DATA as a client error', () => {
    const s = session();
    s.start(0);
    expect(outcome(s.onError(0, 'disk full'))).toBe('client-error');
  });

  it('retransmits DATA after a timeout, then gives up after giveUpMs without progress', () => {
    const s = session();
    s.start(0);
    let t = 0;
    const sent: number[][] = [];
    for (let i = 0; i < 100 && !s.done; i++) {
      t += 1000;
      const a = s.onTimeout(t);
      if (!s.done) sent.push(blocks(a));
      else {
        expect(a).toEqual([
          { kind: 'error', code: 0, message: 'transfer timed out' },
          { kind: 'done', outcome: 'timeout', detail: 'no ACK for 5000 ms' },
        ]);
      }
    }
    expect(sent).toEqual([[1], [1], [1], [1]]);
    expect(s.stats.retransmits).toBe(4);
    expect(t).toBe(5000);
  });

  it('never answers a duplicate ACK with a resend (Sorcerer\'s Apprentice)', () => {
    const s = session();
    s.start(0);
    expect(blocks(s.onAck(1, 1))).toEqual([2]);
    expect(s.onAck(1, 2)).toEqual([]);
    expect(s.onAck(1, 3)).toEqual([]);
    expect(blocks(s.onAck(2, 4))).toEqual([3]);
    expect(s.stats.duplicateAcks).toBe(2);
  });

  it('ignores stale ACKs (older than the last acknowledged) and ACKs for blocks never sent', () => {
    const s = session({ windowsize: 4, size: 100 * 512 });
    s.start(0);
    s.onAck(4, 1);
    expect(s.onAck(2, 2)).toEqual([]);
    expect(s.onAck(30, 3)).toEqual([]);
    expect(s.stats.staleAcks).toBe(2);
  });

  it('sends a whole window and the next one when the last block of the window is acknowledged', () => {
    const s = session({ windowsize: 4, size: 10 * 512 + 100 });
    expect(blocks(s.start(0))).toEqual([1, 2, 3, 4]);
    expect(blocks(s.onAck(4, 1))).toEqual([5, 6, 7, 8]);
    expect(blocks(s.onAck(8, 2))).toEqual([9, 10, 11]); // 11 blocks in all
    expect(outcome(s.onAck(11, 3))).toBe('complete');
  });

  it('restarts the window after a partial ACK (RFC 7440 section 4: a gap at the receiver)', () => {
    const s = session({ windowsize: 4, size: 20 * 512 });
    s.start(0);
    expect(blocks(s.onAck(2, 1))).toEqual([3, 4, 5, 6]);
    expect(s.stats.retransmits).toBe(2);
  });

  it('on a window timeout first probes with the last block, then resends the window from the first unacknowledged block', () => {
    const s = session({ windowsize: 4, size: 20 * 512 });
    s.start(0);
    s.onAck(4, 1);
    expect(blocks(s.onTimeout(1001))).toEqual([8]);
    expect(blocks(s.onTimeout(2001))).toEqual([5, 6, 7, 8]);
  });

  it('slides, not restarts, when a second partial ACK lands in a window restarted less than an RTT ago (atftp extra ACKs)', () => {
    const s = session({ windowsize: 4, size: 40 * 512, timing: adaptive });
    s.start(0);
    expect(blocks(s.onAck(4, 10))).toEqual([5, 6, 7, 8]); // RTT sample: 10 ms
    expect(blocks(s.onAck(6, 20))).toEqual([7, 8, 9, 10]); // a gap after 6: restart
    expect(blocks(s.onAck(7, 21))).toEqual([11]); // catching up 1 ms later: only the new block
    expect(blocks(s.onAck(11, 31))).toEqual([12, 13, 14, 15]);
    expect(s.stats.retransmits).toBe(2);
  });

  it('restarts again for a partial ACK that comes an RTT or more after the last restart (a new gap)', () => {
    const s = session({ windowsize: 4, size: 40 * 512, timing: adaptive });
    s.start(0);
    s.onAck(4, 10);
    s.onAck(6, 20);
    expect(blocks(s.onAck(8, 40))).toEqual([9, 10, 11, 12]);
  });

  it('rolls block numbers over past 65535 and still matches ACKs (lock-step)', () => {
    const total = 70000;
    const s = session({ blksize: 8, size: (total - 1) * 8 + 3 });
    expect(s.totalBlocks).toBe(total);
    let a = s.start(0);
    for (let b = 1; b < total; b++) {
      expect(blocks(a)).toEqual([b]);
      a = s.onAck(b & 0xffff, b);
    }
    expect(blocks(a)).toEqual([total]);
    expect(outcome(s.onAck(total & 0xffff, total))).toBe('complete');
  });

  it('rolls over inside a window (block 65535 then 0 on the wire)', () => {
    const s = session({ blksize: 8, size: 65540 * 8, windowsize: 8 });
    let a = s.start(0);
    let acked = 0;
    while (acked < 65528) {
      const last = Math.max(...blocks(a));
      a = s.onAck(last & 0xffff, last);
      acked = last;
    }
    expect(blocks(a)).toEqual([65529, 65530, 65531, 65532, 65533, 65534, 65535, 65536]);
    expect(blocks(a).map((b) => b & 0xffff)).toContain(0);
    expect(blocks(s.onAck(0, 1))).toEqual([65537, 65538, 65539, 65540, 65541]);
  });

  it('learns the RTT and shortens the timeout below its initial 1 s (adaptive timing)', () => {
    const s = session({ size: 512 * 50, timing: adaptive });
    s.start(0);
    let t = 0;
    for (let b = 1; b < 20; b++) {
      t += 2;
      s.onAck(b, t);
    }
    expect(s.currentRtoMs).toBeLessThan(50);
    expect(s.currentRtoMs).toBeGreaterThanOrEqual(10);
  });

  it('backs off exponentially on repeated timeouts, up to the ceiling', () => {
    const s = session({ size: 512 * 50, timing: { ...adaptive, initialMs: 100, giveUpMs: 60_000 } });
    s.start(0);
    const rtos: number[] = [];
    let t = 0;
    for (let i = 0; i < 7; i++) {
      t += s.currentRtoMs;
      const a = s.onTimeout(t);
      rtos.push((a.at(-1) as Extract<Action, { kind: 'timer' }>).ms);
    }
    expect(rtos).toEqual([200, 400, 800, 1600, 3000, 3000, 3000]);
  });

  it('drops the backoff as soon as an ACK makes progress, though Karn forbids a sample', () => {
    const s = session({ size: 512 * 50, timing: { ...adaptive, initialMs: 100, giveUpMs: 60_000 } });
    s.start(0);
    s.onTimeout(100);
    s.onTimeout(300);
    expect(s.currentRtoMs).toBe(400);
    s.onAck(1, 350);
    expect(s.currentRtoMs).toBe(100);
  });

  it('sends an ERROR and stops on abort (server shutdown)', () => {
    const s = session();
    s.start(0);
    expect(s.abort('shutdown', 'Server shutting down')).toEqual([
      { kind: 'error', code: 0, message: 'Server shutting down' },
      { kind: 'done', outcome: 'shutdown', detail: 'Server shutting down' },
    ]);
    expect(s.onAck(1, 1)).toEqual([]);
  });
});
