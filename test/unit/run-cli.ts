/** Runs the `backfill` command line in-process, for tests of what it prints and how it exits. */
import { vi } from 'vitest';
import { main } from '../../client/cli.ts';

/** What `backfill <args>` printed on stdout and on stderr (which does not reach the terminal) and its exit code. */
export async function runCli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return runCliWith({}, ...args);
}

/** As runCli; `stdoutError`: every write to stdout fails with it (as a pipe whose reader has gone: EPIPE). */
export async function runCliWith(options: { stdoutError?: Error }, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) =>
    options.stdoutError ? written(rest, options.stdoutError) : ((stdout += String(chunk)), written(rest)),
  );
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => ((stderr += String(chunk)), written(rest)));
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

/** As a write that went through (or failed with `error`): its callback (after the chunk, or after its encoding) is called, on the next tick. */
function written(rest: unknown[], error?: Error): boolean {
  const callback = rest.find((arg): arg is (error?: Error) => void => typeof arg === 'function');
  if (callback) process.nextTick(() => callback(error));
  return error === undefined;
}
