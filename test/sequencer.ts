import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Integration files that take most of a minute or more, longest first, by their times in CI
 * (fresh clone, 3 files at a time; seconds in the comments, under that load). A clean clone has
 * no timings from an earlier run, so vitest starts larger files first, and several of these are
 * small: queue and fairness ran last, and the suite waited on them. Keep it in order when a
 * file's time changes much: a long file started late is time the other workers sit idle.
 */
const LONG_FILES = [
  'replay', // 316
  'queue', // 207
  'staged', // 197
  'rollback', // 180
  'fairness', // 166
  'durability', // 145
  'budgets', // 120
  'rollback-retention', // 120
  'demo', // 115
  'canary', // 107
  'temporal-server', // 98
  'cli', // 85
  'package', // 84
  'policy-pin', // 82
  'soak', // 73
  'control', // 71
  'hardening', // 62
  'worker-shutdown', // 56
  'signed-resume', // 54
  'lineage-lifecycle', // 51
].map((name) => `test/integration/${name}.test.ts`);

const rank = (file: TestSpecification): number => {
  const i = LONG_FILES.findIndex((path) => file.moduleId.endsWith(path));
  return i === -1 ? LONG_FILES.length : i;
};

/** Vitest's order, with LONG_FILES moved to the front of their group. */
export class LongFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const group = (file: TestSpecification) => file.project.config.sequence.groupOrder ?? 0;
    return sorted
      .map((file, index) => ({ file, index }))
      .sort((a, b) => group(a.file) - group(b.file) || rank(a.file) - rank(b.file) || a.index - b.index)
      .map(({ file }) => file);
  }
}
