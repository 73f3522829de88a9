/**
 * Where a partition activity's time goes, from the node workflow's histories (server times)
 * and the activities' own results (the worker's times of each partition): for the benchmark's
 * `workers-N` scenarios, to tell the work from dispatch, completion and idle slots.
 *
 *   queue       scheduled → started: waiting in the task queue for a free slot
 *   dispatch    started (the server handed it to a poller) → the activity's first partition began
 *   work        the first partition began → the last one was published (transform + publish)
 *   complete    the last partition was published → the server recorded the completion
 *   idle        per slot, the time between one activity's completion and the next one's start
 *   replace     a completion → the node workflow's next ActivityTaskScheduled (its workflow task)
 *   backlog     activities scheduled and not yet started, sampled at every start: while it is
 *               above zero, the workers never waited for the workflow
 *
 * All times are on one machine's clock (the server, the workers and the bench share it).
 */
import { defaultPayloadConverter, optionalTsToMs } from '@temporalio/common';
import type { BackfillClient } from '../client/backfill-client.ts';
import type { RunPartitionsResult } from '../core/protocol.ts';

type Activity = { scheduled: number; started?: number; identity?: string; closed?: number; codeStart?: number; codeEnd?: number; partitions: number };

const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
};
const round = (ms: number) => Number(ms.toFixed(1));
const stats = (values: number[]) => ({ mean: round(mean(values)), p50: round(percentile(values, 0.5)), p95: round(percentile(values, 0.95)) });

/** The first and last event times of every run of a workflow. */
async function span(client: BackfillClient, workflowId: string): Promise<{ start: number; end: number }> {
  let start = Infinity;
  let end = -Infinity;
  for await (const execution of client.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    const { events } = await client.client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
    const times = (events ?? []).map((e) => optionalTsToMs(e.eventTime) ?? 0);
    start = Math.min(start, ...times);
    end = Math.max(end, ...times);
  }
  return { start, end };
}

/**
 * The fixed costs of a backfill of one node, around its activities: from the client's start to the
 * parent's first event, to the node's, to its first activity's start; and from its last activity's
 * completion to the node's end, the parent's end and the client seeing it.
 */
export async function phases(client: BackfillClient, backfillId: string, node: string, began: number, ended: number) {
  const parent = await span(client, `backfill/${backfillId}`);
  const child = await span(client, `backfill/${backfillId}/${node}`);
  let firstStarted = Infinity;
  let lastCompleted = -Infinity;
  for await (const execution of client.client.workflow.list({ query: `WorkflowId = "backfill/${backfillId}/${node}"` })) {
    const { events } = await client.client.workflow.getHandle(`backfill/${backfillId}/${node}`, execution.runId).fetchHistory();
    for (const e of events ?? []) {
      const at = optionalTsToMs(e.eventTime) ?? 0;
      if (e.activityTaskStartedEventAttributes) firstStarted = Math.min(firstStarted, at);
      if (e.activityTaskCompletedEventAttributes) lastCompleted = Math.max(lastCompleted, at);
    }
  }
  return {
    clientToParentMs: parent.start - began,
    parentToNodeMs: child.start - parent.start,
    nodeToFirstActivityMs: firstStarted - child.start,
    activitiesMs: lastCompleted - firstStarted,
    lastActivityToNodeEndMs: child.end - lastCompleted,
    nodeEndToParentEndMs: parent.end - child.end,
    parentEndToClientMs: ended - parent.end,
  };
}

export async function dispatchTimings(client: BackfillClient, workflowId: string, slotsPerWorker: number) {
  const activities: Activity[] = [];
  const replace: number[] = [];
  const workflowTasks: number[] = [];
  const backlog: number[] = [];
  for await (const execution of client.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    const { events } = await client.client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
    const byScheduled = new Map<number, Activity>();
    let waitingSince: number[] = [];
    let scheduledNotStarted = 0;
    let wftScheduled: number | null = null;
    for (const event of events ?? []) {
      const at = optionalTsToMs(event.eventTime) ?? 0;
      const id = Number(event.eventId);
      if (event.workflowTaskScheduledEventAttributes) wftScheduled = at;
      if (event.workflowTaskCompletedEventAttributes && wftScheduled !== null) {
        workflowTasks.push(at - wftScheduled);
        wftScheduled = null;
      }
      if (event.activityTaskScheduledEventAttributes) {
        byScheduled.set(id, { scheduled: at, partitions: 0 });
        scheduledNotStarted++;
        const since = waitingSince.shift();
        if (since !== undefined) replace.push(at - since);
      }
      const started = event.activityTaskStartedEventAttributes;
      if (started) {
        const activity = byScheduled.get(Number(started.scheduledEventId));
        if (activity) {
          activity.started = at;
          activity.identity = started.identity ?? '';
        }
        scheduledNotStarted--;
        backlog.push(scheduledNotStarted);
      }
      const completed = event.activityTaskCompletedEventAttributes;
      if (completed) {
        const activity = byScheduled.get(Number(completed.scheduledEventId));
        const payload = completed.result?.payloads?.[0];
        if (activity && payload) {
          activity.closed = at;
          const result = defaultPayloadConverter.fromPayload<RunPartitionsResult>(payload);
          activity.partitions = result.finished.length;
          activity.codeStart = Math.min(...result.finished.map((r) => r.startedAt));
          activity.codeEnd = Math.max(...result.finished.map((r) => r.finishedAt));
          activities.push(activity);
        }
        waitingSince.push(at);
      }
    }
    waitingSince = [];
  }
  const done = activities.filter((a) => a.started !== undefined && a.codeStart !== undefined);
  const byWorker = new Map<string, Activity[]>();
  for (const a of done) byWorker.set(a.identity!, [...(byWorker.get(a.identity!) ?? []), a]);
  // Idle slot time per activity: a worker's slots over its busy span, less the time activities held them.
  const idle: number[] = [];
  const utilisation: number[] = [];
  for (const list of byWorker.values()) {
    const first = Math.min(...list.map((a) => a.started!));
    const last = Math.max(...list.map((a) => a.closed!));
    const held = list.reduce((sum, a) => sum + (a.closed! - a.started!), 0);
    const capacity = slotsPerWorker * (last - first);
    idle.push((capacity - held) / list.length);
    utilisation.push(held / capacity);
  }
  // The steady part: leave out the first and last tenth of starts (the ramp and the tail).
  const steady = backlog.slice(Math.floor(backlog.length / 10), Math.ceil((backlog.length * 9) / 10));
  return {
    activities: done.length,
    workers: byWorker.size,
    queueMs: stats(done.map((a) => a.started! - a.scheduled)),
    dispatchMs: stats(done.map((a) => a.codeStart! - a.started!)),
    workMs: stats(done.map((a) => a.codeEnd! - a.codeStart!)),
    completeMs: stats(done.map((a) => a.closed! - a.codeEnd!)),
    idleMsPerActivity: round(mean(idle)),
    slotUtilisation: Number(mean(utilisation).toFixed(3)),
    replaceMs: stats(replace),
    workflowTaskMs: stats(workflowTasks),
    steadyBacklog: { min: Math.min(...steady), mean: round(mean(steady)) },
  };
}
