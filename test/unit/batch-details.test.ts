/**
 * A batch's failure details (what a failed, cancelled or timed-out `runPartitions` says it
 * finished) come from whatever worker ran it: the node workflow counts only results of the
 * batch's own partitions, once each, and ignores the rest, whatever its shape.
 */
import { describe, expect, it } from 'vitest';
import { batchDetails } from '../../core/batch-details.ts';
import type { PartitionResult } from '../../core/protocol.ts';

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
