/**
 * The tests' Python: a virtual environment of its own under .backfill/venv, made on first use,
 * with pinned packages from PyPI installed when a test first asks for them (a few seconds).
 * Tests that read backfill's output with tools outside it (OpenLineage's client, DuckDB for
 * Python) run them here.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../host/package.ts';

export const run = promisify(execFile);

export const VENV = join(PACKAGE_ROOT, '.backfill', 'venv');

/** The venv's python, with each of `packages` (name to exact version) installed. */
export async function venvPython(packages: Readonly<Record<string, string>>): Promise<string> {
  const python = join(VENV, 'bin', 'python');
  if (!existsSync(python)) {
    await run('python3', ['-m', 'venv', VENV], { timeout: 120_000 }).catch((error: Error) => {
      throw new Error(`cannot make a Python virtual environment in ${VENV} (on Debian: apt-get install python3-venv): ${error.message}`);
    });
  }
  const missing: string[] = [];
  for (const [name, version] of Object.entries(packages)) {
    const installed = await run(python, ['-c', `import importlib.metadata as m; print(m.version(${JSON.stringify(name)}))`]).then(
      (r) => r.stdout.trim(),
      () => '',
    );
    if (installed !== version) missing.push(`${name}==${version}`);
  }
  if (missing.length > 0) await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...missing], { timeout: 300_000 });
  return python;
}
