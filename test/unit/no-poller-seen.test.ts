/**
 * Right after the last worker of a backfill's workflow task queue went away, the server refuses
 * a query at once with FAILED_PRECONDITION "no poller seen for task queue recently": `status`
 * says no worker polls the queue (`no_worker`), on the SDK's path and on the light one.
 */
import { describe, expect, it } from 'vitest';
import { ServiceError } from '@temporalio/client';
import { statusOf, type StatusReads } from '../../client/light-status.ts';
import { StatusRpcError } from '../../client/status-rpc.ts';
import { WORKFLOW_EXECUTION_STATUS_RUNNING } from '../../client/status-wire.ts';
import { fakeBackfillClient, noDeadline } from './fake-backfill-client.ts';

const DETAILS = 'no poller seen for task queue recently, worker may be down';

/** The worker died half a minute ago: the server still lists its poller. */
function recentPoller(): { identity: string; lastAccessMs: number } {
  return { identity: 'worker@gone', lastAccessMs: Date.now() - 30_000 };
}

describe('a query refused because no poller was seen recently', () => {
  it("the SDK's path: status fails with no_worker, naming the workflow task queue", async () => {
    const grpc = Object.assign(new Error(`9 FAILED_PRECONDITION: ${DETAILS}`), { code: 9, details: DETAILS, metadata: {} });
    const handle = {
      describe: async () => ({ type: 'backfillWorkflow', status: { name: 'RUNNING' }, taskQueue: 'q', runId: 'r1', startTime: new Date() }),
      query: async () => {
        throw new ServiceError('Failed to query Workflow', { cause: grpc });
      },
    };
    const at = recentPoller().lastAccessMs;
    const client = fakeBackfillClient({
      client: { workflow: { getHandle: () => handle }, withDeadline: noDeadline },
      workflowService: {
        describeTaskQueue: async () => ({ pollers: [{ identity: 'worker@gone', lastAccessTime: { seconds: Math.floor(at / 1000), nanos: 0 } }] }),
        getWorkflowExecutionHistory: async () => ({ history: { events: [] } }),
      },
    });
    const began = Date.now();
    await expect(client.status('b1')).rejects.toMatchObject({ code: 'no_worker', message: expect.stringContaining("workflow task queue 'q'") });
    expect(Date.now() - began).toBeLessThan(2000);
  });

  it('the light path: status fails with no_worker (not handed to the SDK client, which would ask again)', async () => {
    const rpc: StatusReads = {
      describe: async () => ({ runId: 'r1', type: 'backfillWorkflow', status: WORKFLOW_EXECUTION_STATUS_RUNNING, taskQueue: 'q' }),
      query: async () => {
        throw new StatusRpcError('QueryWorkflow', 9, DETAILS);
      },
      firstInput: async () => undefined,
      taskFailure: async () => undefined,
      pollers: async () => [recentPoller()],
    };
    await expect(statusOf(rpc, 'b1')).rejects.toMatchObject({ code: 'no_worker', message: expect.stringContaining("workflow task queue 'q'") });
  });

  it("the light path leaves another of a backfill's workflows (b1/orders, a node's) to the SDK client, which names it, rather than say no worker answers it", async () => {
    const rpc: StatusReads = {
      describe: async () => ({ runId: 'r1', type: 'nodeWorkflow', status: WORKFLOW_EXECUTION_STATUS_RUNNING, taskQueue: 'q' }),
      query: async () => {
        throw new StatusRpcError('QueryWorkflow', 9, DETAILS);
      },
      firstInput: async () => undefined,
      taskFailure: async () => undefined,
      pollers: async () => [recentPoller()],
    };
    expect(await statusOf(rpc, 'b1/orders')).toBeNull();
  });
});
