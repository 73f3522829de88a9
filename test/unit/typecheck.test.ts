/**
 * The sources type-check (`tsc --noEmit`, as `npm run typecheck`), as a test: it then runs beside
 * the other test files instead of before all of them, and a type error fails `npm test` naming
 * its file and line.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

it('the sources type-check with no error', async () => {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const outcome = await promisify(execFile)(process.execPath, [tsc, '--noEmit', '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }).then(
    ({ stdout }) => ({ code: 0, output: stdout }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
  );
  expect(outcome.output.trim(), 'tsc --noEmit found type errors').toBe('');
  expect(outcome.code).toBe(0);
}, 600_000);
