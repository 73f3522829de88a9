/**
 * The activities a worker runs at this moment, so that a worker that stops can say which
 * partitions it waits for.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { isRunPartitionsInput, partitionAttributes } from '../activities/telemetry.ts';

export type RunningActivity = {
  activityType: string;
  activityId: string;
  workflowId: string;
  attempt: number;
  /** For a partition activity: its backfill, node and partition (a batch: `first..last`). */
  partition?: { backfillId: string; node: string; partition: string };
};

export function trackActivities(): { interceptor: ActivityInterceptorsFactory; running(): RunningActivity[] } {
  const running = new Set<RunningActivity>();
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
        try {
          return await next(input);
        } finally {
          running.delete(entry);
        }
      },
    },
  });
  return { interceptor, running: () => [...running] };
}

/** One line for an activity: `backfill <id> node <node> partition <key> (attempt n)`, or its type and id. */
export function describeActivity(activity: RunningActivity): string {
  const { partition } = activity;
  if (partition) return `backfill ${partition.backfillId} node ${partition.node} partition ${partition.partition} (attempt ${activity.attempt})`;
  return `activity ${activity.activityType} ${activity.activityId} of workflow ${activity.workflowId} (attempt ${activity.attempt})`;
}
