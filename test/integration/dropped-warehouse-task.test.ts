/**
 * A warehouse task nobody works on (a worker stopped in the instant the server handed it the task
 * drops it: Temporal 1.29 cannot end a stopping worker's polls) is retried after the activity's
 * heartbeat timeout (30 s), not its start-to-close timeout (a minute, ten for a staged publish);
 * and a warehouse step that is slow but alive heartbeats, so it is not retried meanwhile.
 *
 * The drop is made deterministic: the node's queue has one worker, with the project's activities,
 * whose first attempt of acquireDatasets never heartbeats nor returns (as a dropped task, held by
 * nobody). Its second attempt waits in the warehouse past the heartbeat timeout, heartbeating.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { BackfillClient } from '../../client/backfill-client.ts';
import { createActivities } from '../../activities/run-partitions.ts';
import { createLineageActivities } from '../../activities/lineage/activity.ts';
import { loadTransforms } from '../../activities/transforms.ts';
import { ThreadedWarehouse } from '../../activities/warehouse/sqlite/threaded.ts';
import type { DatasetLease } from '../../activities/warehouse/types.ts';
import { parseDuration } from '../../core/duration.ts';
import { ACTIVITY_HEARTBEAT_TIMEOUT } from '../../core/heartbeat.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { Gate, address, connectClient, endLeftRunning, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const HEARTBEAT_TIMEOUT_MS = parseDuration(ACTIVITY_HEARTBEAT_TIMEOUT)!;
const dir = scratch('dropped-warehouse-task');
const warehousePath = join(dir, 'warehouse.db');
const workflowQueue = uniqueQueue('dropped-task-workflows');
const nodeQueue = uniqueQueue('dropped-task-node');
let client: BackfillClient;
let workflows: TestWorker;

beforeAll(async () => {
  client = await connectClient();
  workflows = await startTestWorker({ queue: workflowQueue, warehousePath });
});

afterAll(async () => {
  await endLeftRunning(client, [workflowQueue]);
  await workflows?.stop();
  await client?.close();
});

/**
 * The only worker of the node's queue: the project's activities on the warehouse file, but the
 * first attempt of acquireDatasets is dropped, and the warehouse holds the others at `slow`.
 */
async function droppingWorker(slow: Gate) {
  const connection = await NativeConnection.connect({ address: address() });
  const warehouse = new ThreadedWarehouse(warehousePath);
  const acquire = warehouse.acquireDatasets;
  warehouse.acquireDatasets = async (lease) => {
    await slow.pass(Context.current().cancellationSignal);
    return acquire(lease);
  };
  const project = {
    ...createActivities({ warehouse, transforms: new Map(await loadTransforms([])), codeVersion: 'test' }),
    ...createLineageActivities({ warehouse, settings: { enabled: false, why: 'not asked for by the test' }, producer: 'test', engineVersion: 'test' }),
  };
  /** When each attempt of acquireDatasets started. */
  const attempts: number[] = [];
  const worker = await Worker.create({
    connection,
    taskQueue: nodeQueue,
    activities: {
      ...project,
      acquireDatasets(lease: DatasetLease) {
        const ctx = Context.current();
        attempts.push(Date.now());
        if (ctx.info.attempt > 1) return project.acquireDatasets(lease);
        // Held by nobody: no heartbeat, no result; only the worker's shutdown at the test's end ends it.
        return new Promise<never>((_, reject) => ctx.cancellationSignal.addEventListener('abort', () => reject(new Error('worker stopped')), { once: true }));
      },
    },
  });
  const running = worker.run();
  return {
    attempts,
    stop: async () => {
      worker.shutdown();
      await running;
      await connection.close();
      await warehouse.close();
    },
  };
}

describe('a dropped warehouse task', () => {
  it('is retried after the heartbeat timeout, and a slow attempt that heartbeats is not retried', async () => {
    const slow = new Gate();
    const dropping = await droppingWorker(slow);
    const spec = testSpec(nodeQueue, { name: 'dropped-task', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'orders', transform: 'noop' }] });
    try {
      const { backfillId } = await client.start(spec, { taskQueue: workflowQueue, id: `dropped-task-${nodeQueue}`, admission: false });
      const { attempts } = dropping;
      await waitFor('the lease to be handed to the worker that drops it', () => attempts.length >= 1, 30_000);
      // Its start-to-close timeout is a minute: a retry within 45 s comes from the heartbeat timeout.
      await waitFor('the lease to be tried again', () => attempts.length >= 2, 45_000, 250);
      const retriedAfter = attempts[1]! - attempts[0]!;
      expect(retriedAfter).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS - 2_000);
      expect(retriedAfter).toBeLessThan(HEARTBEAT_TIMEOUT_MS + 15_000);

      // The second attempt runs on, alive, past the heartbeat timeout before the warehouse answers.
      const workflowId = backfillWorkflowId(backfillId);
      await waitFor(
        'the second attempt to run past the heartbeat timeout',
        async () => {
          const described = await client.client.workflowService.describeWorkflowExecution({ namespace: client.namespace, execution: { workflowId } });
          const lease = described.pendingActivities.find((a) => a.activityType?.name === 'acquireDatasets');
          return lease !== undefined && lease.attempt === 2 && lease.lastHeartbeatTime != null && Date.now() - attempts[1]! > HEARTBEAT_TIMEOUT_MS + 5_000;
        },
        HEARTBEAT_TIMEOUT_MS + 15_000,
        500,
      );
      slow.open();
      const outcome = await client.wait(backfillId, 30_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress).toMatchObject({ done: 2, failed: 0 });
      expect(attempts).toHaveLength(2);
    } finally {
      slow.open();
      await dropping.stop();
    }
  }, 120_000);
});
