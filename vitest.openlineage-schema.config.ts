import { defineConfig } from 'vitest/config';

/**
 * Validates backfill's OpenLineage events against OpenLineage's published JSON schemas. Apart
 * from `npm test` because no package registry ships those schemas: they come from an OpenLineage
 * checkout (scripts/openlineage-spec.ts), which a clean machine does not have.
 */
export default defineConfig({
  test: {
    include: ['test/openlineage-schema/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
