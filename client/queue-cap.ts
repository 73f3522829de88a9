/** A task queue's server-side cap (set-queue-rate), as the server reports it: what it is, and who set it when and why. */
import type { Connection } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { clipText, MAX_IDENTITY, MAX_REASON, type Unchanged } from '../core/audit.ts';
import { printableText } from './printable.ts';

type RateLimitConfig = proto.temporal.api.taskqueue.v1.IRateLimitConfig;

/** `rate`: activities per second, or null for no cap (the workers' own setting applies). */
export type QueueCap = { rate: number | null; setBy: Unchanged };

/** The cap a queue's rate limit config holds, and its last update as the server recorded it (nulls where it tells nothing). */
export function queueCap(config: RateLimitConfig | null | undefined): QueueCap {
  const meta = config?.metadata;
  // Whoever may call UpdateTaskQueueConfig wrote these: shown on one line, without escapes, bounded as an audit entry's are.
  const shown = (text: string | null | undefined, max: number) => (text?.trim() ? printableText(clipText(text.trim(), max)) : null);
  const identity = shown(meta?.updateIdentity, MAX_IDENTITY);
  return {
    rate: config?.rateLimit?.requestsPerSecond ?? null,
    setBy: {
      since: optionalTsToMs(meta?.updateTime) ?? null,
      // Whoever called UpdateTaskQueueConfig named themselves (Temporal's CLI too): declared, never read as the policy.
      by: identity !== null ? `${identity} (declared)` : null,
      reason: shown(meta?.reason, MAX_REASON),
    },
  };
}

/** Whether the rate asked is the cap in force: the server keeps a rate as a 32-bit float (0.1 comes back 0.10000000149011612). */
export function sameQueueRate(asked: number | null, cap: number | null): boolean {
  return asked === null || cap === null ? asked === cap : Math.fround(asked) === cap;
}

/** The activity cap of `taskQueue` now (DescribeTaskQueue with its config). */
export async function currentQueueCap(connection: Pick<Connection, 'workflowService'>, namespace: string, taskQueue: string): Promise<QueueCap> {
  const response = await connection.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    reportConfig: true,
  });
  return queueCap(response.config?.queueRateLimit);
}
