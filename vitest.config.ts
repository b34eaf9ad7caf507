import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Threaded tests start their own worker threads; keep vitest's own pool small
    // so the 2-core machine is not oversubscribed twice over.
    pool: 'forks',
    maxWorkers: 2,
  },
});
