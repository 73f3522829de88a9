/**
 * What `status` says of a backfill whose workflow task keeps failing (a nondeterminism error after
 * an upgrade, a bug that throws in workflow code): the run stays open and makes no progress, and
 * its progress query fails or goes unanswered although workers poll; when a worker that still
 * holds the run answers it, `status` shows that progress with a warning. Shared by the SDK's
 * client (backfill-client.ts) and the light path (light-status.ts).
 *
 * The server retries a failing workflow task without end, and writes only the first failure of a
 * streak to the history (WorkflowTaskFailed, with its cause and message); describing the workflow
 * tells how many attempts the streak has made (`pendingWorkflowTask.attempt`).
 */
import { BackfillError } from '../core/errors.ts';
import { printableText } from './printable.ts';
import { EVENT_TYPE, WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR } from './status-wire.ts';

/** From this attempt on, the workflow task has failed (or timed out) at least once in a row. */
export const FAILING_ATTEMPT = 2;

/**
 * Whether `status` says the task keeps failing: a failure in its history, or more than one
 * attempt lost. A single timeout (a task handed to a worker in the instant it stopped, whose
 * next attempt comes 10 s later: docs/deploying.md) is not a failing task.
 */
export function failingStreak(attempt: number, failure: TaskFailure | undefined): boolean {
  return attempt >= FAILING_ATTEMPT && (failure !== undefined || attempt > FAILING_ATTEMPT);
}

/**
 * The streak of the pending workflow task at `attempt`, with its failure (`readFailure`: one read
 * of the newest events; one that fails tells none); read only from FAILING_ATTEMPT on, so a
 * healthy run costs no read. Undefined when the task is not failing (`failingStreak`).
 */
export async function failingStreakOf(attempt: number, readFailure: () => Promise<TaskFailure | undefined>): Promise<{ failure: TaskFailure | undefined } | undefined> {
  if (attempt < FAILING_ATTEMPT) return undefined;
  const failure = await readFailure().catch(() => undefined);
  return failingStreak(attempt, failure) ? { failure } : undefined;
}

/** The newest events read to find the failure: the streak's failure is followed only by events that arrived since (signals, activities ending, timers). */
export const FAILURE_EVENTS = 50;

/** The first failure of the current streak, as its WorkflowTaskFailed event tells it. */
export type TaskFailure = { atMs?: number; cause?: number; message: string };

/** An int64 as protobufjs gives it: a number (`longs: Number`) or a Long (the SDK's client). */
type Int64 = number | { toNumber(): number };

/** A protobuf Timestamp as a time in ms. */
export function timestampMs(ts: { seconds?: Int64 | null; nanos?: number | null } | null | undefined): number | undefined {
  if (!ts || ts.seconds === undefined || ts.seconds === null) return undefined;
  const seconds = typeof ts.seconds === 'number' ? ts.seconds : ts.seconds.toNumber();
  return seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

/** A history event, as either decoder gives it, with the fields read here. */
export type FailureEvent = {
  eventType?: number | null;
  eventTime?: { seconds?: Int64 | null; nanos?: number | null } | null;
  workflowTaskFailedEventAttributes?: { cause?: number | null; failure?: { message?: string | null } | null } | null;
};

/**
 * The failure that began the current streak, from events newest first: the newest event that
 * ended a workflow task's attempt, when it is a failure (a completed task ends any streak; a
 * streak begun by a timeout has no message to tell).
 */
export function lastTaskFailure(newestFirst: readonly FailureEvent[]): TaskFailure | undefined {
  const ended = newestFirst.find((e) => e.eventType === EVENT_TYPE.workflowTaskCompleted || e.eventType === EVENT_TYPE.workflowTaskTimedOut || e.eventType === EVENT_TYPE.workflowTaskFailed);
  if (ended?.eventType !== EVENT_TYPE.workflowTaskFailed) return undefined;
  const attributes = ended.workflowTaskFailedEventAttributes;
  const atMs = timestampMs(ended.eventTime);
  return { ...(atMs !== undefined ? { atMs } : {}), ...(attributes?.cause ? { cause: attributes.cause } : {}), message: attributes?.failure?.message ?? '' };
}

function isNondeterminism(failure: TaskFailure): boolean {
  return failure.cause === WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR || /TMPRL1100|nondetermini/i.test(failure.message);
}

/** A worker's message, on one line and bounded: the first line of a stack says what failed. */
function messageText(message: string, max = 300): string {
  const line = printableText(message.split('\n')[0]!.trim());
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** `attempt`: the pending workflow task's; `failure`: the streak's first, whose time is the streak's start. */
export function taskFailingError(backfillId: string, attempt: number, failure: TaskFailure | undefined): BackfillError {
  return new BackfillError('workflow_task_failing', taskFailingText(backfillId, attempt, failure));
}

/** `status --json`'s `workflowTaskFailing`: the progress beside it was answered by a worker that still holds the run, and no longer moves. */
export type TaskFailingWarning = { attempt: number; since: string | null; message: string };

/** The warning `status` shows with progress a worker answered while the run's workflow task keeps failing. */
export function taskFailingWarning(backfillId: string, attempt: number, failure: TaskFailure | undefined): TaskFailingWarning {
  const since = failure?.atMs;
  return {
    attempt,
    since: since !== undefined ? new Date(since).toISOString() : null,
    message: `${taskFailingText(backfillId, attempt, failure, 'answered')} The progress shown was answered by a worker that still holds the run: if the task keeps failing, it no longer moves.`,
  };
}

/** `status`'s `workflowTaskFailing` beside progress a worker answered, when the run's task is in a failing streak (`failingStreakOf`: a healthy run costs no read). */
export async function answeredWhileFailing(backfillId: string, attempt: number, readFailure: () => Promise<TaskFailure | undefined>): Promise<{ workflowTaskFailing: TaskFailingWarning } | undefined> {
  const streak = await failingStreakOf(attempt, readFailure);
  return streak ? { workflowTaskFailing: taskFailingWarning(backfillId, attempt, streak.failure) } : undefined;
}

/** `answered`: a worker answered the query, so the run may yet go on (the server refuses queries from the third attempt: this is the first retry). */
function taskFailingText(backfillId: string, attempt: number, failure: TaskFailure | undefined, answered?: 'answered'): string {
  const since = failure?.atMs;
  const times = `${attempt - 1} time${attempt === 2 ? '' : 's'} in a row${since !== undefined ? ` (since ${new Date(since).toISOString()})` : ''}`;
  const head = answered
    ? `backfill '${backfillId}' is running, but its workflow task has failed ${times} and is being tried again.`
    : `backfill '${backfillId}' is running but its workflow task has failed ${times}: the workers poll but cannot run its code, so it makes no progress.`;
  const section = 'see "A backfill whose workflow tasks fail" in docs/operations.md';
  let why: string;
  // None: the streak began with a timeout, the failure is older than the events read, or the read failed.
  if (!failure) why = `Read the workers' log, or the run's history in the Web UI, for why; ${section}.`;
  else if (isNondeterminism(failure)) {
    why = `The workers' code cannot replay this run's history (nondeterminism: ${messageText(failure.message)}): run workers of the code that started it, or reset or terminate the run; ${section}.`;
  } else why = `Its workflow code fails: ${messageText(failure.message) || 'no message'}. Read the workers' log for the stack, and ${section}.`;
  return `${head} ${why}`;
}
