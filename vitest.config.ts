import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Network tests build namespaces and run real clients; they are slow by nature.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Interop suites each create their own namespaces; running files in
    // parallel would oversubscribe a 2-core machine and skew retransmit timing.
    fileParallelism: false,
    // the JSON report lets .ci/run print a plain "N passed, N failed" closing line
    reporters: ['default', 'json'],
    outputFile: { json: 'node_modules/.cache/bootd-vitest.json' },
  },
});
