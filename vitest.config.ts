import { defineConfig } from 'vitest/config';
import { LongFilesFirst } from './test/sequencer.ts';

export default defineConfig({
  test: {
    sequence: { sequencer: LongFilesFirst },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Tests read the plain text; CI may force colour (FORCE_COLOR) on the whole run.
          env: { NO_COLOR: '1' },
          // Some unit tests walk the sources or many seeds: seconds on a busy machine.
          testTimeout: 30_000,
          // Two files at a time: the default (one fewer than the cores) ran them one by one, and
          // the model test's two halves alone took four minutes.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          globalSetup: ['test/integration/global-setup.ts'],
          // Test files run backfills at once on one namespace, each on its own warehouse, with
          // the same node ids: one writer per dataset is tested where it is asked for (datasets.test.ts).
          env: { BACKFILL_SHARED_DATASETS: '1', NO_COLOR: '1' },
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Each file starts its own workers against the shared dev server. Most of a file's time is
          // spent waiting (timers, rates, retries' backoffs), so three at a time keep 2 cores busier.
          maxWorkers: 3,
          fileParallelism: true,
        },
      },
    ],
  },
});
