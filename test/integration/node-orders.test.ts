/**
 * The `fetchNodeOrders` activity asks the backfill's workflow by a query, which waits for a workflow
 * worker to answer. When none answers (the worker that would is shutting down), the attempt ends on
 * the activity's cancellation, or at a deadline under its start-to-close timeout: it used to outlive
 * a worker's shutdown grace (a CI run's `ShutdownExpiredError`).
 */
import { NativeConnection } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { createNodeOrdersActivities } from '../../workers/node-orders.ts';
import { address, connectClient, uniqueQueue } from './helpers.ts';

describe('fetchNodeOrders when no worker answers its query', () => {
  let client: BackfillClient;
  let connection: NativeConnection;
  const workflowId = `orders-unanswered-${uniqueQueue('wf')}`;
  beforeAll(async () => {
    client = await connectClient();
    connection = await NativeConnection.connect({ address: address() });
    // A workflow on a queue nobody polls: its queries wait for a worker that never comes. Not of
    // the backfill's type: other files' set-queue-rate would count it as a running backfill whose
    // queues it cannot tell, ask it, and be refused for its silence.
    await client.client.workflow.start('unpolledWorkflow', { workflowId, taskQueue: uniqueQueue('unpolled'), args: [] });
  });
  afterAll(async () => {
    await client.client.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
    await connection?.close();
    await client?.close();
  });

  it("ends at once when the activity is cancelled (a worker's shutdown), not when the query gives up", async () => {
    const env = new MockActivityEnvironment({ taskQueue: 'orders.policy' });
    const activities = createNodeOrdersActivities(connection, client.namespace);
    const began = Date.now();
    const asked = env.run(() => activities.fetchNodeOrders({ parentWorkflowId: workflowId, node: 'a' }));
    setTimeout(() => env.cancel('WORKER_SHUTDOWN'), 300);
    await expect(asked).rejects.toThrow();
    expect(Date.now() - began).toBeLessThan(3_000);
  });

  it('gives up before its start-to-close timeout (10 s) when nothing cancels it', async () => {
    const env = new MockActivityEnvironment({ taskQueue: 'orders.policy' });
    const activities = createNodeOrdersActivities(connection, client.namespace);
    const began = Date.now();
    await expect(env.run(() => activities.fetchNodeOrders({ parentWorkflowId: workflowId, node: 'a' }))).rejects.toThrow();
    const took = Date.now() - began;
    // Its own timer is 9 s, under the 10 s start-to-close timeout; a loaded machine may be late to
    // say so (before, it took 23 to 30 s: the native connection retried past its deadline).
    expect(took).toBeGreaterThan(8_000);
    expect(took).toBeLessThan(15_000);
  }, 30_000);
});
