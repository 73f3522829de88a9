/** The spec of a project made by `backfill init`, which `dev` and `demo` use when they are not told otherwise. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const PROJECT_SPEC = 'backfill.yaml';

/** The project's spec in `dir` (default: the working directory), if there is one. */
export function projectSpec(dir = process.cwd()): string | undefined {
  const path = resolve(dir, PROJECT_SPEC);
  return existsSync(path) ? path : undefined;
}
