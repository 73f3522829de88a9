/** What to do about a backfill that completed with failures: `status`, `wait` and the Web UI's details say it alike. */
import type { Progress } from './protocol.ts';
import { shellWord } from './shell-word.ts';

/** The next step after a backfill that completed with failures; null for any other state. */
export function retryFailedHint(progress: Pick<Progress, 'state' | 'backfillId'>): string | null {
  if (progress.state !== 'completed_with_failures') return null;
  return `fix the cause, then 'backfill retry-failed ${shellWord(progress.backfillId)}' runs the failed partitions and those they blocked (with --spec <file> when the fix is in the spec)`;
}
