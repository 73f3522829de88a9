/**
 * The first layer of rate limiting: a task queue's cap, enforced by the Temporal server
 * across all workers of the queue, set by the workers and changed at runtime.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { connectClient, runCli, scratch, startRate, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('task queue rate limits', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('queues');
  const warehouseQueue = `${queue}-warehouse`;

  beforeAll(async () => {
    // The workers of the warehouse queue cap it at 4 activities per second.
    worker = await startTestWorker({ queue, warehousePath: `${scratch('queues')}/warehouse.db`, extraQueues: [{ name: warehouseQueue, maxActivitiesPerSecond: 4 }] });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('the server holds a queue to its cap whatever the node asks, and follows a change made at runtime', async () => {
    const spec = testSpec(queue, {
      name: 'queue-cap',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-21' },
      // One partition per activity: the server's cap counts activities, the ledger partitions.
      defaults: { concurrency: 50, batchSize: 1 },
      nodes: [{ id: 'load', transform: 'sleep', taskQueue: warehouseQueue }],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 250 } });
    const ledger = () => worker.warehouse.ledger({ backfillId });
    await waitFor('the first partitions', async () => (await ledger()).length > 0);

    const cappedFrom = Date.now() + 1000;
    await delay(5000);
    const cappedTo = Date.now();
    expect(await client.setQueueRate(warehouseQueue, 12)).toMatchObject({ rate: 12, unused: false });
    // Past the change's first moments (the server's limiter may let a short burst through).
    const raisedFrom = Date.now() + 2000;
    await delay(9000);
    const raisedTo = Date.now();
    const rows = await ledger();
    const capped = startRate(rows, cappedFrom, cappedTo);
    const raised = startRate(rows, raisedFrom, raisedTo);
    expect(capped).toBeGreaterThan(2.5);
    expect(capped).toBeLessThanOrEqual(5);
    expect(raised).toBeGreaterThan(9);
    expect(raised).toBeLessThan(12 * 1.2);

    // Cancelled while the cap still holds it (lifted first, the rest ran out before the cancel on a slow machine).
    await client.cancel(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
    expect(await client.setQueueRate(warehouseQueue, null)).toMatchObject({ rate: null, unused: false });
  });

  it('says so when the queue it caps is one nobody uses (a name mistyped)', async () => {
    const typo = `${queue}-warehuose`;
    expect(await client.setQueueRate(typo, 5)).toMatchObject({ rate: 5, unused: true, recordedBy: [], unreachable: [] });
    const cli = await runCli(['set-queue-rate', typo, 'unlimited']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`warning: no worker polls task queue ${typo} and no running backfill has nodes on it`);
  });
});
