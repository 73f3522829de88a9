/** What `wait --timeout` says of a backfill still open when its time runs out: why, when it is waiting on someone. */
import { BackfillError } from '../core/errors.ts';
import type { Hold } from '../core/governance.ts';
import type { Progress } from '../core/protocol.ts';
import { shellWord } from '../core/shell-word.ts';

/** What a staged backfill or a canary's slice waits for, with the commands that decide it; null in any other state. */
export function decisionAwaited(id: string, state: Progress['state']): string | null {
  const w = shellWord(id);
  if (state === 'staged') return `it has staged its partitions and waits for publish or discard (compare with 'backfill diff ${w}', then 'backfill publish ${w}' or 'backfill discard ${w}')`;
  if (state === 'awaiting_canary') return `it has run its canary's slice and waits for approve or discard (compare with 'backfill diff ${w}', then 'backfill approve ${w} --reason "..."' or 'backfill discard ${w}')`;
  return null;
}

/**
 * `progress` is null when it could not be read. A staged backfill or a canary's slice waits for
 * an operator's decision, which no amount of waiting makes: the message says whose and the command.
 */
export function waitTimedOut(backfillId: string, timeoutMs: number, progress: (Pick<Progress, 'state' | 'paused'> & { governance?: { holds: readonly Hold[] } }) | null): BackfillError {
  const id = backfillId;
  const decision = progress ? decisionAwaited(id, progress.state) : null;
  // A spent budget holds it until set-budget raises it: resume would change nothing. (`wait` has said which budget already.)
  const budget = progress?.governance?.holds.find((h) => h.kind === 'budget');
  const why =
    decision !== null
      ? `: ${decision}`
      : progress?.state === 'awaiting_approval'
          ? `: it waits for the approval its policy asks for before it runs ('backfill status ${shellWord(id)}' says why)`
          : progress?.state === 'waiting_for_window'
            ? `: it waits for its run window to open ('backfill status ${shellWord(id)}' says when)`
            : budget !== undefined
              ? `: a spent budget holds it until 'backfill set-budget ${shellWord(id)}' raises it (resume changes nothing; 'backfill status ${shellWord(id)}' says which budget)`
              : progress?.paused === true
              ? `: it is paused, and starts no partition until 'backfill resume ${shellWord(id)}' ('backfill status ${shellWord(id)}' says who or what paused it)`
              : '';
  return new BackfillError('timeout', `backfill '${id}' did not finish within ${timeoutMs / 1000}s; it is still running${why}`);
}
