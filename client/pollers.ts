/** A task queue's pollers, as the server lists them (`DescribeTaskQueue`), through the SDK's connection. */
import type { Connection } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { hasPolicyHolder, policyTaskQueue } from '../core/policy-pin.ts';
import type { Poller } from './waiting.ts';

/** `connection`: the client's, or a worker's NativeConnection (the same service). */
export async function pollersOf(connection: Pick<Connection, 'workflowService'>, namespace: string, taskQueue: string, type: 'workflow' | 'activity'): Promise<Poller[]> {
  const { TaskQueueType } = proto.temporal.api.enums.v1;
  const response = await connection.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: type === 'workflow' ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });
  return (response.pollers ?? []).map((p) => ({ identity: p.identity ?? '', lastAccessMs: optionalTsToMs(p.lastAccessTime) }));
}

/** Whether a workflow worker with a policy polled the policy queue of workflow queue `workflowQueue` lately (core/policy-pin.ts). */
export async function policyHolderPolls(connection: Pick<Connection, 'workflowService'>, namespace: string, workflowQueue: string): Promise<boolean> {
  return hasPolicyHolder(await pollersOf(connection, namespace, policyTaskQueue(workflowQueue), 'activity'), Date.now());
}
