import { defineConfig } from 'vitest/config';

/**
 * Validates backfill's OpenLineage events against OpenLineage's published JSON schemas. Apart
 * from `npm test` because no package registry ships those schemas: they come from an OpenLineage
 * checkout (scripts/openlineage-spec.ts), which a clean machine does not have.
 */
export default defineConfig({
  test: {
    include: ['test/openlineage-schema/**/*.test.ts'],
    // The shop example runs on a real Temporal dev server, as in the integration suite.
    globalSetup: ['test/integration/global-setup.ts'],
    env: { BACKFILL_SHARED_DATASETS: '1' },
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
