/**
 * What `status` says when a running backfill does not answer, and how long it waits: shared by
 * the SDK's client (backfill-client.ts) and the light path (light-status.ts), so that both say
 * the same.
 */
import { BackfillError } from '../core/errors.ts';

/** How long a progress query waits for a worker to answer. */
export const QUERY_TIMEOUT_MS = 15_000;
/** The same when no worker polls the workflows' task queue: only a worker starting right now could answer. */
export const UNPOLLED_QUERY_TIMEOUT_MS = 3000;

export function noWorkerError(backfillId: string, taskQueue: string): BackfillError {
  return new BackfillError(
    'no_worker',
    `backfill '${backfillId}' is running but no worker polls its workflow task queue '${taskQueue}': start one with 'backfill worker --workflow-queue ${taskQueue}'`,
  );
}

export function noAnswerError(backfillId: string, taskQueue: string): BackfillError {
  return new BackfillError(
    'timeout',
    `backfill '${backfillId}' is running but no worker answered within ${QUERY_TIMEOUT_MS / 1000}s: start one with 'backfill worker' (task queue ${taskQueue})`,
  );
}
