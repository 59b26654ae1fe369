import { describe, expect, it } from 'vitest';
import { decideRange } from '../../src/http/range.js';

describe('HTTP Range (RFC 9110 section 14)', () => {
  it.each([
    [undefined, 100, { kind: 'full' }],
    ['bytes=0-9', 100, { kind: 'partial', start: 0, end: 9 }],
    ['bytes=90-', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=90-500', 100, { kind: 'partial', start: 90, end: 99 }], // end clamped to the size
    ['bytes=-10', 100, { kind: 'partial', start: 90, end: 99 }], // suffix
    ['bytes=-500', 100, { kind: 'partial', start: 0, end: 99 }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=9-0', 100, { kind: 'full' }], // invalid spec: ignored
    ['bytes=0-1,5-6', 100, { kind: 'full' }], // several ranges: whole file (allowed by 14.2)
    ['items=0-1', 100, { kind: 'full' }],
    ['bytes=-', 100, { kind: 'full' }],
  ] as const)('%s of %i bytes', (h, size, want) => {
    expect(decideRange(h, size)).toEqual(want);
  });
});
