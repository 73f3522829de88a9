/**
 * `backfill worker` stopped by SIGTERM (a deploy, a scale-down) while partitions run: they finish
 * within the shutdown grace, or go back to their node, and none fails for it.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { address, connectClient, scratch, testSpec, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

/** A transform that marks its start in `dir`, then takes `ms` (or less, when cancelled). */
const TRANSFORMS = `
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
export default {
  marked: async ({ partition, params, signal }) => {
    writeFileSync(params.dir + '/started-' + partition, '');
    await delay(params.ms, undefined, { signal });
    return [{ day: partition }];
  },
};
`;

function setUp(name: string, node: { ms: number; days: number; batchSize: number; concurrency: number }) {
  const dir = scratch(name);
  const queue = uniqueQueue(name);
  const transforms = join(dir, 'transforms.mjs');
  writeFileSync(transforms, TRANSFORMS);
  const warehousePath = join(dir, 'warehouse.db');
  const worker = () => workerProcess({ address: address(), queue, warehouse: warehousePath, transforms: [transforms], shutdownGrace: '60s' });
  const spec = testSpec(queue, {
    name,
    partitions: { grain: 'day', start: '2024-01-01', end: `2024-01-0${1 + node.days}` },
    // One attempt: a partition that the stop made fail would fail for good.
    defaults: { concurrency: node.concurrency, retry: { maxAttempts: 1 } },
    nodes: [{ id: 'days', transform: 'marked', params: { dir, ms: node.ms }, batchSize: node.batchSize }],
  });
  const started = (key: string) => existsSync(join(dir, `started-${key}`));
  return { queue, worker, spec, started, warehouse: new SqliteWarehouse(warehousePath) };
}

describe('backfill worker stopped by SIGTERM', () => {
  let client: BackfillClient;
  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
  });

  it('lets running partitions finish within the shutdown grace, and exits 0', async () => {
    const { queue, worker, spec, started, warehouse } = setUp('grace', { ms: 3000, days: 2, batchSize: 1, concurrency: 2 });
    const first = worker();
    const second = worker();
    try {
      await first.start();
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      await waitFor('both partitions to start', () => started('2024-01-01') && started('2024-01-02'));
      expect(await first.signal('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(first.log).toMatch(/SIGTERM: stopping; running partitions get up to 60 s to finish/);
      // Published by the worker that stopped, on their first attempt.
      const rows = await warehouse.ledger({ backfillId });
      expect(rows.map((r) => [r.partition, r.status, r.attempt]).sort()).toEqual([
        ['2024-01-01', 'published', 1],
        ['2024-01-02', 'published', 1],
      ]);
      await second.start();
      const outcome = await client.wait(backfillId, 60_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress).toMatchObject({ done: 2, failed: 0 });
    } finally {
      await first.stop();
      await second.stop();
      await warehouse.close();
    }
  });

  it('a batch starts no new partition once the worker stops: the rest run on the next worker, none failed, none twice', async () => {
    const { queue, worker, spec, started, warehouse } = setUp('batch-stop', { ms: 3000, days: 4, batchSize: 4, concurrency: 1 });
    const first = worker();
    const second = worker();
    try {
      await first.start();
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      await waitFor('the first partition of the batch to start', () => started('2024-01-01'));
      expect(await first.signal('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(started('2024-01-02')).toBe(false);
      expect((await warehouse.ledger({ backfillId })).map((r) => r.partition)).toEqual(['2024-01-01']);
      await second.start();
      const outcome = await client.wait(backfillId, 60_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress).toMatchObject({ done: 4, failed: 0 });
      const rows = await warehouse.ledger({ backfillId });
      expect(rows.map((r) => [r.partition, r.attempt, r.executions]).sort()).toEqual([
        ['2024-01-01', 1, 1],
        ['2024-01-02', 1, 1],
        ['2024-01-03', 1, 1],
        ['2024-01-04', 1, 1],
      ]);
    } finally {
      await first.stop();
      await second.stop();
      await warehouse.close();
    }
  });
});
