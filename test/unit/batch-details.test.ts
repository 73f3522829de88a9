/**
 * What a batch says it did (a completed `runPartitions`'s result, or what a failed, cancelled or
 * timed-out one says it finished) comes from whatever worker ran it: the node workflow counts
 * only results of the batch's own partitions, once each, and ignores the rest, whatever its shape.
 */
import { describe, expect, it } from 'vitest';
import { batchDetails, unaccountedFor } from '../../core/batch-details.ts';
import { noSpending, parseSpending, spend } from '../../core/budget.ts';
import type { NodeSettings, PartitionResult } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { NodeScheduler } from '../../core/scheduler.ts';

const batch = [
  { index: 4, key: '2024-01-05' },
  { index: 5, key: '2024-01-06' },
  { index: 6, key: '2024-01-07' },
];
const result = (index: number, key: string, more: Partial<PartitionResult> = {}): PartitionResult => ({ index, key, version: 1, rowCount: 10, checksum: 'abc', startedAt: 1000, finishedAt: 2000, ...more });

describe('batchDetails: a failed batch', () => {
  it("keeps what the activity writes: its partitions' results, the failed one and its attempt", () => {
    const details = { finished: [result(4, '2024-01-05', { cost: 2, latencyMs: 30 }), result(5, '2024-01-06')], failedIndex: 6, attempt: 2 };
    expect(batchDetails(details, batch, 3)).toEqual(details);
    // A timeout's last heartbeat: the checkpoint, with a transform's own details beside it.
    expect(batchDetails({ finished: [result(4, '2024-01-05')], attempt: 1, user: { rows: 'many' } }, batch, 3)).toEqual({ finished: [result(4, '2024-01-05')], failedIndex: null, attempt: 1 });
  });

  it('counts no partition outside the batch, a result whose key is not its partition, or a partition twice', () => {
    const details = {
      finished: [result(5, '2024-01-06'), result(0, '2024-01-01'), result(6, '2024-01-01'), result(5, '2024-01-06', { rowCount: 99 }), result(4, '2024-01-05')],
      failedIndex: 6,
    };
    expect(batchDetails(details, batch, 3).finished).toEqual([result(5, '2024-01-06'), result(4, '2024-01-05')]);
  });

  it('ignores a malformed result and keeps the well-formed ones beside it', () => {
    const junk = [
      'x',
      42,
      null,
      [],
      { index: '5', key: '2024-01-06' },
      { ...result(6, '2024-01-07'), startedAt: 'noon' },
      { ...result(6, '2024-01-07'), version: Number.NaN },
      { ...result(6, '2024-01-07'), index: 6.5 },
      { ...result(6, '2024-01-07'), cost: -1 },
    ];
    const parsed = batchDetails({ finished: [...junk, result(4, '2024-01-05')], failedIndex: 5 }, batch, 3);
    expect(parsed.finished).toEqual([result(4, '2024-01-05')]);
    expect(parsed.failedIndex).toBe(5);
    // Unknown fields of a result are not carried on to the parent.
    expect(batchDetails({ finished: [{ ...result(4, '2024-01-05'), extra: 'x' }] }, batch, 3).finished).toEqual([result(4, '2024-01-05')]);
  });

  it('reads details of the wrong shape as saying nothing', () => {
    for (const value of [undefined, null, 'finished', 7, [result(4, '2024-01-05')], { finished: 'all' }, { finished: { 0: result(4, '2024-01-05') } }]) {
      expect(batchDetails(value, batch, 3)).toEqual({ finished: [], failedIndex: null });
    }
  });

  it('takes a failed index only of a partition of the batch that it did not finish, and an attempt only of the activity', () => {
    const failed = (failedIndex: unknown) => batchDetails({ finished: [result(4, '2024-01-05')], failedIndex }, batch, 3).failedIndex;
    expect([failed(5), failed(6), failed(4), failed(0), failed('5'), failed(null), failed(undefined)]).toEqual([5, 6, null, null, null, null, null]);
    const attempt = (value: unknown) => batchDetails({ finished: [], attempt: value }, batch, 3).attempt;
    expect([attempt(1), attempt(3), attempt(0), attempt(4), attempt(1e9), attempt(2.5), attempt('2')]).toEqual([1, 3, undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('batchDetails: a completed batch', () => {
  it("keeps what the activity returns: its partitions' results, the throttled one and its attempt", () => {
    const value = { finished: [result(4, '2024-01-05', { cost: 1 })], throttled: { index: 5, message: 'HTTP 429' }, attempt: 2, deferred: 0 };
    expect(batchDetails(value, batch, 3)).toEqual({ finished: [result(4, '2024-01-05', { cost: 1 })], failedIndex: null, throttled: { index: 5, message: 'HTTP 429' }, attempt: 2 });
    const all = { finished: batch.map((t) => result(t.index, t.key)) };
    expect(batchDetails(all, batch, 3)).toEqual({ ...all, failedIndex: null });
  });

  it('counts no partition outside the batch, of another key, twice or malformed; a forged attempt is none', () => {
    const value = {
      finished: [result(0, '2024-01-01'), result(1, '2024-01-02'), result(0, '2024-01-01'), result(5, 'not-its-key'), null, 'x', { index: 6 }, result(4, '2024-01-05'), result(4, '2024-01-05', { rowCount: 0 })],
      attempt: 1e9,
    };
    expect(batchDetails(value, batch, 3)).toEqual({ finished: [result(4, '2024-01-05')], failedIndex: null });
  });

  it('takes a throttled partition only of the batch, not one it finished, and with a message', () => {
    const throttled = (value: unknown) => batchDetails({ finished: [result(4, '2024-01-05')], throttled: value }, batch, 3).throttled;
    expect(throttled({ index: 6, message: 'slow down', extra: 1 })).toEqual({ index: 6, message: 'slow down' });
    for (const value of [{ index: 4, message: 'x' }, { index: 0, message: 'x' }, { index: '6', message: 'x' }, { index: 6 }, { index: 6, message: 42 }, 6, 'slow down', null]) {
      expect(throttled(value)).toBeUndefined();
    }
  });

  it('reads a result of the wrong shape as finishing nothing', () => {
    for (const value of [undefined, null, 'done', 0, [result(4, '2024-01-05')], { finished: 'all' }, { finished: null }]) {
      expect(batchDetails(value, batch, 3)).toEqual({ finished: [], failedIndex: null });
    }
  });

  it('loses no partition: those the result does not account for run again, the claimed ones of other batches are not done', () => {
    const settings: NodeSettings = { seq: 1, rate: null, burst: 1, concurrency: 2, paused: false };
    const keys = ['2024-01-01', '2024-01-02', '2024-01-03', '2024-01-04', '2024-01-05', '2024-01-06', '2024-01-07'];
    const s = new NodeScheduler({ batchSize: 3, maxThrottles: 3 }, settings, RangeSet.of([4, 7]));
    const [started] = s.startable();
    expect(started!.indices).toEqual([4, 5, 6]);
    const tasks = started!.indices.map((index) => ({ index, key: keys[index]! }));
    // A forged result: the batch's 4, then partitions of no batch (0, 1) and 6 twice under another key.
    const forged = { finished: [result(4, keys[4]!), result(0, keys[0]!), result(1, keys[1]!), result(6, 'x'), result(6, 'y')] };
    const checked = batchDetails(forged, tasks, 3);
    s.settle(started!.id, { kind: 'completed', finished: checked.finished });
    expect(RangeSet.fromJSON(s.takeReport().done).toJSON()).toBe(RangeSet.of([4, 5]).toJSON());
    expect(s.startable().map((b) => b.indices)).toEqual([[5, 6]]);
  });
});

describe('unaccountedFor: what a completed batch says nothing of', () => {
  const indices = batch.map((t) => t.index);
  const unaccounted = (value: unknown) => unaccountedFor(indices, batchDetails(value, batch, 3));

  it('is nothing of what the activity returns: partitions finished, throttled or after it, deferred at the end', () => {
    expect(unaccounted({ finished: batch.map((t) => result(t.index, t.key)) })).toEqual([]);
    expect(unaccounted({ finished: [result(4, '2024-01-05')], throttled: { index: 5, message: 'HTTP 429' } })).toEqual([]);
    expect(unaccounted({ finished: [], throttled: { index: 4, message: 'HTTP 429' } })).toEqual([]);
    expect(unaccounted({ finished: [result(4, '2024-01-05')], deferred: 2 })).toEqual([]);
    expect(unaccounted({ finished: [], deferred: 3 })).toEqual([]);
  });

  it('is every partition the result does not say it finished, throttled or deferred', () => {
    expect(unaccounted({ finished: [] })).toEqual([4, 5, 6]);
    expect(unaccounted(undefined)).toEqual([4, 5, 6]);
    expect(unaccounted({ finished: [result(5, '2024-01-06'), result(0, '2024-01-01')] })).toEqual([4, 6]);
    // Throttled on its last partition: the two before it it says nothing of.
    expect(unaccounted({ finished: [], throttled: { index: 6, message: 'HTTP 429' } })).toEqual([4, 5]);
    expect(unaccounted({ finished: [], deferred: 1 })).toEqual([4, 5]);
  });

  it("takes deferred only as a whole number from 1 to the batch's size", () => {
    const deferred = (value: unknown) => batchDetails({ finished: [], deferred: value }, batch, 3).deferred;
    expect([deferred(1), deferred(3), deferred(0), deferred(4), deferred(-1), deferred(1.5), deferred('2'), deferred(Infinity)]).toEqual([1, 3, undefined, undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('batchDetails: the amounts of a result', () => {
  // The node adds them up into the spending and running total of its reports, which the parent refuses unless each is a finite count of 0 or more.
  it("takes no result whose amounts would make the node's reports ones its parent refuses, with the partitions they say are done", () => {
    const forged: Partial<PartitionResult>[] = [
      { rowCount: -1e9 },
      { rowCount: 1e308 },
      { version: -1 },
      { startedAt: -1e308 },
      { finishedAt: 1e308 },
      { cost: 1e308 },
      { latencyMs: 1e308 },
    ];
    for (const more of forged) {
      const parsed = batchDetails({ finished: [result(4, '2024-01-05', more), result(4, '2024-01-05', more), result(5, '2024-01-06')] }, batch, 3);
      expect(parsed.finished).toEqual([result(5, '2024-01-06')]);
      const total = spend(spend(noSpending(), parsed.finished), parsed.finished);
      expect(() => parseSpending(total)).not.toThrow();
    }
    // As the activity writes them: a dry run's version 0 and no rows; a cost that is not whole.
    const dryRun = result(4, '2024-01-05', { version: 0, rowCount: 0, cost: 0.25 });
    expect(batchDetails({ finished: [dryRun] }, batch, 3).finished).toEqual([dryRun]);
  });

  it('reads them as before in a history from before the patch batch-amounts-checked', () => {
    const negative = result(4, '2024-01-05', { rowCount: -5 });
    expect(batchDetails({ finished: [negative] }, batch, 3, false).finished).toEqual([negative]);
  });
});
