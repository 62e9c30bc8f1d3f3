import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql ships index.js and index.mjs without an exports map: Node (and so yoga) loads
    // index.js, Vite would pick index.mjs, and two copies fail each other's instanceof checks.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // The JSON report lets .ci/run close with a plain "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Child-process and crash tests spawn their own processes; two workers keep a
    // 2-core machine responsive.
    maxWorkers: 2,
  },
});
