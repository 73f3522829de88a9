/** What to do about a backfill that completed with failures: `status`, `wait` and the Web UI's details say it alike. */
import { upstreamSuspect } from './kept-output.ts';
import { PARTITION_FAILURES, type NodeProgress, type Progress } from './protocol.ts';
import { shellWord } from './shell-word.ts';

type Hinted = Pick<Progress, 'state' | 'backfillId'> & { nodes?: ReadonlyArray<Pick<NodeProgress, 'id' | 'done' | 'failed' | 'blocked' | 'failures'>> };

/**
 * The next step after a backfill that completed with failures; null for any other state. A check
 * that failed downstream of what this backfill published may have caught bad upstream data, which
 * retry-failed would not recompute: the hint then says so, and what does.
 */
export function retryFailedHint(progress: Hinted): string | null {
  if (progress.state !== 'completed_with_failures') return null;
  const retry = `fix the cause, then 'backfill retry-failed ${shellWord(progress.backfillId)}' runs the failed partitions and those they blocked (with --spec <file> when the fix is in the spec)`;
  const suspect = progress.nodes ? upstreamSuspect({ backfillId: progress.backfillId, nodes: progress.nodes }, PARTITION_FAILURES.checkFailed) : null;
  return suspect === null ? retry : `${retry}. ${suspect}`;
}
