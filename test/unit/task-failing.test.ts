/**
 * A running backfill whose workflow task keeps failing (a nondeterminism error, a bug that throws
 * in workflow code): workers poll, but none can answer its progress query. `status` says so, with
 * the failure its history keeps, instead of "no worker answered": on the light path and the SDK's.
 */
import { describe, expect, it } from 'vitest';
import { statusOf, type StatusReads } from '../../client/light-status.ts';
import { StatusRpcError, type PendingWorkflowTask } from '../../client/status-rpc.ts';
import { EVENT_TYPE, WORKFLOW_EXECUTION_STATUS_RUNNING } from '../../client/status-wire.ts';
import { failingStreakOf, lastTaskFailure, taskFailingWarning, type FailureEvent, type TaskFailure } from '../../client/task-failing.ts';
import { fakeBackfillClient, noDeadline } from './fake-backfill-client.ts';

const SINCE = Date.parse('2026-12-06T10:00:00.000Z');
const BUG: TaskFailure = { atMs: SINCE, cause: 14, message: 'a bug in workflow code\n    at backfillWorkflow (workflows/backfill.ts:12:9)' };
const REPLAY: TaskFailure = {
  atMs: SINCE,
  cause: 24,
  message: '[TMPRL1100] Nondeterminism error: Non-deprecated patch marker encountered for change warehouse-lease, but there is no corresponding change command!',
};
const progress = { backfillId: 'b1', state: 'running', paused: false, nodes: [] };

/** Reads of a run whose workflow task is at `attempt`; `answers`: whether its progress query is answered (else it times out). */
function reads(attempt: number | undefined, failure: TaskFailure | undefined, answers = false, pollers = [{ identity: 'w@h', lastAccessMs: Date.now() }]) {
  const asked = { failure: 0 };
  const workflowTask: PendingWorkflowTask | undefined = attempt === undefined ? undefined : { attempt };
  const rpc: StatusReads = {
    describe: async () => ({ runId: 'r1', type: 'backfillWorkflow', status: WORKFLOW_EXECUTION_STATUS_RUNNING, taskQueue: 'q', ...(workflowTask ? { workflowTask } : {}) }),
    query: async (_workflowId: string, query: string) => {
      if (answers && query === 'progress') return progress;
      throw new StatusRpcError('QueryWorkflow', 4, 'context deadline exceeded');
    },
    firstInput: async () => undefined,
    taskFailure: async () => (asked.failure++, failure),
    pollers: async () => pollers,
  };
  return { rpc, asked };
}

describe('status of a backfill whose workflow task keeps failing (the light path)', () => {
  it('says the workers cannot run its code, how many times it failed since when, and the failure its history keeps', async () => {
    const { rpc, asked } = reads(5, BUG);
    const error = await statusOf(rpc, 'b1').catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'workflow_task_failing',
      message:
        "backfill 'b1' is running but its workflow task has failed 4 times in a row (since 2026-12-06T10:00:00.000Z): the workers poll but cannot run its code, so it makes no progress. " +
        'Its workflow code fails: a bug in workflow code. Read the workers\' log for the stack, and see "A backfill whose workflow tasks fail" in docs/operations.md.',
    });
    expect(asked.failure).toBe(1);
  });

  it('words a nondeterminism error as code that cannot replay the history', async () => {
    const error = (await statusOf(reads(3, REPLAY).rpc, 'b1').catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ code: 'workflow_task_failing' });
    expect(error.message).toContain('has failed 2 times in a row (since 2026-12-06T10:00:00.000Z)');
    expect(error.message).toContain("The workers' code cannot replay this run's history (nondeterminism: [TMPRL1100] Nondeterminism error: Non-deprecated patch marker");
    expect(error.message).toContain('run workers of the code that started it, or reset or terminate the run; see "A backfill whose workflow tasks fail" in docs/operations.md.');
  });

  it('without the failure (its history read failed, or the streak began with a timeout), says where to look', async () => {
    const error = (await statusOf(reads(3, undefined).rpc, 'b1').catch((e: unknown) => e)) as Error;
    expect(error.message).toBe(
      "backfill 'b1' is running but its workflow task has failed 2 times in a row: the workers poll but cannot run its code, so it makes no progress. " +
        'Read the workers\' log, or the run\'s history in the Web UI, for why; see "A backfill whose workflow tasks fail" in docs/operations.md.',
    );
  });

  it('at its first attempt, or with no task pending, is the usual timeout, without reading the history', async () => {
    for (const attempt of [1, undefined]) {
      const { rpc, asked } = reads(attempt, BUG);
      await expect(statusOf(rpc, 'b1')).rejects.toMatchObject({ code: 'timeout', message: expect.stringContaining('no worker answered within 15s') });
      expect(asked.failure).toBe(0);
    }
  });

  it('after a single timeout (a task dropped by a worker stopping) rather than a failure, is the usual timeout', async () => {
    const { rpc, asked } = reads(2, undefined);
    await expect(statusOf(rpc, 'b1')).rejects.toMatchObject({ code: 'timeout' });
    expect(asked.failure).toBe(1);
  });

  it('after a single failure, says so', async () => {
    await expect(statusOf(reads(2, BUG).rpc, 'b1')).rejects.toMatchObject({ code: 'workflow_task_failing', message: expect.stringContaining('has failed 1 time in a row (since') });
  });

  it('with no worker polling its queue, is no_worker', async () => {
    await expect(statusOf(reads(5, BUG, false, []).rpc, 'b1')).rejects.toMatchObject({ code: 'no_worker' });
  });

  it('answered at its first attempt, or with no task pending, is the progress alone, and reads no history', async () => {
    for (const attempt of [1, undefined]) {
      const { rpc, asked } = reads(attempt, BUG, true);
      const status = await statusOf(rpc, 'b1');
      expect(status).toMatchObject({ state: 'running', waiting: [] });
      expect(status).not.toHaveProperty('workflowTaskFailing');
      expect(asked.failure).toBe(0);
    }
  });

  it('answered by a worker that still holds the run while its task keeps failing, is the progress with a warning that it no longer moves', async () => {
    const { rpc, asked } = reads(5, BUG, true);
    expect(await statusOf(rpc, 'b1')).toMatchObject({
      state: 'running',
      waiting: [],
      workflowTaskFailing: {
        attempt: 5,
        since: '2026-12-06T10:00:00.000Z',
        message:
          "backfill 'b1' is running, but its workflow task has failed 4 times in a row (since 2026-12-06T10:00:00.000Z) and is being tried again. " +
          'Its workflow code fails: a bug in workflow code. Read the workers\' log for the stack, and see "A backfill whose workflow tasks fail" in docs/operations.md. ' +
          'The progress shown was answered by a worker that still holds the run: if the task keeps failing, it no longer moves.',
      },
    });
    expect(asked.failure).toBe(1);
  });

  it('answered after a single timeout (no failure in its history), is the progress alone', async () => {
    const { rpc, asked } = reads(2, undefined, true);
    expect(await statusOf(rpc, 'b1')).not.toHaveProperty('workflowTaskFailing');
    expect(asked.failure).toBe(1);
  });
});

/** A BackfillClient of a run whose workflow task is at `attempt`, its failure REPLAY; `answers`: whether its progress query is answered (else it times out). */
function sdkClient(attempt: number, answers = false) {
  const timedOut = Object.assign(new Error('4 DEADLINE_EXCEEDED: context deadline exceeded'), { code: 4 });
  const handle = {
    describe: async () => ({
      type: 'backfillWorkflow',
      status: { name: 'RUNNING' },
      taskQueue: 'q',
      runId: 'r1',
      startTime: new Date(),
      raw: { pendingWorkflowTask: { attempt }, pendingActivities: [] },
    }),
    query: async (query: { name: string }) => {
      if (answers && query.name === 'progress') return progress;
      throw timedOut;
    },
  };
  const read: Array<{ maximumPageSize?: number }> = [];
  const client = fakeBackfillClient({
    client: { workflow: { getHandle: () => handle }, withDeadline: noDeadline },
    workflowService: {
      describeTaskQueue: async () => ({ pollers: [{ identity: 'w@h', lastAccessTime: { seconds: Math.floor(Date.now() / 1000), nanos: 0 } }] }),
      getWorkflowExecutionHistory: async () => ({ history: { events: [] } }),
      getWorkflowExecutionHistoryReverse: async (request: { maximumPageSize?: number }) => {
        read.push(request);
        const events: FailureEvent[] = [
          { eventType: EVENT_TYPE.workflowTaskFailed, eventTime: { seconds: { toNumber: () => SINCE / 1000 }, nanos: 0 }, workflowTaskFailedEventAttributes: { cause: 24, failure: { message: REPLAY.message } } },
        ];
        return { history: { events } };
      },
    },
  });
  return { client, read };
}

describe("status of a backfill whose workflow task keeps failing (the SDK's path)", () => {
  it('says the same, from the description and the history read in reverse', async () => {
    const { client, read } = sdkClient(4);
    const error = (await client.status('b1').catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ code: 'workflow_task_failing' });
    expect(error.message).toContain("backfill 'b1' is running but its workflow task has failed 3 times in a row (since 2026-12-06T10:00:00.000Z)");
    expect(error.message).toContain("The workers' code cannot replay this run's history");
    expect(read).toHaveLength(1);
  });

  it('answered by a worker that still holds the run, is the progress with the warning', async () => {
    const { client, read } = sdkClient(4, true);
    const status = await client.status('b1');
    expect(status).toMatchObject({ state: 'running', waiting: [], workflowTaskFailing: { attempt: 4, since: '2026-12-06T10:00:00.000Z' } });
    expect(status.workflowTaskFailing?.message).toContain("its workflow task has failed 3 times in a row (since 2026-12-06T10:00:00.000Z) and is being tried again. The workers' code cannot replay");
    expect(status.workflowTaskFailing?.message).toMatch(/The progress shown was answered by a worker that still holds the run: if the task keeps failing, it no longer moves\.$/);
    expect(read).toHaveLength(1);
  });

  it('answered at its first attempt, is the progress alone, and reads no history', async () => {
    const { client, read } = sdkClient(1, true);
    expect(await client.status('b1')).not.toHaveProperty('workflowTaskFailing');
    expect(read).toHaveLength(0);
  });
});

describe('failingStreakOf', () => {
  const readOf = (failure: TaskFailure | undefined | Error) => {
    const asked = { reads: 0 };
    const read = async () => {
      asked.reads++;
      if (failure instanceof Error) throw failure;
      return failure;
    };
    return { read, asked };
  };

  it('reads nothing below the failing attempt', async () => {
    const { read, asked } = readOf(BUG);
    expect(await failingStreakOf(1, read)).toBeUndefined();
    expect(await failingStreakOf(0, read)).toBeUndefined();
    expect(asked.reads).toBe(0);
  });

  it('is a streak with a failure in the history, or past a second attempt; a read that fails tells no failure', async () => {
    expect(await failingStreakOf(2, readOf(BUG).read)).toEqual({ failure: BUG });
    expect(await failingStreakOf(2, readOf(undefined).read)).toBeUndefined();
    expect(await failingStreakOf(3, readOf(undefined).read)).toEqual({ failure: undefined });
    expect(await failingStreakOf(3, readOf(new Error('history gone')).read)).toEqual({ failure: undefined });
  });
});

describe('taskFailingWarning', () => {
  it('tells the streak, its start and why, and that the progress shown no longer moves if the task keeps failing', () => {
    expect(taskFailingWarning('b1', 3, BUG)).toEqual({
      attempt: 3,
      since: '2026-12-06T10:00:00.000Z',
      message: expect.stringMatching(/^backfill 'b1' is running, but its workflow task has failed 2 times in a row \(since 2026-12-06T10:00:00.000Z\) and is being tried again\. .*Its workflow code fails: a bug in workflow code\..* if the task keeps failing, it no longer moves\.$/),
    });
  });

  it('without a failure in the history, has no time it began', () => {
    expect(taskFailingWarning('b1', 4, undefined)).toMatchObject({ attempt: 4, since: null, message: expect.stringContaining('has failed 3 times in a row and is being tried again') });
  });
});

describe('lastTaskFailure', () => {
  const at = (seconds: number) => ({ seconds, nanos: 0 });
  const failed = (message: string, seconds: number): FailureEvent => ({ eventType: EVENT_TYPE.workflowTaskFailed, eventTime: at(seconds), workflowTaskFailedEventAttributes: { cause: 14, failure: { message } } });
  const signalled: FailureEvent = { eventType: 26, eventTime: at(30) };

  it('is the newest failure when no workflow task ended after it (the first of the streak: the server writes no other)', () => {
    expect(lastTaskFailure([signalled, failed('now', 20), { eventType: EVENT_TYPE.workflowTaskCompleted }, failed('before', 10)])).toEqual({ atMs: 20_000, cause: 14, message: 'now' });
  });

  it('is none when the newest ending of a task is a completion (an older streak) or a timeout (no message), or nothing was read', () => {
    expect(lastTaskFailure([signalled, { eventType: EVENT_TYPE.workflowTaskCompleted }, failed('before', 10)])).toBeUndefined();
    expect(lastTaskFailure([{ eventType: EVENT_TYPE.workflowTaskTimedOut }, failed('before', 10)])).toBeUndefined();
    expect(lastTaskFailure([])).toBeUndefined();
  });
});
