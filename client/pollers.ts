/** A task queue's pollers, as the server lists them (`DescribeTaskQueue`), through the SDK's connection. */
import type { Connection } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
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
