import { defineConfig } from 'vitest/config';
import { LongFilesFirst } from './test/sequencer.ts';

/**
 * Test files at once, unit and integration together (one group: vitest asks the same count of
 * both). An integration file spends most of its time waiting (timers, rates, retries' backoffs)
 * with its own workers against the shared dev server, and a unit file is all CPU: run side by
 * side, the unit files use what the waits leave of the two cores, where before they ran first
 * and alone. The sequencer starts the longest files of both first (test/sequencer.ts).
 */
const WORKERS = 4;

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
          // Some unit tests walk the sources or many seeds: seconds on a machine busy with integration files.
          testTimeout: 60_000,
          maxWorkers: WORKERS,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          sequence: { groupOrder: 0 },
          globalSetup: ['test/integration/global-setup.ts'],
          // Test files run backfills at once on one namespace, each on its own warehouse, with
          // the same node ids: one writer per dataset is tested where it is asked for (datasets.test.ts).
          env: { BACKFILL_SHARED_DATASETS: '1', NO_COLOR: '1' },
          testTimeout: 180_000,
          hookTimeout: 180_000,
          maxWorkers: WORKERS,
          fileParallelism: true,
        },
      },
    ],
  },
});
