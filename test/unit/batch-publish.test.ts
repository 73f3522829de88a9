/**
 * A batch activity commits its partitions together (`publishMany`, one transaction) and keeps
 * every guarantee of publishing them one by one: each partition is atomic, a failing check or
 * transform fails only its partition, what is committed is checkpointed through heartbeats (a
 * retry skips it), and no more than a bounded amount of work waits uncommitted. A real SQLite
 * warehouse; the partition activity as the worker runs it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ThrottledError } from '../../activities/errors.ts';
import { COMMIT_AFTER_MS, PublishBuffer } from '../../activities/publish-buffer.ts';
import { createActivities, type ActivityDeps } from '../../activities/run-partitions.ts';
import { BUILTIN_TRANSFORMS, type Transform } from '../../activities/transforms.ts';
import { ThreadedWarehouse } from '../../activities/warehouse/sqlite/threaded.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { PartitionWrite, PublishedBatch } from '../../activities/warehouse/types.ts';
import { NON_RETRYABLE_TYPES, type PartitionFailureDetails, type PartitionNode, type PartitionResult, type RunPartitionsInput, type RunPartitionsResult } from '../../core/protocol.ts';

/** A SQLite warehouse that records each publishMany call's partitions. */
class CountingWarehouse extends SqliteWarehouse {
  readonly calls: string[][] = [];
  override publishMany(writes: readonly PartitionWrite[]): Promise<PublishedBatch> {
    this.calls.push(writes.map((w) => w.partition));
    return super.publishMany(writes);
  }
}

let dir: string;
let warehouse: CountingWarehouse;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-batch-publish-'));
  warehouse = new CountingWarehouse(join(dir, 'warehouse.db'));
});
afterEach(async () => {
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
});

const keys = ['2024-01-01', '2024-01-02', '2024-01-03', '2024-01-04', '2024-01-05'];

/** One row per partition, none for `empty` keys; throws or throttles for those keys; waits `waitMs` first. */
function days(options: { empty?: string[]; fails?: string[]; throttles?: string[]; waitMs?: number } = {}): Transform {
  return async (ctx) => {
    if (options.waitMs) await sleep(options.waitMs);
    if (options.fails?.includes(ctx.partition)) throw new Error(`no data for ${ctx.partition}`);
    if (options.throttles?.includes(ctx.partition)) throw new ThrottledError('slow down');
    return options.empty?.includes(ctx.partition) ? [] : [{ day: ctx.partition, n: 1 }];
  };
}

/**
 * A heartbeat timeout long enough that the activity's timer heartbeat (every third of it) never
 * fires within a test: the heartbeats the tests see are the commits' checkpoints and the
 * transforms' own. With 30 s, a batch slowed past 10 s by a loaded machine got one more (a full
 * unit run once took 14.5 s for three SQL partitions of about one second each).
 */
const HEARTBEAT_TIMEOUT = '10m';

const node: PartitionNode = { id: 'days', transform: 'days', params: {}, checks: [{ type: 'row_count', min: 1, severity: 'error' }], heartbeatTimeout: HEARTBEAT_TIMEOUT };

function run(
  transform: Transform,
  options: { attempt?: number; finished?: PartitionResult[]; heartbeatDetails?: unknown; params?: Record<string, unknown>; warehouseId?: string; retryBudget?: ActivityDeps['retryBudget']; partitions?: number[] } = {},
) {
  const input: RunPartitionsInput = {
    backfillId: 'bf-1',
    runKey: 'run-1',
    workflowId: 'backfill/bf-1/days',
    node: options.params ? { ...node, params: options.params } : node,
    partitions: keys
      .map((key, index) => ({ index, key, window: { start: `${key}T00:00:00Z`, end: `${key}T23:59:59Z` }, inputs: [], throttled: 0 }))
      .filter((task) => options.partitions?.includes(task.index) ?? true),
    maxAttempts: 3,
    ...(options.warehouseId !== undefined ? { warehouseId: options.warehouseId } : {}),
  };
  const activities = createActivities({ warehouse, transforms: new Map([['days', transform]]), codeVersion: 'test', ...(options.retryBudget ? { retryBudget: options.retryBudget } : {}) });
  const heartbeatDetails = options.finished ? { finished: options.finished } : options.heartbeatDetails;
  const env = new MockActivityEnvironment({ attempt: options.attempt ?? 1, ...(heartbeatDetails !== undefined ? { heartbeatDetails } : {}) });
  const heartbeats: number[][] = [];
  const sent: unknown[] = [];
  env.on('heartbeat', (details: { finished: PartitionResult[] }) => {
    heartbeats.push(details.finished.map((r) => r.index));
    sent.push(JSON.parse(JSON.stringify(details)));
  });
  const result = env.run(activities.runPartitions, input) as Promise<RunPartitionsResult>;
  return { result, heartbeats, sent, env };
}

async function failureOf(promise: Promise<unknown>): Promise<{ failure: ApplicationFailure; details: PartitionFailureDetails }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  const failure = error as ApplicationFailure;
  return { failure, details: failure.details![0] as PartitionFailureDetails };
}

const published = async () => (await warehouse.ledger({ node: 'days' })).filter((r) => r.status === 'published').map((r) => r.partition).sort();

describe('a batch activity commits its partitions together', () => {
  it('quick partitions go in one publishMany: one transaction for the batch, each partition its own version and ledger row', async () => {
    const { result } = run(days());
    const outcome = await result;
    expect(outcome.finished.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    expect(warehouse.calls).toEqual([keys]);
    expect(await published()).toEqual(keys);
    // Each partition's time is its own, not the batch's.
    for (const r of outcome.finished) expect(r.finishedAt).toBeGreaterThanOrEqual(r.startedAt);
  });

  it('a failing check fails only its partition: those before and after it in the batch are committed, and the failure names it', async () => {
    const { result } = run(days({ empty: ['2024-01-03'] }));
    const { failure, details } = await failureOf(result);
    expect(failure.type).toBe('CheckFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(details.failedIndex).toBe(2);
    expect(details.finished.map((r) => r.index).sort()).toEqual([0, 1, 3, 4]);
    expect(await published()).toEqual(['2024-01-01', '2024-01-02', '2024-01-04', '2024-01-05']);
    const failed = (await warehouse.ledger({ node: 'days', partition: '2024-01-03' }))[0]!;
    expect(failed.status).toBe('failed_check');
  });

  // Before, the second failure's ledger row was written here and again when it ran next: two failed_check rows for one failure.
  it('a second failing check in the batch is given back unrecorded: it runs again, and its one failure is recorded then', async () => {
    const { result } = run(days({ empty: ['2024-01-02', '2024-01-04'] }));
    const { details } = await failureOf(result);
    expect(details.failedIndex).toBe(1);
    expect(details.finished.map((r) => r.index).sort()).toEqual([0, 2]);
    expect(await published()).toEqual(['2024-01-01', '2024-01-03']);
    expect((await warehouse.ledger({ node: 'days', partition: '2024-01-02' })).map((r) => r.status)).toEqual(['failed_check']);
    expect(await warehouse.ledger({ node: 'days', partition: '2024-01-04' })).toEqual([]);
    // The batch that runs what was given back: one failed_check row for 2024-01-04.
    const again = run(days({ empty: ['2024-01-02', '2024-01-04'] }), { partitions: [3, 4] });
    expect((await failureOf(again.result)).details.failedIndex).toBe(3);
    expect((await warehouse.ledger({ node: 'days', partition: '2024-01-04' })).map((r) => r.status)).toEqual(['failed_check']);
  });

  it('a transform that throws: what the batch computed before it is committed and checkpointed first', async () => {
    const { result, heartbeats } = run(days({ fails: ['2024-01-04'] }));
    const { details } = await failureOf(result);
    expect(details.failedIndex).toBe(3);
    expect(details.finished.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(heartbeats.at(-1)).toEqual([0, 1, 2]);
    expect(await published()).toEqual(keys.slice(0, 3));
  });

  it('a throttle ends the batch with what came before it committed', async () => {
    const { result } = run(days({ throttles: ['2024-01-02'] }));
    const outcome = await result;
    expect(outcome.throttled).toEqual({ index: 1, message: 'slow down' });
    expect(outcome.finished.map((r) => r.index)).toEqual([0]);
    expect(await published()).toEqual(['2024-01-01']);
  });

  it(`a partition that takes ${COMMIT_AFTER_MS} ms or more commits alone and is checkpointed at once: a crash loses at most one partition's work`, async () => {
    // A little over the bound: a timer of exactly 500 ms can measure 499 by Date.now() (its clock rounds apart).
    const { result, heartbeats } = run(days({ waitMs: COMMIT_AFTER_MS + 10 }));
    const outcome = await result;
    expect(warehouse.calls).toEqual(keys.map((k) => [k]));
    // Every commit but the last is checkpointed (the last is in the result).
    expect(heartbeats).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]);
    expect(outcome.finished).toHaveLength(5);
  });

  it('a retry skips what the checkpoint lists and finds published what a crash after the commit left: one version per partition', async () => {
    const first = await run(days()).result;
    warehouse.calls.length = 0;
    // The retry's checkpoint knows of the first two; the crash came after the rest committed.
    const retry = await run(days(), { attempt: 2, finished: first.finished.slice(0, 2) }).result;
    expect(retry.finished.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    expect(retry.finished.slice(2).map((r) => r.version)).toEqual([1, 1, 1]);
    expect(warehouse.calls).toEqual([]);
    expect((await warehouse.ledger({ node: 'days' })).map((r) => r.version)).toEqual([1, 1, 1, 1, 1]);
  });
});

describe("the activity's checkpoint is its own", () => {
  it("a transform's heartbeat details go beside the checkpoint, under user, and never replace it", async () => {
    const transform: Transform = (ctx) => {
      ctx.heartbeat({ finished: 500, partition: ctx.partition });
      return ctx.partition === '2024-01-03' ? [] : [{ day: ctx.partition }];
    };
    const { result, sent } = run(transform);
    const { details } = await failureOf(result);
    expect(details.finished.map((r) => r.index).sort()).toEqual([0, 1, 3, 4]);
    // Every heartbeat is a checkpoint: what was committed when it was sent, and the running partition's own details.
    expect(sent.length).toBeGreaterThanOrEqual(5);
    for (const beat of sent) expect(beat).toMatchObject({ finished: expect.any(Array), attempt: 1, user: { finished: 500 } });
    expect(sent[2]).toEqual({ finished: [], attempt: 1, user: { finished: 500, partition: '2024-01-03' } });
  });

  it('details the SDK could not encode (a bigint) are left out rather than cancel the activity', async () => {
    const { result, sent } = run((ctx) => {
      ctx.heartbeat({ rows: 10n });
      return [{ day: ctx.partition }];
    });
    expect((await result).finished).toHaveLength(5);
    for (const beat of sent) expect(beat).toEqual({ finished: [], attempt: 1 });
  });

  it("a retry ignores heartbeat details that are not the activity's checkpoint for this batch, and completes", async () => {
    const first = await run(days()).result;
    const other = { ...first.finished[0]!, key: '2023-12-31' };
    for (const heartbeatDetails of [
      { finished: 500 },
      { finished: ['part-0001.csv'] },
      { finished: [first.finished[0], { index: 1 }] },
      { finished: [other] },
      { finished: [first.finished[0], first.finished[0]] },
      'progress: 40%',
    ]) {
      const retry = await run(days(), { attempt: 2, heartbeatDetails }).result;
      expect(retry.finished.map((r) => [r.index, r.key, r.version])).toEqual(first.finished.map((r) => [r.index, r.key, 1]));
    }
    expect((await warehouse.ledger({ node: 'days' })).map((r) => r.version)).toEqual([1, 1, 1, 1, 1]);
  });

  it('a retry keeps only the fields of a result from its checkpoint', async () => {
    const first = await run(days()).result;
    const retry = await run(days(), { attempt: 2, heartbeatDetails: { finished: [{ ...first.finished[0]!, extra: 'x' }], attempt: 1, user: { finished: 1 } } }).result;
    expect(retry.finished[0]).toEqual(first.finished[0]);
  });
});

describe("a node's params", () => {
  it('reach the transform as a frozen copy: it cannot change what the ledger records (--only-changed compares it), nor what later partitions see', async () => {
    const params = { ordersPerDay: 200, nested: { list: [1, 2] } };
    const seen: unknown[] = [];
    const { result } = run(
      (ctx) => {
        seen.push(structuredClone(ctx.params));
        // Filling a default in place, as a transform might.
        expect(() => ((ctx.params as Record<string, unknown>).threshold ??= 2000)).toThrow(TypeError);
        expect(() => (ctx.params.nested as { list: number[] }).list.push(3)).toThrow(TypeError);
        return [{ day: ctx.partition }];
      },
      { params },
    );
    expect((await result).finished).toHaveLength(5);
    expect(seen).toEqual(keys.map(() => params));
    expect(params).toEqual({ ordersPerDay: 200, nested: { list: [1, 2] } });
    expect(Object.isFrozen(params)).toBe(false);
    for (const row of await warehouse.ledger({ node: 'days' })) expect(row.params).toEqual(params);
  });

  it('a transform that writes to them fails its partition at once (a retry would repeat it), with a message that names it and the fix', async () => {
    const writes: Array<[string, Transform]> = [
      ['assigns', (ctx) => void ((ctx.params as Record<string, unknown>).ordersPerDay = 1)],
      ['adds a default', (ctx) => void ((ctx.params as Record<string, unknown>).threshold ??= 2000)],
      ['deletes', (ctx) => void delete (ctx.params as Record<string, unknown>).ordersPerDay],
      ['pushes to a nested list', async (ctx) => void (ctx.params.nested as { list: number[] }).list.push(3)],
      ['assigns a nested value', (ctx) => void ((ctx.params.nested as { list: number[] }).list[0] = 9)],
    ];
    for (const [what, transform] of writes) {
      const { failure, details } = await failureOf(run(transform, { params: { ordersPerDay: 200, nested: { list: [1, 2] } } }).result);
      expect({ what, type: failure.type, nonRetryable: failure.nonRetryable }).toEqual({ what, type: 'NonRetryable', nonRetryable: true });
      expect(failure.message).toMatch(/^transform 'days' of node 'days' wrote to its params \(.+\): params are read-only, copy them first .*\{ \.\.\.params \}.*structuredClone\(params\)/);
      expect(details.failedIndex).toBe(0);
    }
  });

  it("a transform's other TypeErrors keep the retry policy, a write to a frozen object of its own too", async () => {
    const own = Object.freeze({ limit: 1 });
    const others: Array<[string, Transform]> = [
      ['reads a property of undefined', (ctx) => void (ctx.params.missing as { x: number }).x],
      ['assigns to a frozen object of its own', () => void ((own as { limit: number }).limit = 2)],
      ['throws a TypeError of its own', () => {
        throw new TypeError('Cannot assign to read only property \'ordersPerDay\' of object \'#<Config>\'');
      }],
    ];
    for (const [what, transform] of others) {
      const { failure } = await failureOf(run(transform, { params: { ordersPerDay: 200 } }).result);
      expect({ what, type: failure.type, nonRetryable: failure.nonRetryable }).toEqual({ what, type: 'TypeError', nonRetryable: false });
    }
  });
});

describe('large partitions', () => {
  it('300,000 rows returned, or inserted in one call, are published (no argument list of their size overflows the stack)', async () => {
    const many = Array.from({ length: 300_000 }, (_, i) => ({ i }));
    const { result } = run((ctx) => {
      if (ctx.partition === '2024-01-01') return many;
      if (ctx.partition === '2024-01-02') ctx.warehouse.insert(many);
      else return [{ i: 0 }];
    });
    expect((await result).finished.map((r) => r.rowCount)).toEqual([300_000, 300_000, 1, 1, 1]);
  }, 60_000);
});

describe('a cancelled batch', () => {
  it('reports the partitions it committed before the cancel: the workflow counts them done', async () => {
    // Each partition takes over COMMIT_AFTER_MS, so each commits (and is checkpointed) alone.
    const slow: Transform = async (ctx) => {
      await sleep(COMMIT_AFTER_MS + 50, undefined, { signal: ctx.signal });
      return [{ day: ctx.partition, n: 1 }];
    };
    const { result, heartbeats, env } = run(slow);
    // Cancelled while the second partition runs: once the first is committed and checkpointed.
    await vi.waitFor(() => expect(heartbeats).toHaveLength(1), { timeout: 10_000, interval: 10 });
    env.cancel();
    const error = await result.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CancelledFailure);
    expect(await published()).toEqual(['2024-01-01']);
    expect(heartbeats).toEqual([[0]]);
    const details = (error as CancelledFailure).details[0] as PartitionFailureDetails;
    expect(details.finished.map((r) => r.key)).toEqual(['2024-01-01']);
    expect(details.failedIndex).toBeNull();
  });
});

describe('what a failing partition tells the retry policy', () => {
  it('another library\'s error named like a reserved failure type is retried: a transient mariadb SqlError (a lost connection) is not a SQL error of the spec', async () => {
    // The mariadb connector names all its errors SqlError, lost connections and deadlocks too.
    class SqlError extends Error {
      override name = 'SqlError';
    }
    const { result } = run(() => {
      throw new SqlError('(conn:12, no: 45028, SQLState: 08S01) socket has unexpectedly been closed');
    });
    const { failure } = await failureOf(result);
    expect(failure.nonRetryable).toBe(false);
    // The node's retry policy never retries the reserved types, whatever nonRetryable says.
    expect(NON_RETRYABLE_TYPES as string[]).not.toContain(failure.type);
    expect(failure.message).toBe('SqlError: (conn:12, no: 45028, SQLState: 08S01) socket has unexpectedly been closed');
  });

  it("a foreign error keeps its name as the failure's type when it is not reserved", async () => {
    const { result } = run(() => {
      throw new TypeError('x is not a function');
    });
    const { failure } = await failureOf(result);
    expect([failure.type, failure.nonRetryable, failure.message]).toEqual(['TypeError', false, 'x is not a function']);
  });

  it('a transform may still fail a partition for good with an ApplicationFailure of a reserved type', async () => {
    const { result } = run(() => {
      throw ApplicationFailure.nonRetryable('bad rows', 'InvalidOutput');
    });
    const { failure } = await failureOf(result);
    expect([failure.type, failure.nonRetryable]).toEqual(['InvalidOutput', true]);
  });

  it("an ApplicationFailure of another copy of the SDK (a transforms module's own, older one) is one: its nonRetryable and type hold", async () => {
    /** As an older @temporalio/common defines it: no marker that makes `instanceof` work across copies. */
    class ForeignApplicationFailure extends Error {
      override name = 'ApplicationFailure';
      constructor(message: string, readonly type: string | undefined, readonly nonRetryable: boolean) {
        super(message);
      }
    }
    for (const [thrown, expected] of [
      [new ForeignApplicationFailure('no data', 'NoData', true), ['NoData', true]],
      [new ForeignApplicationFailure('bad rows', 'InvalidOutput', true), ['InvalidOutput', true]],
      [new ForeignApplicationFailure('busy', undefined, false), ['Error', false]],
      // Not the shape of one: an error like any other.
      [Object.assign(new Error('odd'), { name: 'ApplicationFailure', nonRetryable: 'yes' }), ['ApplicationFailure', false]],
    ] as const) {
      const { failure } = await failureOf(
        run(() => {
          throw thrown;
        }).result,
      );
      expect([failure.type, failure.nonRetryable]).toEqual(expected);
    }
  });

  it('a row that is not an object (a null a transform returned or inserted) fails the partition at once as InvalidOutput, naming the row', async () => {
    for (const transform of [
      (() => [{ day: '2024-01-01' }, null]) as unknown as Transform,
      ((ctx) => void ctx.warehouse.insert([{ day: ctx.partition }, { day: ctx.partition }, 7 as never])) satisfies Transform,
    ]) {
      const { result } = run(transform);
      const { failure, details } = await failureOf(result);
      expect([failure.type, failure.nonRetryable, details.failedIndex]).toEqual(['InvalidOutput', true, 0]);
      expect(failure.message).toMatch(/transform 'days' produced (null as row 1|number as row 2): every row must be a plain object/);
    }
    expect(await published()).toEqual([]);
  });

  it('a row that is a Date or another object that is not plain (stored as a row without columns) fails as InvalidOutput', async () => {
    class Reading {
      value = 1;
    }
    for (const [row, what] of [
      [new Date(), 'a Date'],
      [new Map([['a', 1]]), 'a Map'],
      [new Reading(), 'a Reading'],
    ] as const) {
      const { failure } = await failureOf(run(() => [{ n: 1 }, row] as never).result);
      expect([failure.type, failure.nonRetryable, failure.message]).toEqual(['InvalidOutput', true, `transform 'days' produced ${what} as row 1: every row must be a plain object with one key per column`]);
    }
    // A row without a prototype is plain.
    expect((await run(() => [Object.assign(Object.create(null) as object, { n: 1 })]).result).finished).toHaveLength(5);
  });

  it('a value no warehouse stores alike fails as InvalidOutput, naming its row and column and what to do', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [new Date('nope'), /^transform 'days' produced an Invalid Date: give a valid Date, or null in column 'v' of row 1$/],
      [{ total: 10n }, /^transform 'days' produced an object that does not convert to JSON text \(.*BigInt.*\): .* in column 'v' of row 1$/],
      [[1n], /does not convert to JSON text .* in column 'v' of row 1$/],
      [2n ** 63n, /^transform 'days' produced a bigint beyond 64 bits \(9223372036854775808n\), which not every warehouse can hold: store it as a string \(String\(value\)\) in column 'v' of row 1$/],
      [-(2n ** 63n) - 1n, /a bigint beyond 64 bits/],
      [new Map([[1, 2]]), /a Map, whose JSON text \(\{\}\) would lose its contents/],
      [() => 1, /a function: a row value is a string/],
      [Symbol('s'), /a symbol: a row value is a string/],
    ];
    for (const [value, message] of cases) {
      const { failure } = await failureOf(run(() => [{ v: 1 }, { v: value }]).result);
      expect([failure.type, failure.nonRetryable]).toEqual(['InvalidOutput', true]);
      expect(failure.message).toMatch(message);
    }
    expect(await published()).toEqual([]);
  });

  it('the values a row may hold are stored: 64-bit bigints at both ends, Dates, plain objects and arrays as JSON text', async () => {
    const when = new Date('2024-01-01T05:00:00Z');
    const { result } = run((ctx) => [{ day: ctx.partition, low: -(2n ** 63n), high: 2n ** 63n - 1n, when, o: { x: 1, y: [1, 2], at: when }, none: null, gone: undefined, ok: true }]);
    expect((await result).finished).toHaveLength(5);
    const [row] = await warehouse.query("SELECT CAST(low AS TEXT) AS low, CAST(high AS TEXT) AS high, \"when\", o, none, gone FROM days WHERE day = '2024-01-01'", {}, [], {});
    expect(row).toEqual({ low: '-9223372036854775808', high: '9223372036854775807', when: '2024-01-01T05:00:00.000Z', o: '{"x":1,"y":[1,2],"at":"2024-01-01T05:00:00.000Z"}', none: null, gone: null });
  });

  it('columns whose names differ only in case fail as InvalidOutput on every warehouse, in one row or across rows', async () => {
    for (const rows of [[{ Amount: 1, amount: 2 }], [{ amount: 1 }, { n: 2 }, { Amount: 3 }]]) {
      const { failure } = await failureOf(run(() => rows).result);
      expect([failure.type, failure.nonRetryable]).toEqual(['InvalidOutput', true]);
      expect(failure.message).toMatch(/^transform 'days' produced columns '(Amount|amount)' \(row 0\) and '(Amount|amount)' \(row (0|2)\), whose names differ only in case: SQLite takes them for one column, PostgreSQL for two; rename one$/);
    }
  });

  it('a column with an empty name fails as InvalidOutput, not retried, naming its row, before the warehouse is asked', async () => {
    const { failure } = await failureOf(run(() => [{ n: 1 }, { n: 2, '': 3 }]).result);
    expect([failure.type, failure.nonRetryable, failure.message]).toEqual(['InvalidOutput', true, "transform 'days' produced a column with an empty name (row 1): give every column a name of its own"]);
    expect(warehouse.calls).toEqual([]);
  });

  it("a column named like backfill's own (__x) fails as InvalidOutput, not retried, naming the column and the rule, before the warehouse is asked", async () => {
    for (const rows of [[{ __x: 1 }], [{ n: 1 }, { n: 2, __partition: 'p' }]]) {
      const { failure } = await failureOf(run(() => rows).result);
      expect([failure.type, failure.nonRetryable]).toEqual(['InvalidOutput', true]);
      expect(failure.message).toMatch(/^transform 'days' produced a column '(__x|__partition)' \(row [01]\): names starting with __ are reserved for backfill's own columns \(__partition, __version\): rename it in the transform's output/);
    }
    expect(warehouse.calls).toEqual([]);
  });
});

describe('partitions with nothing to commit', () => {
  it("the ledger's duration is each partition's own work, not its wait for the batch's commit; its finish is the commit", async () => {
    const { result } = run(days({ waitMs: 40 }));
    expect((await result).finished).toHaveLength(5);
    // One commit for all five: the first waited about 160 ms for it.
    expect(warehouse.calls).toHaveLength(1);
    const rows = (await warehouse.ledger({ backfillId: 'bf-1' })).sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    const first = rows[0]!;
    const span = Date.parse(first.finishedAt) - Date.parse(first.startedAt);
    expect(span).toBeGreaterThanOrEqual(5 * 40 - 5);
    // Its own 40 ms and its publish; not the four other partitions' 160 ms it waited through.
    expect(first.durationMs).toBeLessThan(span - 100);
    for (const row of rows) expect(row.durationMs).toBeGreaterThanOrEqual(39);
  });

  it('a dry run batch sends no heartbeat per partition (each would encode every result so far)', async () => {
    const noop: Transform = Object.assign(() => undefined, { dryRun: true as const });
    const { result, heartbeats } = run(noop);
    expect((await result).finished.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    expect(heartbeats).toEqual([]);
    expect(warehouse.calls).toEqual([]);
  });
});

describe('a batch of SQL partitions: their SQL runs in the commit, within the bounds of the batch', () => {
  /** About 0.8 s of SQLite work per partition (a recursive count). */
  const SLOW_SQL = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) SELECT :partition AS day, COUNT(*) AS n FROM c';
  const QUICK_SQL = 'SELECT :partition AS day, 1 AS n';
  /** What a worker opens for a SQLite warehouse: the warehouse on a thread of its own, so that timers run while SQL does. */
  let threaded: ThreadedWarehouse;
  let commits: string[][];
  beforeEach(() => {
    threaded = new ThreadedWarehouse(join(dir, 'threaded.db'));
    const publishMany = threaded.publishMany;
    commits = [];
    threaded.publishMany = async (writes) => {
      const outcome = await publishMany(writes);
      commits.push(outcome.published.map((_, i) => writes[i]!.partition));
      return outcome;
    };
  });
  afterEach(() => threaded.close());

  const sqlActivities = () => createActivities({ warehouse: threaded, transforms: new Map(BUILTIN_TRANSFORMS), codeVersion: 'test' });
  function runSql(sql: string, options: { count: number; timeout?: string; window?: RunPartitionsInput['window']; runKey?: string; activities?: ReturnType<typeof sqlActivities> }) {
    const sqlNode: PartitionNode = { id: 'daily', transform: 'sql', sql, params: {}, checks: [], heartbeatTimeout: HEARTBEAT_TIMEOUT, ...(options.timeout ? { timeout: options.timeout } : {}) };
    const input: RunPartitionsInput = {
      backfillId: 'bf-1',
      runKey: options.runKey ?? 'run-1',
      workflowId: 'backfill/bf-1/daily',
      node: sqlNode,
      partitions: keys.slice(0, options.count).map((key, index) => ({ index, key, window: { start: `${key}T00:00:00Z`, end: `${key}T23:59:59Z` }, inputs: [], throttled: 0 })),
      maxAttempts: 3,
      ...(options.window ? { window: options.window } : {}),
    };
    const activities = options.activities ?? sqlActivities();
    const env = new MockActivityEnvironment({ attempt: 1 });
    const heartbeats: number[][] = [];
    env.on('heartbeat', (details: { finished: PartitionResult[] }) => heartbeats.push(details.finished.map((r) => r.index)));
    return { result: env.run(activities.runPartitions, input) as Promise<RunPartitionsResult>, heartbeats };
  }
  /** What is published once the SQL the batch left behind has ended (the thread runs its calls in turn). */
  const publishedSql = async () => (await threaded.ledger({ node: 'daily' })).filter((r) => r.status === 'published').map((r) => r.partition);

  it(`a partition whose SQL takes ${COMMIT_AFTER_MS} ms or more commits alone and is checkpointed: its SQL counts as its work`, async () => {
    const { result, heartbeats } = runSql(SLOW_SQL, { count: 3 });
    expect((await result).finished).toHaveLength(3);
    expect(commits).toEqual(keys.slice(0, 3).map((k) => [k]));
    expect(heartbeats).toEqual([[0], [0, 1]]);
    // Three partitions of CPU-bound SQL: a loaded machine (a CI run's neighbours) took over 30 s.
  }, 120_000);

  it("quick SQL partitions still commit together: the first alone, as its SQL is not measured yet; the worker remembers the node's measure", async () => {
    const activities = sqlActivities();
    expect((await runSql(QUICK_SQL, { count: 5, activities }).result).finished).toHaveLength(5);
    expect(commits[0]).toEqual([keys[0]]);
    // The first commit also created the dataset: it measured more than the SQL takes, and the next ones correct it.
    expect(commits.length).toBeLessThan(5);
    commits.length = 0;
    expect((await runSql(QUICK_SQL, { count: 5, activities, runKey: 'run-2' }).result).finished).toHaveLength(5);
    expect(commits).toEqual([keys]);
  });

  it("SQL whose output has a column named like backfill's own (__x) fails as InvalidOutput, not retried, as rows with one do, from the worker's thread too, and writes nothing", async () => {
    const { failure, details } = await failureOf(runSql('SELECT :partition AS day, 1 AS __x', { count: 2 }).result);
    expect([failure.type, failure.nonRetryable, details.failedIndex]).toEqual(['InvalidOutput', true, 0]);
    expect(failure.message).toMatch(/the output has a column '__x': names starting with __ are reserved for backfill's own columns \(__partition, __version\): rename it in the transform's output \(in SQL, AS another name\)/);
    expect(failure.message).not.toMatch(/SELECT/);
    expect(await threaded.ledger({ node: 'daily' })).toEqual([]);
  });

  it("SQL that outlasts the node's timeout fails the attempt as a timeout (retried), and none of it is committed", async () => {
    const began = Date.now();
    const { result } = runSql(SLOW_SQL, { count: 3, timeout: '200ms' });
    const { failure, details } = await failureOf(result);
    expect(Date.now() - began).toBeLessThan(700);
    expect([failure.type, failure.nonRetryable, details.failedIndex]).toEqual(['PartitionTimeout', false, 0]);
    expect(await publishedSql()).toEqual([]);
  }, 30_000);

  it('SQL still running when the run window stops is left uncommitted, and its partitions are deferred to the next window', async () => {
    const now = Date.now();
    const stopBy = now + 300;
    const { result } = runSql(SLOW_SQL, { count: 3, window: { notAfter: now + 100, stopBy } });
    const outcome = await result;
    expect(Date.now()).toBeLessThan(stopBy + 200);
    expect(outcome.finished).toEqual([]);
    expect(outcome.deferred).toBe(3);
    expect(await publishedSql()).toEqual([]);
    expect(commits).toEqual([[]]);
  }, 30_000);
});

describe("a partition's SQL has until its partition's time is up", () => {
  /** A SQLite warehouse that records the deadline of each query() and the commitBy of each write. */
  class DeadlineWarehouse extends SqliteWarehouse {
    readonly deadlines: Array<number | undefined> = [];
    readonly commitBys: Array<number | undefined> = [];
    override query(...[sql, bindings, scope, options]: Parameters<SqliteWarehouse['query']>): ReturnType<SqliteWarehouse['query']> {
      this.deadlines.push(options?.deadline);
      return super.query(sql, bindings, scope, options);
    }
    override publishMany(writes: readonly PartitionWrite[]): Promise<PublishedBatch> {
      this.commitBys.push(...writes.map((w) => w.commitBy));
      return super.publishMany(writes);
    }
  }
  const TIMEOUT_MS = 600_000;
  /** Reads the warehouse, then queues SQL for the rows. */
  const reads: Transform = async (ctx) => {
    await ctx.warehouse.query('SELECT 1 AS n');
    ctx.warehouse.insertFrom('SELECT :partition AS day, 1 AS n', ctx.bindings);
    return [];
  };

  async function runWith(count: number): Promise<{ recorded: DeadlineWarehouse; began: number }> {
    const recorded = new DeadlineWarehouse(join(dir, `deadlines-${count}.db`));
    const timedNode: PartitionNode = { id: 'timed', transform: 'reads', params: {}, checks: [], heartbeatTimeout: '30s', timeout: '10m' };
    const input: RunPartitionsInput = {
      backfillId: 'bf-1',
      runKey: 'run-1',
      workflowId: 'backfill/bf-1/timed',
      node: timedNode,
      partitions: keys.slice(0, count).map((key, index) => ({ index, key, window: { start: `${key}T00:00:00Z`, end: `${key}T23:59:59Z` }, inputs: [], throttled: 0 })),
      maxAttempts: 3,
    };
    const activities = createActivities({ warehouse: recorded, transforms: new Map([['reads', reads]]), codeVersion: 'test' });
    const began = Date.now();
    try {
      await new MockActivityEnvironment({ attempt: 1 }).run(activities.runPartitions, input);
    } finally {
      await recorded.close();
    }
    return { recorded, began };
  }

  it("alone, by the activity's timeout (the node's): its query() and its queued SQL stop then", async () => {
    const { recorded, began } = await runWith(1);
    for (const deadline of [...recorded.deadlines, ...recorded.commitBys]) {
      expect(deadline).toBeGreaterThanOrEqual(began + TIMEOUT_MS);
      expect(deadline).toBeLessThanOrEqual(Date.now() + TIMEOUT_MS);
    }
    expect([recorded.deadlines.length, recorded.commitBys.length]).toEqual([1, 1]);
  });

  it("in a batch, each query() by its partition's own timeout from its start", async () => {
    const { recorded, began } = await runWith(3);
    expect(recorded.deadlines).toHaveLength(3);
    for (const deadline of recorded.deadlines) {
      expect(deadline).toBeGreaterThanOrEqual(began + TIMEOUT_MS);
      expect(deadline).toBeLessThanOrEqual(Date.now() + TIMEOUT_MS);
    }
  });
});

describe('a batch that is not this worker\'s to run gives its partitions back (deferred), running nothing', () => {
  it("on a worker of another warehouse than the backfill's: a worker of the right one takes them (one misconfigured worker failed them)", async () => {
    const { result } = run(days(), { warehouseId: 'the-one-it-started-on' });
    expect(await result).toEqual({ finished: [], attempt: 1, deferred: keys.length });
    expect(await published()).toEqual([]);
    // The right warehouse runs them.
    expect((await run(days(), { warehouseId: await warehouse.identity() }).result).finished).toHaveLength(keys.length);
  });

  it("once the backfill's retry budget is spent: what an earlier attempt committed stays done, the failed attempts are counted (its attempt)", async () => {
    const asked: Array<[string, string, number]> = [];
    const retryBudget = { holds: async (backfillId: string, batch: string, attempt: number) => (asked.push([backfillId, batch, attempt]), attempt >= 3) };
    const done: PartitionResult = { index: 0, key: keys[0]!, version: 1, rowCount: 1, checksum: 'c', startedAt: 1, finishedAt: 2 };
    const held = await run(days(), { attempt: 3, finished: [done], retryBudget }).result;
    expect(held).toEqual({ finished: [done], attempt: 3, deferred: keys.length });
    expect(await published()).toEqual([]);
    expect(asked).toEqual([['bf-1', expect.stringMatching(/\/.+/), 3]]);
    // Not spent: it runs.
    expect((await run(days(), { attempt: 2, retryBudget }).result).finished).toHaveLength(keys.length);
  });
});

describe('PublishBuffer', () => {
  const pending = (workMs: number, rows = 1) => ({
    task: { index: 0, key: 'k', window: null, inputs: [], throttled: 0 },
    write: { data: { rows: Array.from({ length: rows }, () => ({})), selects: [] } } as unknown as PartitionWrite,
    startedAt: 1000,
    computedAt: 1000 + workMs,
  });

  it('holds quick partitions until their work reaches the bound, then gives them all and starts again', () => {
    const buffer = new PublishBuffer();
    expect(buffer.full()).toBe(false);
    buffer.add(pending(COMMIT_AFTER_MS / 2 - 1));
    buffer.add(pending(COMMIT_AFTER_MS / 2 - 1));
    expect(buffer.full()).toBe(false);
    buffer.add(pending(2));
    expect(buffer.full()).toBe(true);
    expect(buffer.take()).toHaveLength(3);
    expect(buffer.size).toBe(0);
    expect(buffer.full()).toBe(false);
  });

  it("counts a partition's queued SQL as its work: as measured, or until measured as a long partition's", () => {
    const sql = (transformMs: number) => ({ ...pending(transformMs, 0), write: { data: { rows: [], selects: [{ sql: 'SELECT 1', bindings: {} }] } } as unknown as PartitionWrite });
    const unmeasured = new PublishBuffer();
    unmeasured.add(sql(0));
    expect(unmeasured.full()).toBe(true);
    const quick = new PublishBuffer();
    quick.add(sql(1), 5);
    quick.add(sql(1), 5);
    expect(quick.full()).toBe(false);
    const slow = new PublishBuffer();
    slow.add(sql(1), COMMIT_AFTER_MS);
    expect(slow.full()).toBe(true);
  });

  it('is full with one long partition, with many rows, or with many partitions', () => {
    const long = new PublishBuffer();
    long.add(pending(COMMIT_AFTER_MS));
    expect(long.full()).toBe(true);
    const big = new PublishBuffer();
    big.add(pending(0, 20_000));
    expect(big.full()).toBe(true);
    const many = new PublishBuffer();
    for (let i = 0; i < 99; i++) many.add(pending(0));
    expect(many.full()).toBe(false);
    many.add(pending(0));
    expect(many.full()).toBe(true);
  });
});
