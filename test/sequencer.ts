import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Test files that take most of a minute or more, longest first, by their times in a whole run
 * (unit and integration files side by side, 4 at a time; seconds in the comments, on a quiet
 * 2-core machine). A clean clone has no timings from an earlier run, so vitest starts larger
 * files first, and several of these are small: a long file started late is time the other
 * workers sit idle. Keep it in order when a file's time changes much. Unit files (all CPU) sit
 * among the integration files (mostly waiting) so that they use the cores while those wait.
 */
const LONG_FILES = [
  'integration/replay', // 307
  'integration/staged', // 200
  'integration/fairness', // 161
  'unit/model', // 55 alone
  'integration/rollback', // 149
  'unit/model-second-half', // 50 alone
  'integration/budgets', // 128
  'unit/typecheck', // 60 alone
  'integration/durability', // 125
  'unit/warehouse-lake', // 65
  'integration/demo', // 95
  'integration/temporal-server', // 92
  'integration/policy-pin', // 92
  'integration/rollback-retention', // 92
  'integration/canary', // 91
  'integration/control', // 90
  'integration/package', // 88
  'integration/soak', // 77
  'integration/cli', // 69
  'integration/dropped-warehouse-task', // 67
  'integration/hardening', // 62
  'integration/worker-shutdown', // 57
  'integration/waiting', // 49
  'integration/signed-resume', // 48
  'integration/governance', // 46
  'integration/estimate-sample', // 45
  'integration/observe', // 43
  'integration/report', // 37
  'integration/queue', // 34
  'unit/host', // 29
].map((name) => `test/${name}.test.ts`);

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
