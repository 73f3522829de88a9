/**
 * ctx.reportLatency in the partition activity (a real SQLite warehouse): what a transform says
 * about the system it calls reaches the node's latency pacing as the partition's `latencyMs`,
 * and nothing a transform passes can make it NaN, negative or infinite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/run-partitions.ts';
import type { Transform } from '../../activities/transforms.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { PartitionNode, RunPartitionsInput, RunPartitionsResult } from '../../core/protocol.ts';

let dir: string;
let warehouse: SqliteWarehouse;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-latency-'));
  warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
});
afterEach(async () => {
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
});

let runs = 0;

/** Runs one partition of a node whose transform reports `values` (as given: a transform is any JavaScript). */
async function latencyOf(values: unknown[]): Promise<RunPartitionsResult['finished'][number]> {
  const reporting: Transform = (ctx) => {
    for (const value of values) ctx.reportLatency(value as number);
    return [{ n: 1 }];
  };
  const node: PartitionNode = { id: 'calls', transform: 'reporting', params: {}, checks: [], heartbeatTimeout: '30s' };
  const input: RunPartitionsInput = {
    backfillId: 'bf-1',
    runKey: `run-${++runs}`,
    workflowId: 'backfill/bf-1/calls',
    node,
    partitions: [{ index: 0, key: '2024-01-01', window: { start: '2024-01-01T00:00:00Z', end: '2024-01-02T00:00:00Z' }, inputs: [], throttled: 0 }],
    maxAttempts: 1,
  };
  const activities = createActivities({ warehouse, transforms: new Map([['reporting', reporting]]), codeVersion: 'test' });
  const result = (await new MockActivityEnvironment({ attempt: 1 }).run(activities.runPartitions, input)) as RunPartitionsResult;
  return result.finished[0]!;
}

describe('ctx.reportLatency', () => {
  it('gives the partition the highest latency it reported, rounded to the millisecond', async () => {
    expect((await latencyOf([12.4, 40.6, 3])).latencyMs).toBe(41);
    expect((await latencyOf([0])).latencyMs).toBe(0);
  });

  it('ignores what is not a finite, non-negative number', async () => {
    expect((await latencyOf([Number.NaN, -5, Number.POSITIVE_INFINITY, '900', null, 25])).latencyMs).toBe(25);
    const none = await latencyOf([Number.NaN, -1, '7']);
    expect(none).not.toHaveProperty('latencyMs');
  });

  it('leaves latencyMs out when the transform reports nothing (the pacer then takes the partition\'s duration)', async () => {
    const result = await latencyOf([]);
    expect(result).not.toHaveProperty('latencyMs');
    expect(result.finishedAt).toBeGreaterThanOrEqual(result.startedAt);
  });
});
