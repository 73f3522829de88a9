/**
 * The activities a worker runs at this moment, so that a worker that stops can say which
 * partitions it waits for, and which it abandoned when they ignored their cancellation.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { BackfillError } from '../core/errors.ts';
import { isRunPartitionsInput, partitionAttributes } from '../activities/telemetry.ts';

export type RunningActivity = {
  activityType: string;
  activityId: string;
  workflowId: string;
  attempt: number;
  /** For a partition activity: its backfill, node and partition (a batch: `first..last`). */
  partition?: { backfillId: string; node: string; partition: string };
};

/** Partition activities that ended while the worker stopped: published, or handed back (cancelled or failed: the server runs them again). */
export type EndedWhileStopping = { finished: number; handedBack: number };

/** `stopping`: whether the worker is stopping now; partition activities that end then are counted. */
export function trackActivities(stopping: () => boolean = () => false): { interceptor: ActivityInterceptorsFactory; running(): RunningActivity[]; endedWhileStopping(): EndedWhileStopping } {
  const running = new Set<RunningActivity>();
  const ended: EndedWhileStopping = { finished: 0, handedBack: 0 };
  const interceptor: ActivityInterceptorsFactory = (ctx) => ({
    inbound: {
      execute: async (input, next) => {
        const { activityType, activityId, workflowExecution, attempt } = ctx.info;
        const args = input.args[0];
        const entry: RunningActivity = { activityType, activityId, workflowId: workflowExecution?.workflowId ?? '', attempt };
        if (isRunPartitionsInput(args)) {
          const { backfillId, node, partition } = partitionAttributes(args);
          entry.partition = { backfillId: String(backfillId), node: String(node), partition: String(partition) };
        }
        running.add(entry);
        let finished = false;
        try {
          const result = await next(input);
          finished = true;
          return result;
        } finally {
          running.delete(entry);
          if (entry.partition && stopping()) ended[finished ? 'finished' : 'handedBack'] += 1;
        }
      },
    },
  });
  return { interceptor, running: () => [...running], endedWhileStopping: () => ({ ...ended }) };
}

/** One line for an activity: `backfill <id> node <node> partition <key> (attempt n)`, or its type and id. */
export function describeActivity(activity: RunningActivity): string {
  const { partition } = activity;
  if (partition) return `backfill ${partition.backfillId} node ${partition.node} partition ${partition.partition} (attempt ${activity.attempt})`;
  return `activity ${activity.activityType} ${activity.activityId} of workflow ${activity.workflowId} (attempt ${activity.attempt})`;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * A worker stopped with activities that ignored their cancellation: they are abandoned (their
 * code may still be running in this process, which should exit now). Nothing is lost: Temporal
 * sees their attempt time out and retries it, and a partition is written only when it publishes.
 */
export class ShutdownExpiredError extends BackfillError {
  constructor(
    readonly abandoned: readonly RunningActivity[],
    readonly graceMs: number,
    readonly abandonMs: number,
  ) {
    const list = abandoned.map((a) => `\n  ${describeActivity(a)}`).join('');
    super(
      'timeout',
      `the worker stopped without waiting longer for ${abandoned.length === 1 ? '1 activity that ignored its' : `${abandoned.length} activities that ignored their`} cancellation ` +
        `(still running ${seconds(abandonMs)} after the ${seconds(graceMs)} shutdown grace):${list}\n` +
        "No work is lost: each attempt times out (the node's heartbeatTimeout) and Temporal runs it again on a worker of its queue (it counts against the node's retry.maxAttempts); " +
        'a partition is written only when it publishes. So that a worker stops cleanly, make transforms stop when their signal aborts (pass it to fetch or the driver, check signal.aborted in loops), or give them a longer --shutdown-grace',
    );
    this.name = 'ShutdownExpiredError';
  }
}
