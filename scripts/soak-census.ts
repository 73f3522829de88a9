/**
 * What the workflows of a soak went through, read from Temporal: every run's history (failed and
 * timed-out workflow tasks, timed-out and failed activities) at the end, and, when a backfill
 * stops moving, which of its running workflows is stuck on what.
 */
import type { WorkflowExecutionInfo } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { BackfillClient } from '../client/backfill-client.ts';

const { EventType, WorkflowTaskFailedCause, TimeoutType } = proto.temporal.api.enums.v1;

export type HistoryCensus = {
  /** Runs of the parent and the node workflows (continue-as-new makes many), by how they closed. */
  runs: Record<string, number>;
  events: number;
  /** WorkflowTaskFailed events, by cause (a failure the worker retried, unless the run is still open at the end). */
  workflowTaskFailures: Record<string, number>;
  workflowTaskTimeouts: number;
  /** Activities that took more than one attempt, by what ended the attempt before the last (the server retries without writing failed attempts to history). */
  activityRetries: Record<string, number>;
  /** Activities whose last attempt timed out (ActivityTaskTimedOut), by timeout type. */
  activityTimeouts: Record<string, number>;
  activityFailures: number;
  /** Runs that did not end well: still running when the backfill had ended, failed, terminated or timed out. */
  notClosedWell: string[];
};

const CLOSED_WELL = new Set(['COMPLETED', 'CONTINUED_AS_NEW']);

function enumName(names: Record<number, string>, value: number | null | undefined, prefix: string): string {
  return (names[value ?? 0] ?? String(value)).replace(prefix, '');
}

async function executionsOf(client: BackfillClient, backfillId: string, extra = ''): Promise<WorkflowExecutionInfo[]> {
  const list: WorkflowExecutionInfo[] = [];
  for await (const e of client.client.workflow.list({ query: `BackfillId = "${backfillId}"${extra}` })) list.push(e);
  return list;
}

/** Reads every run's history, a few at a time. */
export async function historyCensus(client: BackfillClient, backfillId: string): Promise<HistoryCensus> {
  const executions = await executionsOf(client, backfillId);
  const census: HistoryCensus = { runs: {}, events: 0, workflowTaskFailures: {}, workflowTaskTimeouts: 0, activityRetries: {}, activityTimeouts: {}, activityFailures: 0, notClosedWell: [] };
  const bump = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);
  for (const e of executions) {
    bump(census.runs, e.status.name);
    if (!CLOSED_WELL.has(e.status.name)) census.notClosedWell.push(`${e.workflowId} ${e.runId} ${e.status.name}`);
  }
  const queue = [...executions];
  const read = async () => {
    for (let e = queue.shift(); e; e = queue.shift()) {
      const { events } = await client.client.workflow.getHandle(e.workflowId, e.runId).fetchHistory();
      for (const event of events ?? []) {
        census.events++;
        switch (event.eventType) {
          case EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            bump(census.workflowTaskFailures, enumName(WorkflowTaskFailedCause, event.workflowTaskFailedEventAttributes?.cause, 'WORKFLOW_TASK_FAILED_CAUSE_'));
            break;
          case EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            census.workflowTaskTimeouts++;
            break;
          case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
            const { attempt, lastFailure } = event.activityTaskStartedEventAttributes ?? {};
            if ((attempt ?? 1) > 1) {
              const timeout = lastFailure?.timeoutFailureInfo;
              bump(census.activityRetries, timeout ? `timeout ${enumName(TimeoutType, timeout.timeoutType, 'TIMEOUT_TYPE_')}` : (lastFailure?.message ?? 'unknown').slice(0, 120));
            }
            break;
          }
          case EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            bump(census.activityTimeouts, enumName(TimeoutType, event.activityTaskTimedOutEventAttributes?.failure?.timeoutFailureInfo?.timeoutType, 'TIMEOUT_TYPE_'));
            break;
          case EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            census.activityFailures++;
            break;
        }
      }
    }
  };
  await Promise.all([read(), read(), read(), read()]);
  return census;
}

/** One line per running workflow of the backfill: its pending workflow task and activities, with their attempts and last failures. */
export async function describeRunning(client: BackfillClient, backfillId: string): Promise<string[]> {
  const lines: string[] = [];
  for (const e of await executionsOf(client, backfillId, ' AND ExecutionStatus = "Running"')) {
    const { raw } = await client.client.workflow.getHandle(e.workflowId, e.runId).describe();
    const task = raw.pendingWorkflowTask;
    const activities = raw.pendingActivities ?? [];
    const worst = [...activities].sort((a, b) => (b.attempt ?? 0) - (a.attempt ?? 0))[0];
    lines.push(
      [
        `${e.workflowId} (${e.runId}): history ${e.historyLength} events`,
        task ? `workflow task attempt ${task.attempt ?? 1}` : 'no pending workflow task',
        `${activities.length} pending activities`,
        worst ? `most attempts ${worst.attempt} (${worst.activityId}${worst.lastFailure?.message ? `: ${worst.lastFailure.message}` : ''})` : '',
      ]
        .filter(Boolean)
        .join(', '),
    );
  }
  return lines;
}
