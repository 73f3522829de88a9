/**
 * `status` of a running backfill whose only worker stopped: what its workflow's history records,
 * the partitions each node had done and failed among it, as its last progress said them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { LastKnown } from '../../client/last-known.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor } from './helpers.ts';

type ErrorJson = { error?: { code: string; message: string }; lastKnown?: LastKnown };

describe('status without a worker: the partitions done and failed that the history records', () => {
  let client: BackfillClient;
  const ids: string[] = [];
  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    for (const id of ids) await client.client.workflow.getHandle(backfillWorkflowId(id)).terminate('test over').catch(() => undefined);
    await client?.close();
  });

  it('counts each node as its last progress did, across a continue-as-new of the backfill', async () => {
    const queue = uniqueQueue('last-known');
    const spec = testSpec(queue, {
      name: 'last-known',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-31' },
      defaults: { batchSize: 1 },
      nodes: [
        { id: 'daily', transform: 'sleep', params: { failKeys: ['2024-01-03', '2024-01-17'], permanent: true } },
        // Waits on a queue nobody polls: the backfill runs until the test ends it.
        { id: 'parked', transform: 'noop', taskQueue: `${queue}-nowhere` },
      ],
    });
    const worker = await startTestWorker({ queue, warehousePath: `${scratch('last-known')}/warehouse.db` });
    let stopped = false;
    try {
      // A small history limit: the backfill's workflow continues as new while daily's reports come in, so its carry counts too.
      const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { historyLimit: 60, reportIntervalMs: 100 } });
      ids.push(backfillId);
      const seen = await waitFor('daily to settle', async () => {
        const progress = await client.progress(backfillId);
        const daily = progress.nodes.find((n) => n.id === 'daily');
        return daily && daily.done + daily.failed === 30 ? progress : undefined;
      });
      const runs = await waitFor('a continue-as-new of the backfill', async () => {
        let count = 0;
        for await (const _ of client.client.workflow.list({ query: `WorkflowId = "${backfillWorkflowId(backfillId)}"` })) count++;
        return count >= 2 ? count : undefined;
      });
      expect(runs).toBeGreaterThanOrEqual(2);
      await worker.stop();
      stopped = true;

      const { code, json, stdout, stderr } = await runCli<ErrorJson>(['status', backfillId, '--json']);
      expect(code, stderr).toBe(1);
      const nodes = Object.fromEntries((json?.lastKnown?.nodes ?? []).map((n) => [n.id, n]));
      const daily = seen.nodes.find((n) => n.id === 'daily')!;
      expect(daily).toMatchObject({ done: 28, failed: 2 });
      expect(nodes.daily, stdout).toMatchObject({ partitions: 30, done: 28, failed: 2 });
      expect(nodes.parked, stdout).toMatchObject({ partitions: 30, done: 0, failed: 0 });

      const text = await runCli(['status', backfillId]);
      expect(text.code).toBe(1);
      expect(text.stdout).toContain('  daily: 28 of 30 partitions done, 2 failed, on task queue');
      expect(text.stdout).toContain('  parked: 0 of 30 partitions done, on task queue');
    } finally {
      if (!stopped) await worker.stop();
    }
  }, 180_000);
});
