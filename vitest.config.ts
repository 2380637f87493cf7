import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests run real builds, strace and servers: give them room, and keep
    // the two cores of a small CI machine for the work itself.
    testTimeout: 120_000,
    hookTimeout: 900_000,
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
    // a `rocmflow server` the developer runs must not answer the tests' runs
    // (test/engine/server.test.ts starts its own, each in its own TMPDIR)
    env: { ROCMFLOW_NO_SERVER: '1' },
  },
});
