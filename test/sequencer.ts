import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Integration files that take minutes, started before the others. Without timings from an
 * earlier run (a clean clone has none), vitest starts larger files first, and these are small:
 * they ran last, one of them alone for the last minute of CI while the other worker sat idle.
 */
const LONG_FILES = ['test/integration/replay.test.ts', 'test/integration/soak.test.ts'];

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
