/**
 * Backfills queried from their very start replay. A query that reaches a run's first workflow
 * task while a local activity of it runs (the policy's judgement was one) made the TypeScript
 * SDK (1.24.0) record the activity's marker in that task and what the workflow did with its
 * result in the next, a history the same code cannot replay (test/replay/known-issues). The
 * judgement and the other governance activities are regular activities since the patch
 * `governance-activities-regular`: each such history replays.
 */
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { policyTaskQueue } from '../../core/policy-pin.ts';
import { backfillWorkflowId, progressQuery } from '../../workflows/definitions.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const dir = scratch('query-at-start');
const queue = uniqueQueue('query-at-start');
let client: BackfillClient;
let worker: TestWorker;

beforeAll(async () => {
  worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db') });
  client = await connectClient();
});

afterAll(async () => {
  await client?.close();
  await worker?.stop();
});

it('backfills queried as they start replay', async () => {
  // Datasets of their own: backfills that write the same one wait for each other.
  const spec = (i: number) => testSpec(queue, { name: 'queried', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' }, nodes: [{ id: `queried_orders_${i}`, transform: 'noop' }] });
  const ids = Array.from({ length: 12 }, (_, i) => `queried-${i}-${queue}`);
  // Started together and queried until they answer: queries reach first workflow tasks still queued.
  await Promise.all(
    ids.map(async (id, i) => {
      const started = client.start(spec(i), { taskQueue: queue, id });
      const handle = client.client.workflow.getHandle(backfillWorkflowId(id));
      await waitFor(`${id} answers a query`, () => handle.query(progressQuery).then(() => true, () => false), 60_000, 5);
      await started;
    }),
  );
  for (const id of ids) expect((await client.wait(id, 60_000)).state).toBe('completed');
  const histories = await Promise.all(ids.map(async (id) => ({ workflowId: backfillWorkflowId(id), history: await client.client.workflow.getHandle(backfillWorkflowId(id)).fetchHistory() })));
  // The policy's judgement is an activity of the policy queue, not a local activity (whose marker a replay cannot place).
  for (const { history } of histories) {
    const events = history.events ?? [];
    expect(events.some((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toBe(false);
    const load = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'loadPolicy');
    expect(load?.activityTaskScheduledEventAttributes?.taskQueue?.name).toBe(policyTaskQueue(queue));
  }
  const failed: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: 'query-at-start' }, histories)) {
    if (result.error) failed.push(`${result.workflowId}: ${result.error.message.slice(0, 200)}`);
  }
  expect(failed).toEqual([]);
}, 180_000);
