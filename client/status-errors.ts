/**
 * What `status` says when a running backfill does not answer, and how long it waits: shared by
 * the SDK's client (backfill-client.ts) and the light path (light-status.ts), so that both say
 * the same.
 */
import { BackfillError } from '../core/errors.ts';
import { nameText } from '../core/value-text.ts';
import { workerCommand } from './worker-hint.ts';

/** How long a progress query waits for a worker to answer. */
export const QUERY_TIMEOUT_MS = 15_000;
/** The same when no worker polls the workflows' task queue: only a worker starting right now could answer. */
export const UNPOLLED_QUERY_TIMEOUT_MS = 3000;

/** gRPC's FAILED_PRECONDITION. */
const GRPC_FAILED_PRECONDITION = 9;

/**
 * Whether the server refused a call because no worker has polled the task queue lately
 * (FAILED_PRECONDITION "no poller seen for task queue recently, worker may be down", at once,
 * right after the last worker went away): the SDK's errors carry it as a cause, the light
 * path's as its code and message.
 */
export function noPollerSeen(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; depth < 5 && typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, details, message } = e as { code?: unknown; details?: unknown; message?: unknown };
    if (code === GRPC_FAILED_PRECONDITION && /no poller seen/i.test(`${String(details)} ${String(message)}`)) return true;
  }
  return false;
}

/** What a worker needs besides the queue: without the spec's transform modules it fails their partitions. */
export const WORKER_TRANSFORMS = "--transforms <the spec's transforms modules, if it lists any>";

/** The worker that would take a backfill's workflow tasks: its queue, read from the server, is whatever its starter chose (workerCommand writes it as a shell word). */
export function workflowWorker(taskQueue: string): string {
  return `'${workerCommand({ nodes: [] }, [], undefined, taskQueue)} ${WORKER_TRANSFORMS}'`;
}

export function noWorkerError(backfillId: string, taskQueue: string): BackfillError {
  return new BackfillError(
    'no_worker',
    `backfill '${backfillId}' is running but no worker polls its workflow task queue ${nameText(taskQueue)}: start one with ${workflowWorker(taskQueue)}`,
  );
}

export function noAnswerError(backfillId: string, taskQueue: string): BackfillError {
  return new BackfillError(
    'timeout',
    `backfill '${backfillId}' is running but no worker answered within ${QUERY_TIMEOUT_MS / 1000}s: start one with ${workflowWorker(taskQueue)}`,
  );
}
