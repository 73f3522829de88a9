/**
 * The exit codes of the `backfill` command, and what each means. `backfill --help` prints
 * this table and docs/operations.md repeats it; test/unit/help.test.ts holds all three equal.
 */
import type { PartitionCounts, Progress } from '../core/protocol.ts';

/** Exit codes: 0 success, 1 an error, 2 ended with failed partitions (or a rollback left some alone), 3 cancelled, failed, or terminated or timed out through Temporal. */
export const EXIT = { ok: 0, error: 1, failures: 2, notCompleted: 3 } as const;

export type ExitName = keyof typeof EXIT;

/** What each exit code means, in the words of `backfill --help` and docs/operations.md. */
export const EXIT_MEANINGS: Readonly<Record<ExitName, string>> = {
  ok: 'success; for wait, start --watch and demo: the backfill completed (start --stage --watch: it is staged; start --canary --watch: its canary waits)',
  error: 'an error: bad input, no server, an unknown id, a wait --timeout that ran out, a worker that had to abandon partitions as it stopped (with --json, the error is on stdout)',
  failures: 'wait, start --watch, demo: the backfill completed with failed partitions (start --stage --watch: it is staged with failed or blocked partitions, which a publish would leave out); rollback: it left alone partitions a later backfill changed',
  notCompleted: 'wait, start --watch, demo: the backfill was cancelled or failed, or terminated or timed out through Temporal (or its staged versions were discarded, or its canary failed)',
};

/**
 * The exit code of a command that waited for a backfill to end (wait, start --watch, demo).
 * `counts`: its failed and blocked partitions, which a staged backfill's state does not tell
 * (a script's `start --stage --watch && backfill publish` would publish it without them).
 */
export function exitCodeFor(state: Progress['state'], counts: Pick<PartitionCounts, 'failed' | 'blocked'> = { failed: 0, blocked: 0 }): number {
  if (state === 'completed') return EXIT.ok;
  if (state === 'completed_with_failures') return EXIT.failures;
  if (state === 'staged' && counts.failed + counts.blocked > 0) return EXIT.failures;
  // A staged backfill has computed everything and waits for `publish` or `discard`; a canary waits for `approve` or `discard`.
  return state === 'running' || state === 'staged' || state === 'awaiting_canary' ? EXIT.ok : EXIT.notCompleted;
}

/** The exit-code table, one line per code: `  0  success; ...`. */
export function exitCodeLines(): string[] {
  return (Object.keys(EXIT) as ExitName[]).map((name) => `  ${EXIT[name]}  ${EXIT_MEANINGS[name]}`);
}
