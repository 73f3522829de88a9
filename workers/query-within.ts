/**
 * A workflow query from a worker's activity, given up on after a while. A query waits for a
 * workflow worker to answer it (30 s by default), and the worker's native connection takes a
 * deadline (which it retries past) but not an abort signal: the caller's wait ends at its own
 * timer, or at `cancelled` (an activity's cancellation), and the call is left to its deadline.
 */
import type { temporal } from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';

export class QueryTimeoutError extends Error {
  constructor(workflowId: string, timeoutMs: number) {
    super(`the workflow ${workflowId} did not answer within ${timeoutMs / 1000} s (is a worker of its task queue running?)`);
    this.name = 'QueryTimeoutError';
  }
}

export async function queryWithin(
  connection: Pick<NativeConnection, 'workflowService' | 'withDeadline'>,
  request: temporal.api.workflowservice.v1.IQueryWorkflowRequest,
  timeoutMs: number,
  cancelled?: Promise<never>,
): Promise<temporal.api.workflowservice.v1.IQueryWorkflowResponse> {
  const query = connection.withDeadline(Date.now() + timeoutMs, () => connection.workflowService.queryWorkflow(request));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueryTimeoutError(request.execution?.workflowId ?? '?', timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race(cancelled ? [query, late, cancelled] : [query, late]);
  } finally {
    clearTimeout(timer);
  }
}
