/**
 * What `status` says when a running backfill does not answer, and how long it waits: shared by
 * the SDK's client (backfill-client.ts) and the light path (light-status.ts), so that both say
 * the same.
 */
import { BackfillError } from '../core/errors.ts';
import { nameText } from '../core/value-text.ts';
import { LIVE_POLL_AGE_MS, type Poller } from './waiting.ts';
import { workerCommand } from './worker-hint.ts';

/** How long a progress query waits for a worker to answer. */
export const QUERY_TIMEOUT_MS = 15_000;
/** The same when no worker polls the workflows' task queue: only a worker starting right now could answer. */
export const UNPOLLED_QUERY_TIMEOUT_MS = 3000;

/** gRPC's FAILED_PRECONDITION. */
const GRPC_FAILED_PRECONDITION = 9;
/** gRPC's RESOURCE_EXHAUSTED: the server's word for a workflow too busy to take a query (`BusyWorkflow`). */
const GRPC_RESOURCE_EXHAUSTED = 8;

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

/**
 * What the server said when it refused a query because the workflow is busy (RESOURCE_EXHAUSTED,
 * cause BusyWorkflow: "consistent query buffer is full", too many queries or updates in flight),
 * or undefined for any other error. The SDK's errors carry it as a cause, the light path's as its
 * code and message.
 */
export function busyRefusal(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; depth < 5 && typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, details, message } = e as { code?: unknown; details?: unknown; message?: unknown };
    const said = [details, message].find((t): t is string => typeof t === 'string' && t.trim() !== '') ?? '';
    if (code === GRPC_RESOURCE_EXHAUSTED || /RESOURCE_EXHAUSTED|BusyWorkflow|query buffer is full/i.test(said)) {
      return `the server refused a query: ${said.replace(/^\d+ RESOURCE_EXHAUSTED: /, '').trim().slice(0, 200) || 'resource exhausted'}`;
    }
  }
  return undefined;
}

/** A live worker's newest poll, with some slack for the server's and the client's clocks. */
const POLLED_LATELY_MS = LIVE_POLL_AGE_MS + 10_000;

/**
 * Whether a worker polled the workflow task queue lately (the server's list, read beside the
 * query): a live worker renews its poll at least once a minute, and at once when it is given a
 * task (a query). A worker that stopped less than a minute ago still looks so: the server keeps
 * its last poll's time for minutes. False too when the list is unknown (not allowed).
 *
 * `now` is the client's clock against the server's poll times: a client clock more than the
 * slack ahead makes a live worker look gone (and status gives up after the short wait). No
 * answer of the calls status makes carries the server's time now (DescribeWorkflowExecution of a
 * running workflow has no execution duration, only past times; DescribeTaskQueue only the poll
 * times judged here; gRPC answers carry no Date), and past times bound it from below only, so
 * the clock stays the client's; whether a poll came between two looks (`unansweredError`)
 * needs no clock.
 */
export function polledLately(pollers: readonly Poller[] | undefined, now = Date.now()): boolean {
  return (pollers ?? []).some((p) => p.lastAccessMs !== undefined && now - p.lastAccessMs <= POLLED_LATELY_MS);
}

/** The server's time of the newest poll of these pollers (0: none). */
function newestPoll(pollers: readonly Poller[] | undefined): number {
  return Math.max(0, ...(pollers ?? []).map((p) => p.lastAccessMs ?? 0));
}

/**
 * A running backfill whose workflow did not answer while workers poll its workflow task queue
 * (or that the server called busy): it is busy (a flood of queries or updates, a long workflow
 * task), not without a worker, and another worker would not help. Code `timeout`, as an
 * unanswered query's; `why` says what was seen.
 */
export class WorkflowBusyError extends BackfillError {
  constructor(
    backfillId: string,
    taskQueue: string,
    readonly why: string,
  ) {
    super('timeout', `backfill '${backfillId}' is running but its workflow is busy (${why}): workers poll its workflow task queue ${nameText(taskQueue)}, so no worker is missing; try again`);
  }
}

/**
 * Why a running backfill's query got no answer: its workflow is busy when a worker polled its
 * workflow task queue while the query waited (`before` and `after` it, the server's lists), with
 * the server's refusal as why when it refused (RESOURCE_EXHAUSTED: with no worker taking the
 * pending task, status' own queries fill the buffer too); else no worker answered (a live worker
 * given the query would have polled again; a killed one is listed with its last poll for minutes).
 */
export function unansweredError(backfillId: string, taskQueue: string, error: unknown, before: readonly Poller[] | undefined, after: readonly Poller[] | undefined): BackfillError {
  if (before === undefined || newestPoll(after) <= newestPoll(before)) return noAnswerError(backfillId, taskQueue);
  return new WorkflowBusyError(backfillId, taskQueue, busyRefusal(error) ?? `no answer within ${QUERY_TIMEOUT_MS / 1000}s, while a worker polled its queue`);
}
