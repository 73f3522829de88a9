/**
 * A step of the backfill's own workflow that keeps failing: here the workers' warehouse cannot
 * be opened (as a lake the workers may not write), so asking it which warehouse it is fails on
 * every attempt. Nothing of the backfill can start, and `status` said only `0/6 done` and
 * pending: it now names the step, how often it failed and its last error, and stops naming it
 * once the step succeeds.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { renderStatus } from '../../client/render.ts';
import { connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const queue = uniqueQueue('failing-step');
const dir = scratch('failing-step');
const DENIED = 'IO Error: Cannot open file "/lake/_backfill/catalog.duckdb": Permission denied';
let worker: TestWorker;
let client: BackfillClient;
let denied = true;

beforeAll(async () => {
  worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transforms: { quick: ({ partition }) => [{ partition, v: 1 }] } });
  const identity = worker.warehouse.identity.bind(worker.warehouse);
  worker.warehouse.identity = async () => {
    if (denied) throw new Error(DENIED);
    return identity();
  };
  client = await connectClient();
});

afterAll(async () => {
  await client?.close();
  await worker?.stop();
});

it("status names the backfill's own step that keeps failing, with its last error, until it succeeds", async () => {
  const backfillId = `failing-step-${Date.now()}`;
  const spec = testSpec(queue, { name: 'failing_step', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-07' }, nodes: [{ id: 'failing_step', transform: 'quick' }] });
  await client.start(spec, { id: backfillId, taskQueue: queue });

  const failing = await waitFor('status to name the failing step', async () => (await client.status(backfillId)).activityFailing, 60_000, 500);
  expect(failing.activity).toBe('warehouseIdentity');
  expect(failing.attempt).toBeGreaterThanOrEqual(3);
  expect(failing.message).toContain('Permission denied');
  const status = await client.status(backfillId);
  expect(status.done).toBe(0);
  expect(renderStatus(status)).toContain(`its step warehouseIdentity has failed ${failing.attempt - 1} times and is being retried; what needs it waits`);
  // The command line's status (its light path, over plain gRPC) names it too: it said nothing of it.
  const json = await runCli<{ activityFailing?: { activity: string; message: string } }>(['status', backfillId, '--json']);
  expect(json.json?.activityFailing).toMatchObject({ activity: 'warehouseIdentity', message: expect.stringContaining('Permission denied') });
  expect((await runCli(['status', backfillId])).stdout).toContain('its step warehouseIdentity has failed');

  denied = false;
  await expect(client.wait(backfillId, 90_000)).resolves.toMatchObject({ state: 'completed' });
  expect((await client.status(backfillId)).activityFailing).toBeUndefined();
});
