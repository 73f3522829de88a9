/**
 * `backfill worker` stopped by SIGTERM (a deploy, a scale-down) while partitions run: they finish
 * within the shutdown grace, or go back to their node, and none fails for it.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { WorkerProcess } from '../../scripts/worker-process.ts';
import { address, connectClient, scratch, testSpec, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

/** A transform that marks its start in `dir`, then takes `ms` (or less, when cancelled); partitions from `fastFrom` on take none. */
const TRANSFORMS = `
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
export default {
  marked: async ({ partition, params, signal }) => {
    writeFileSync(params.dir + '/started-' + partition, '');
    await delay(params.fastFrom !== undefined && partition >= params.fastFrom ? 0 : params.ms, undefined, { signal });
    return [{ day: partition }];
  },
};
`;

function setUp(name: string, node: { ms: number; fastFrom?: string; days: number; batchSize: number; concurrency: number }) {
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
    nodes: [{ id: 'days', transform: 'marked', params: { dir, ms: node.ms, ...(node.fastFrom !== undefined ? { fastFrom: node.fastFrom } : {}) }, batchSize: node.batchSize }],
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
      // Its last line says what ended during the grace (it ended on the stopping line before).
      expect(first.log).toContain('SIGTERM: stopped; 2 partition activities finished during the grace, 0 handed back to the server');
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
    // Only the partition running at the stop is slow: the next worker runs the other three at once.
    const { queue, worker, spec, started, warehouse } = setUp('batch-stop', { ms: 3000, fastFrom: '2024-01-02', days: 4, batchSize: 4, concurrency: 1 });
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

/**
 * A transform that ignores its cancellation where $STUCK says how: 'loop' polls for ever and never
 * looks at its signal (the event loop stays busy, as with a loop of queries); 'sql' runs a query
 * on the warehouse that never ends (SQLite's statements cannot be interrupted).
 */
const STUCK_TRANSFORMS = `
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
export default {
  stuck: async ({ partition, params, warehouse }) => {
    writeFileSync(params.dir + '/started-' + partition, '');
    if (process.env.STUCK === 'loop') for (;;) await delay(50);
    if (process.env.STUCK === 'sql') await warehouse.query('WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) AS n FROM r');
    return [{ day: partition }];
  },
};
`;

describe('backfill worker stopped with a transform that ignores its cancellation', () => {
  let client: BackfillClient;
  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
  });

  /** A worker whose transform is stuck (`mode`) runs the one partition of a backfill; `check` stops it; then a sound worker finishes the backfill. */
  async function stuckThenRetried(name: string, mode: 'loop' | 'sql', check: (stuck: WorkerProcess, backfillId: string) => Promise<void>): Promise<void> {
    const dir = scratch(name);
    const queue = uniqueQueue(name);
    const transforms = join(dir, 'transforms.mjs');
    writeFileSync(transforms, STUCK_TRANSFORMS);
    const warehousePath = join(dir, 'warehouse.db');
    const worker = (env: Record<string, string>) => workerProcess({ address: address(), queue, warehouse: warehousePath, transforms: [transforms], shutdownGrace: '1s', env });
    const spec = testSpec(queue, {
      name,
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' },
      // The abandoned attempt is seen lost after 2 s without a heartbeat, and retried.
      defaults: { retry: { maxAttempts: 3, initialInterval: '1s' }, heartbeatTimeout: '2s' },
      nodes: [{ id: 'days', transform: 'stuck', params: { dir }, batchSize: 1 }],
    });
    const stuck = worker({ STUCK: mode });
    const next = worker({});
    const warehouse = new SqliteWarehouse(warehousePath);
    try {
      await stuck.start();
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      await waitFor('the partition to start', () => existsSync(join(dir, 'started-2024-01-01')));
      await check(stuck, backfillId);
      // No work is lost: the attempt the stop abandoned timed out, and the next worker ran it again.
      await next.start();
      const outcome = await client.wait(backfillId, 60_000);
      expect(outcome.state).toBe('completed');
      expect(outcome.progress).toMatchObject({ done: 1, failed: 0 });
      expect((await warehouse.ledger({ backfillId })).map((r) => [r.partition, r.status, r.attempt])).toEqual([['2024-01-01', 'published', 2]]);
    } finally {
      await stuck.stop();
      await next.stop();
      await warehouse.close();
    }
  }

  /** How long `stuck` takes to end after `signal`, and how it ended. */
  async function timedSignal(stuck: WorkerProcess, signal: NodeJS.Signals) {
    const signalled = Date.now();
    const ended = await stuck.signal(signal);
    return { ...ended, ms: Date.now() - signalled };
  }

  it('exits 1 after the grace and the abandon time, naming the partition; a new worker runs it again', async () => {
    await stuckThenRetried('stuck-loop', 'loop', async (stuck, backfillId) => {
      const ended = await timedSignal(stuck, 'SIGTERM');
      // The grace (1 s), then SHUTDOWN_ABANDON_MS (5 s), then closing.
      expect(ended.ms).toBeLessThan(10_000);
      expect(ended).toMatchObject({ code: 1, signal: null });
      expect(stuck.log).toContain('SIGTERM: stopping; running partitions get up to 1 s to finish (1 running; a second signal stops at once)');
      expect(stuck.log).toContain('the 1 s shutdown grace is over: cancelling what still runs (1)');
      expect(stuck.log).toContain(
        `the worker stopped without waiting longer for 1 activity that ignored its cancellation (still running 5 s after the 1 s shutdown grace):\n  backfill ${backfillId} node days partition 2024-01-01 (attempt 1)`,
      );
      expect(stuck.log).toContain('No work is lost: each attempt times out');
      // Not the SDK's own report of it too, with a long stack.
      expect(stuck.log).not.toContain('GracefulShutdownPeriodExpiredError');
      expect(stuck.log).not.toContain('Worker failed');
      expect(stuck.log).not.toContain('did not close');
    });
  });

  it("ends by SIGKILL, having said why, when a query that never ends holds the warehouse (the process could not exit)", async () => {
    await stuckThenRetried('stuck-sql', 'sql', async (stuck, backfillId) => {
      const ended = await timedSignal(stuck, 'SIGTERM');
      // The grace (1 s), SHUTDOWN_ABANDON_MS (5 s), then WAREHOUSE_CLOSE_MS (2 s).
      expect(ended.ms).toBeLessThan(12_000);
      expect(ended).toMatchObject({ code: null, signal: 'SIGKILL' });
      expect(stuck.log).toContain(`backfill ${backfillId} node days partition 2024-01-01 (attempt 1)`);
      expect(stuck.log).toMatch(/the warehouse .*warehouse\.db did not close within 2 s: an abandoned transform still runs a statement on it/);
      expect(stuck.log).toContain('ending the process at once (SIGKILL)');
    });
  });

  it('a second signal stops it at once, without waiting for the grace', async () => {
    await stuckThenRetried('stuck-twice', 'loop', async (stuck) => {
      const ended = timedSignal(stuck, 'SIGINT');
      await waitFor('the stopping message', () => stuck.log.includes('SIGINT: stopping; running partitions get up to 1 s to finish (1 running; Ctrl-C again to stop at once)'));
      stuck.send('SIGINT');
      // Ended by the signal itself, long before the grace and the abandon time (6 s) are over.
      expect(await ended).toMatchObject({ code: null, signal: 'SIGINT' });
      expect((await ended).ms).toBeLessThan(4_000);
    });
  });
});
