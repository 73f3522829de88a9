/** Runs the `backfill` command line in-process, for tests of what it prints and how it exits. */
import { vi } from 'vitest';
import { main } from '../../client/cli.ts';

/** What `backfill <args>` printed on stdout and on stderr (which does not reach the terminal) and its exit code. */
export async function runCli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  const before = process.exitCode;
  try {
    await main(['node', 'backfill', ...args]);
    return { stdout, stderr, code: Number(process.exitCode ?? 0) };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = before;
  }
}
