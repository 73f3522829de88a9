/**
 * A rollback where workflow workers and activity workers are apart, as `backfill worker
 * --no-workflows --task-queue <queue>` beside a workflow worker deploys them: the workflow queue
 * runs no activity of the backfill's, so the rollback reads the ledger and restores on the
 * nodes' own activity queue, and ends.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { NativeConnection } from '@temporalio/worker';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { installRuntime } from '../../client/local.ts';
import { BUILTIN_TRANSFORMS } from '../../activities/transforms.ts';
import { ThreadedWarehouse } from '../../activities/warehouse/sqlite/threaded.ts';
import { createWorkers } from '../../workers/worker.ts';
import { address, connectClient, scratch, testSpec, uniqueQueue } from './helpers.ts';

const workflowQueue = uniqueQueue('rollback-split');
const activityQueue = `${workflowQueue}-warehouse`;
const warehouse = new ThreadedWarehouse(join(scratch('rollback-split'), 'warehouse.db'));
let connection: NativeConnection;
let stop: () => Promise<void>;
let client: BackfillClient;

beforeAll(async () => {
  process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
  installRuntime();
  connection = await NativeConnection.connect({ address: address() });
  const common = { connection, warehouse, transforms: BUILTIN_TRANSFORMS, workflowBundle: { codePath: inject('workflowBundlePath') }, lineage: { enabled: false as const, why: 'not asked for by the test' } };
  // A workflow worker (its own queue: no activity of the backfill's) and an activity worker of the nodes' queue alone.
  const workflowWorkers = await createWorkers({ ...common, workflowQueue, activityQueues: [] });
  const activityWorkers = await createWorkers({ ...common, workflowQueue, workflows: false, activityQueues: [{ name: activityQueue }] });
  const running = [workflowWorkers.run(), activityWorkers.run()];
  stop = async () => {
    workflowWorkers.shutdown();
    activityWorkers.shutdown();
    await Promise.all(running);
  };
  client = await connectClient();
});

afterAll(async () => {
  await client?.close();
  await stop?.();
  await connection?.close();
  await warehouse.close();
});

describe('a rollback with workflow and activity workers apart', () => {
  it('reads the ledger and restores on the nodes’ activity queue, and ends', async () => {
    const spec = testSpec(activityQueue, { name: 'rollback-split', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' }, nodes: [{ id: 'split_orders', sql: 'SELECT :partition AS day, 1 AS v' }] });
    const { backfillId } = await client.start(spec, { id: `split-${workflowQueue}`, taskQueue: workflowQueue });
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    expect(await client.rollback(backfillId)).toMatchObject({ removed: 3, restored: 0 });
  }, 60_000);
});
