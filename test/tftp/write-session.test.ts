import { describe, expect, it } from 'vitest';
import type { TimingConfig } from '../../src/tftp/session.js';
import { WriteSession, type WriteAction, type WriteSessionConfig } from '../../src/tftp/write-session.js';

const timing: TimingConfig = { initialMs: 1000, minMs: 10, maxMs: 3000, adaptive: false, giveUpMs: 5000 };
const session = (over: Partial<WriteSessionConfig> = {}) =>
  new WriteSession({ blksize: 512, windowsize: 1, sendOack: false, maxBytes: 1 << 20, timing, ...over });
const acks = (a: WriteAction[]) => a.flatMap((x) => (x.kind === 'ack' ? [x.block] : []));
const writes = (a: WriteAction[]) => a.flatMap((x) => (x.kind === 'write' ? [[x.offset, x.data.length, x.last] as const] : []));
const outcome = (a: WriteAction[]) => a.find((x): x is Extract<WriteAction, { kind: 'done' }> => x.kind === 'done')?.outcome;
const blk = (n: number) => Buffer.alloc(n, 0x61);

describe('WriteSession (server side of a WRQ)', () => {
  it('acknowledges WRQ with ACK 0, then each block, and dallies after the last one (RFC 1350)', () => {
    const s = session();
    expect(acks(s.start(0))).toEqual([0]);
    let a = s.onData(1, blk(512), 1);
    expect(writes(a)).toEqual([[0, 512, false]]);
    expect(acks(a)).toEqual([1]);
    a = s.onData(2, blk(100), 2);
    expect(writes(a)).toEqual([[512, 100, true]]);
    expect(acks(a)).toEqual([2]);
    expect(acks(s.onData(2, blk(100), 3))).toEqual([2]); // the final ACK was lost: acknowledge again
    expect(outcome(s.onTimeout(1003))).toBe('complete');
  });

  it('answers accepted options with an OACK instead of ACK 0 (RFC 2347)', () => {
    expect(kindsOf(session({ sendOack: true }).start(0))).toEqual(['oack', 'timer']);
  });

  it('acknowledges every windowsize blocks and the last one (RFC 7440)', () => {
    const s = session({ windowsize: 4 });
    s.start(0);
    const got: number[] = [];
    for (let b = 1; b <= 9; b++) got.push(...acks(s.onData(b, blk(b === 9 ? 10 : 512), b)));
    expect(got).toEqual([4, 8, 9]);
  });

  it('re-acknowledges a duplicate block and reports a gap once', () => {
    const s = session({ windowsize: 4 });
    s.start(0);
    s.onData(1, blk(512), 1);
    expect(acks(s.onData(1, blk(512), 2))).toEqual([1]);
    expect(acks(s.onData(3, blk(512), 3))).toEqual([1]); // 2 is missing
    expect(s.onData(4, blk(512), 4)).toEqual([]); // same gap: no second report
    expect(s.stats).toMatchObject({ duplicates: 1, gaps: 2 });
  });

  it('refuses an upload beyond the quota with ERROR 3 and ends the transfer', () => {
    const s = session({ maxBytes: 1000 });
    s.start(0);
    s.onData(1, blk(512), 1);
    const a = s.onData(2, blk(512), 2);
    expect(a[0]).toMatchObject({ kind: 'error', code: 3 });
    expect(outcome(a)).toBe('quota-exceeded');
    expect(writes(a)).toEqual([]);
  });

  it('resends its last ACK on timeout, then gives up with an ERROR', () => {
    const s = session();
    s.start(0);
    s.onData(1, blk(512), 1);
    expect(acks(s.onTimeout(1001))).toEqual([1]);
    expect(acks(s.onTimeout(3001))).toEqual([1]);
    const end = s.onTimeout(5001);
    expect(outcome(end)).toBe('timeout');
    expect(end[0]).toMatchObject({ kind: 'error', code: 0 });
  });

  it('ends complete, with no ERROR to the client, when stopped after the final ACK (dallying)', () => {
    const s = session();
    s.start(0);
    s.onData(1, blk(100), 1);
    const end = s.abort('shutdown', 'Server shutting down');
    expect(kindsOf(end)).toEqual(['done']);
    expect(outcome(end)).toBe('complete');
    expect(s.abort('shutdown', 'again')).toEqual([]);
    const mid = session();
    mid.start(0);
    mid.onData(1, blk(512), 1);
    const cut = mid.abort('shutdown', 'Server shutting down'); // before the last block: an abort
    expect(kindsOf(cut)).toEqual(['error', 'done']);
    expect(outcome(cut)).toBe('shutdown');
  });

  it('rolls block numbers over past 65535 (block 65536 is 0 on the wire)', () => {
    const s = session({ blksize: 8, maxBytes: 1 << 30 });
    s.start(0);
    for (let b = 1; b <= 65540; b++) {
      const a = s.onData(b & 0xffff, blk(8), b);
      expect(writes(a)).toHaveLength(1);
    }
    expect(s.bytesReceived).toBe(65540 * 8);
    expect(acks(s.onData(65541 & 0xffff, blk(3), 70000))).toEqual([65541]);
  });

  it('rejects a DATA packet larger than the negotiated blksize', () => {
    const s = session({ blksize: 512 });
    s.start(0);
    const a = s.onData(1, blk(513), 1);
    expect(a[0]).toMatchObject({ kind: 'error', code: 4 });
    expect(outcome(a)).toBe('client-error');
  });
});

function kindsOf(a: WriteAction[]): string[] {
  return a.map((x) => x.kind);
}
