/**
 * OpenLineage's Python client (`openlineage-python` from PyPI) in a virtual environment of its
 * own under .backfill/venv, made on first use: the consumer the lineage tests read events with.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../../host/package.ts';

const run = promisify(execFile);

export const OPENLINEAGE_PYTHON_VERSION = '1.54.0';
export const VENV = join(PACKAGE_ROOT, '.backfill', 'venv');
export const READ_EVENTS = join(PACKAGE_ROOT, 'test', 'lineage', 'read_events.py');

/** The venv's python, with the pinned client installed (a few seconds the first time). */
export async function pythonWithClient(): Promise<string> {
  const python = join(VENV, 'bin', 'python');
  if (!existsSync(python)) {
    await run('python3', ['-m', 'venv', VENV], { timeout: 120_000 }).catch((error: Error) => {
      throw new Error(`cannot make a Python virtual environment in ${VENV} (on Debian: apt-get install python3-venv): ${error.message}`);
    });
  }
  const installed = await run(python, ['-c', "import importlib.metadata as m; print(m.version('openlineage-python'))"]).then(
    (r) => r.stdout.trim(),
    () => '',
  );
  if (installed !== OPENLINEAGE_PYTHON_VERSION) {
    await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `openlineage-python==${OPENLINEAGE_PYTHON_VERSION}`], { timeout: 300_000 });
  }
  return python;
}

/** What the client read from these files of JSON lines (read_events.py), or its error. */
export async function readWithClient(files: string[], options: { emitUrl?: string; apiKey?: string } = {}): Promise<unknown> {
  const python = await pythonWithClient();
  const args = [READ_EVENTS, ...files, ...(options.emitUrl ? ['--emit-url', options.emitUrl] : []), ...(options.apiKey ? ['--api-key', options.apiKey] : [])];
  const { stdout } = await run(python, args, { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as unknown;
}
