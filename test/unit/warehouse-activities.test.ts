/**
 * The warehouse as the activities see it: a worker on another warehouse refuses a backfill's
 * partitions, the identity and lease activities, a stale run's publish, and `adopt` carried
 * from the node to the warehouse (a real SQLite warehouse, the built-in sql transform).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/run-partitions.ts';
import { BUILTIN_TRANSFORMS } from '../../activities/transforms.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { BackfillError } from '../../core/errors.ts';
import { resolveSpec } from '../../core/spec.ts';
import { NON_RETRYABLE_TYPES, PARTITION_FAILURES, type PartitionNode, type RunPartitionsInput, type RunPartitionsResult } from '../../core/protocol.ts';

let dir: string;
let warehouse: SqliteWarehouse;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-activities-'));
  warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
});
afterEach(async () => {
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
});

const node: PartitionNode = { id: 'orders', transform: 'sql', sql: 'SELECT :partition AS day, 1 AS n', params: {}, checks: [], heartbeatTimeout: '30s' };
const input = (extra: Partial<RunPartitionsInput> = {}): RunPartitionsInput => ({
  backfillId: 'bf-1',
  runKey: 'run-1',
  workflowId: 'backfill/bf-1/orders',
  node,
  partitions: [{ index: 0, key: '2024-01-01', window: { start: '2024-01-01T00:00:00Z', end: '2024-01-02T00:00:00Z' }, inputs: [], throttled: 0 }],
  maxAttempts: 1,
  ...extra,
});
const activities = () => createActivities({ warehouse, transforms: BUILTIN_TRANSFORMS, codeVersion: 'test' });
const run = (value: RunPartitionsInput) => new MockActivityEnvironment({ attempt: 1 }).run(activities().runPartitions, value) as Promise<RunPartitionsResult>;

describe('the warehouse activities', () => {
  it('warehouseIdentity gives the id and the location of this worker\'s warehouse', async () => {
    const identity = await new MockActivityEnvironment().run(activities().warehouseIdentity);
    expect(identity).toEqual({ id: await warehouse.identity(), location: join(dir, 'warehouse.db') });
  });

  it('a backfill that started on another warehouse: its batch runs nothing and gives its partitions back (deferred), the log naming both warehouses and the fix', async () => {
    const warned: string[] = [];
    const logger = new DefaultLogger('WARN', (entry) => warned.push(entry.message));
    const given = (await new MockActivityEnvironment({ attempt: 1 }, { logger }).run(activities().runPartitions, input({ warehouseId: 'the-other-warehouse' }))) as RunPartitionsResult;
    expect(given).toEqual({ finished: [], attempt: 1, deferred: 1 });
    expect(warned).toHaveLength(1);
    const message = warned[0]!;
    expect(message).toContain(join(dir, 'warehouse.db'));
    expect(message).toContain(await warehouse.identity());
    expect(message).toContain('the-other-warehouse');
    expect(message).toMatch(/gives the partitions back .*BACKFILL_WAREHOUSE/);
    expect(await warehouse.ledger({})).toEqual([]);
    expect((await run(input({ warehouseId: await warehouse.identity() }))).finished).toHaveLength(1);
    expect((await run(input({ runKey: 'run-2' }))).finished).toHaveLength(1);
  });

  it('acquireDatasets and releaseDatasets lease datasets; a stale run\'s publish fails as StaleRun, for good', async () => {
    const env = new MockActivityEnvironment();
    expect(await env.run(activities().acquireDatasets, { backfillId: 'bf-1', runKey: 'run-2', nodes: ['orders'] })).toEqual({ acquired: true });
    expect(await env.run(activities().acquireDatasets, { backfillId: 'bf-2', runKey: 'x', nodes: ['orders'] })).toEqual({
      acquired: false,
      holders: [{ node: 'orders', backfillId: 'bf-1', runKey: 'run-2' }],
    });
    const failure = await run(input()).catch((e: unknown) => e);
    expect(failure).toMatchObject({ type: 'StaleRun', nonRetryable: true });
    expect(await warehouse.ledger({})).toEqual([]);
    await env.run(activities().releaseDatasets, { backfillId: 'bf-1', runKey: 'run-2' });
    expect((await run(input())).finished).toHaveLength(1);
  });

  it('adopt on the node lets its dataset take over a view of the same name', async () => {
    await warehouse.query('SELECT 1');
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dir, 'warehouse.db'));
    db.exec('CREATE VIEW orders AS SELECT 1 AS legacy');
    db.close();
    expect(await run(input()).catch((e: unknown) => e)).toMatchObject({ type: 'InvalidSpec', nonRetryable: true });
    expect((await run(input({ node: { ...node, adopt: true } }))).finished).toHaveLength(1);
    expect(await warehouse.query('SELECT day, n FROM orders')).toEqual([{ day: '2024-01-01', n: 1 }]);
  });

  it('spec SQL that tries a second statement fails as SqlError, for good', async () => {
    const failure = await run(input({ node: { ...node, sql: 'SELECT 1 AS n; DELETE FROM backfill_ledger' } })).catch((e: unknown) => e);
    expect(failure).toMatchObject({ type: 'SqlError', nonRetryable: true });
  });

  it('every failure type the activity raises for good is one the retry policy never retries', () => {
    expect(NON_RETRYABLE_TYPES).toEqual(Object.values(PARTITION_FAILURES));
    expect(NON_RETRYABLE_TYPES).toEqual(expect.arrayContaining(['WrongWarehouse', 'StaleRun', 'SqlError', 'CheckFailed', 'InvalidSpec']));
  });

  it('a spec node may say adopt: true (a boolean), which the resolved node keeps; absent, it is not there', () => {
    const spec = (adopt?: unknown) => ({
      name: 'x',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' },
      nodes: [{ id: 'orders', sql: 'SELECT 1 AS n', ...(adopt !== undefined ? { adopt } : {}) }],
    });
    expect(resolveSpec(spec(true)).nodes[0]!.adopt).toBe(true);
    expect(resolveSpec(spec()).nodes[0]).not.toHaveProperty('adopt');
    expect(resolveSpec(spec(false)).nodes[0]).not.toHaveProperty('adopt');
    expect(() => resolveSpec(spec('yes'))).toThrow(BackfillError);
  });
});
