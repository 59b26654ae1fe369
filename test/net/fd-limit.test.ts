import { describe, expect, it } from 'vitest';
import { httpLimitsFor } from '../../src/http/server.js';
import { openFileLimit } from '../../src/net/fd-limit.js';

describe('descriptor limit and the HTTP caps drawn from it', () => {
  it('reads the soft "Max open files" from /proc/self/limits text', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                524288               files\n';
    expect(openFileLimit(1024, text)).toBe(20000);
    expect(openFileLimit(1024, 'Max open files            unlimited            unlimited            files\n')).toBe(Number.MAX_SAFE_INTEGER);
    expect(openFileLimit(777, 'nothing here')).toBe(777);
    expect(openFileLimit()).toBeGreaterThan(0); // this process's own
  });

  it('gives HTTP a quarter of the descriptors, between 64 and 4096 connections', () => {
    expect(httpLimitsFor(1024).maxConnections).toBe(256);
    expect(httpLimitsFor(100).maxConnections).toBe(64);
    expect(httpLimitsFor(1 << 20).maxConnections).toBe(4096);
    expect(httpLimitsFor(1024).maxPerClient).toBeLessThan(httpLimitsFor(1024).maxConnections);
  });
});
