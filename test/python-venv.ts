/**
 * The tests' Python: a virtual environment of its own under .backfill/venv, made on first use,
 * with pinned packages from PyPI installed when a test first asks for them (a few seconds).
 * Tests that read backfill's output with tools outside it (OpenLineage's client, DuckDB for
 * Python) run them here. Test files that ask at once take turns (a lock directory beside the
 * venv), so one makes it and installs while the others wait, then find it ready.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../host/package.ts';

export const run = promisify(execFile);

export const VENV = join(PACKAGE_ROOT, '.backfill', 'venv');

const LOCK = `${VENV}.lock`;
/** Longer than making the venv and installing can take: a lock this old was left by a test process that died. */
const STALE_LOCK_MS = 10 * 60_000;

/** Runs `work` holding the venv's lock, waiting up to `timeoutMs` for another test process to let go. */
async function withVenvLock<T>(work: () => Promise<T>, timeoutMs = STALE_LOCK_MS + 60_000): Promise<T> {
  mkdirSync(join(VENV, '..'), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = (() => {
        try {
          return Date.now() - statSync(LOCK).mtimeMs;
        } catch {
          return 0;
        }
      })();
      if (age > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`the tests' Python venv stayed locked (${LOCK}) for ${Math.round(timeoutMs / 1000)} s: remove the directory if no test runs`);
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** The venv's python, with each of `packages` (name to exact version) installed. */
export function venvPython(packages: Readonly<Record<string, string>>): Promise<string> {
  return withVenvLock(() => prepareVenv(packages));
}

async function prepareVenv(packages: Readonly<Record<string, string>>): Promise<string> {
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
