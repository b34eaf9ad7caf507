// The test set `npm run mutation` (StrykerJS) runs against each mutant: the
// one-thread test files of the core modules. Threaded and CLI tests run the
// compiled dist/ in worker threads or child processes, which a mutant of
// src/ never reaches, and would only add minutes; the few threaded cases
// inside these files skip themselves under BALLOON_SIM_MUTATION.
import { defineConfig } from 'vitest/config';

export const MUTATION_TEST_FILES = [
  'test/buddy.test.ts',
  'test/layout.test.ts',
  'test/sync.test.ts',
  'test/vring.test.ts',
  'test/schedule.test.ts',
  'test/lockstat.test.ts',
  'test/reporting.test.ts',
  'test/aeration.test.ts',
  'test/bench-stats.test.ts',
];

export default defineConfig({
  test: {
    include: MUTATION_TEST_FILES,
    env: { BALLOON_SIM_MUTATION: '1' },
    testTimeout: 60_000,
    // Stryker runs the covering tests once per mutant in one worker thread;
    // without isolation the worker keeps the test files and modules loaded
    // between mutants (the active mutant is read at run time, from Stryker's
    // global), which is most of the time per mutant.
    pool: 'threads',
    isolate: false,
    maxWorkers: 1,
  },
});
