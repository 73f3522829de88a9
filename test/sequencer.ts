import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Integration files that take most of a minute or more, longest first, by their times in CI
 * (fresh clone, 3 files at a time; seconds in the comments, under that load). A clean clone has
 * no timings from an earlier run, so vitest starts larger files first, and several of these are
 * small: queue and fairness ran last, and the suite waited on them. Keep it in order when a
 * file's time changes much: a long file started late is time the other workers sit idle.
 */
const LONG_FILES = [
  'replay', // 283
  'staged', // 199
  'durability', // 173
  'rollback', // 170
  'fairness', // 166
  'budgets', // 131
  'rollback-retention', // 109
  'temporal-server', // 96
  'cli', // 93
  'policy-pin', // 92
  'canary', // 91
  'demo', // 79
  'package', // 78
  'control', // 78
  'soak', // 70
  'worker-shutdown', // 60
  'hardening', // 59
  'report', // 53
  'waiting', // 51
  'estimate-sample', // 50
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
