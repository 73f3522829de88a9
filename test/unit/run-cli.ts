/** Runs the `backfill` command line in-process, for tests of what it prints and how it exits. */
import { vi } from 'vitest';
import { main } from '../../client/cli.ts';

/** What `backfill <args>` printed on stdout (stderr is silenced) and its exit code. */
export async function runCli(...args: string[]): Promise<{ stdout: string; code: number }> {
  let stdout = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const before = process.exitCode;
  try {
    await main(['node', 'backfill', ...args]);
    return { stdout, code: Number(process.exitCode ?? 0) };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = before;
  }
}
