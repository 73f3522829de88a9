/**
 * What a failed write to stdout does. A command that prints and ends takes a closed pipe (EPIPE:
 * its reader stopped early, as in `backfill dev --help | head`) as the end of its work, quietly.
 * A long-lived command (worker, dev) does not: its partitions would stop with no word. It prints
 * through `printJsonWhileServing`, and a failed write is an error of its own start (client/serve.ts).
 */
import { EXIT } from './exit-codes.ts';

let serving = false;

/** The `error` listener of process.stdout (client/main.ts). */
export function onStdoutError(error: NodeJS.ErrnoException): void {
  // A long-lived command is told of it by its write's callback, and stops what it started.
  if (serving) return;
  if (error.code !== 'EPIPE') throw error;
  process.exit(EXIT.ok);
}

/** Writes `value` as JSON on stdout for a long-lived command (`--json`): resolves once it is written, rejects with the write's error. */
export function printJsonWhileServing(value: unknown): Promise<void> {
  serving = true;
  return new Promise((done, failed) => {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`, (error) => (error ? failed(error) : done()));
  });
}
