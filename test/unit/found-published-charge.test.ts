/**
 * A partition that an earlier attempt or an earlier node workflow run published, but whose result
 * never reached the workflow (a crash after the commit; a node workflow that continued as new
 * while the batch ran, whose next run starts the batch again with `recheck`), is found published
 * and not made again. That result is the only one the budgets see: it must say what making the
 * partition took and cost, as the ledger recorded it, not the look-up's milliseconds. A real
 * SQLite warehouse; the partition activity as the worker runs it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/run-partitions.ts';
import type { Transform } from '../../activities/transforms.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { costOf, noSpending, spend } from '../../core/budget.ts';
import type { PartitionNode, RunPartitionsInput, RunPartitionsResult } from '../../core/protocol.ts';

let dir: string;
let warehouse: SqliteWarehouse;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-found-published-'));
  warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
});
afterEach(async () => {
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
});

const keys = ['2024-01-01', '2024-01-02'];
const node: PartitionNode = { id: 'days', transform: 'days', params: {}, checks: [], heartbeatTimeout: '30s' };

/** 60 ms of work and a reported cost of 7 per partition. */
const costly: Transform = async (ctx) => {
  await sleep(60);
  ctx.reportCost(7);
  return [{ day: ctx.partition }];
};
const mustNotRun: Transform = async (ctx) => {
  throw new Error(`${ctx.partition} was published already: it must not be made again`);
};

function run(transform: Transform, options: { attempt?: number; recheck?: boolean } = {}): Promise<RunPartitionsResult> {
  const input: RunPartitionsInput = {
    backfillId: 'bf-1',
    runKey: 'run-1',
    workflowId: 'backfill/bf-1/days',
    node,
    partitions: keys.map((key, index) => ({ index, key, window: { start: `${key}T00:00:00Z`, end: `${key}T23:59:59Z` }, inputs: [], throttled: 0, ...(options.recheck ? { recheck: true } : {}) })),
    maxAttempts: 3,
  };
  const activities = createActivities({ warehouse, transforms: new Map([['days', transform]]), codeVersion: 'test' });
  return new MockActivityEnvironment({ attempt: options.attempt ?? 1 }).run(activities.runPartitions, input) as Promise<RunPartitionsResult>;
}

describe('a partition found published is charged what making it took and cost', () => {
  it("by the next node workflow run's recheck of a batch carried across continue-as-new", async () => {
    // The batch of the run that continued as new: it published both; its result went nowhere.
    const lost = await run(costly);
    const made = spend(noSpending(), lost.finished);
    expect(made.reported).toBe(14);
    expect(made.partitionSeconds).toBeGreaterThanOrEqual(0.12);

    const rechecked = await run(mustNotRun, { recheck: true });
    expect(rechecked.finished.map((r) => r.version)).toEqual(lost.finished.map((r) => r.version));
    const charged = spend(noSpending(), rechecked.finished);
    expect(charged.reported).toBe(14);
    expect(charged.rows).toBe(2);
    // The ledger's duration of each (its transform and its share of the commit), not the look-up's.
    expect(charged.partitionSeconds).toBeGreaterThanOrEqual(0.12);
    for (const r of rechecked.finished) expect(costOf('partitionSeconds', r)).toBeLessThanOrEqual(costOf('partitionSeconds', lost.finished[r.index]!) + 0.05);
  });

  it('by a retry after a crash that followed the commit', async () => {
    await run(costly);
    const retried = await run(mustNotRun, { attempt: 2 });
    expect(spend(noSpending(), retried.finished).reported).toBe(14);
    expect(spend(noSpending(), retried.finished).partitionSeconds).toBeGreaterThanOrEqual(0.12);
  });
});
