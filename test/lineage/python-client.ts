/**
 * OpenLineage's Python client (`openlineage-python` from PyPI) in the tests' virtual environment
 * (`../python-venv.ts`): the consumer the lineage tests read events with.
 */
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../host/package.ts';
import { run, venvPython } from '../python-venv.ts';

export const OPENLINEAGE_PYTHON_VERSION = '1.54.0';
export const READ_EVENTS = join(PACKAGE_ROOT, 'test', 'lineage', 'read_events.py');

/** The venv's python, with the pinned client installed (a few seconds the first time). */
export function pythonWithClient(): Promise<string> {
  return venvPython({ 'openlineage-python': OPENLINEAGE_PYTHON_VERSION });
}

/** What the client read from these files of JSON lines (read_events.py), or its error. */
export async function readWithClient(files: string[], options: { emitUrl?: string; apiKey?: string } = {}): Promise<unknown> {
  const python = await pythonWithClient();
  const args = [READ_EVENTS, ...files, ...(options.emitUrl ? ['--emit-url', options.emitUrl] : []), ...(options.apiKey ? ['--api-key', options.apiKey] : [])];
  const { stdout } = await run(python, args, { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as unknown;
}
