import { describe, it, expect } from 'vitest';
import { addFailure, addFailures, MAX_FAILURE_GROUPS, mergeFailures, withoutPartitions } from '../../core/failures.ts';
import { RangeSet } from '../../core/ranges.ts';

describe('failure groups', () => {
  it('groups partitions by message and type', () => {
    let groups = addFailure([], 'boom', 'Error', 3);
    groups = addFailure(groups, 'boom', 'Error', 4);
    groups = addFailure(groups, 'boom', 'CheckFailed', 9);
    groups = addFailure(groups, 'other', 'Error', 1);
    expect(groups).toEqual([
      { message: 'boom', type: 'Error', ranges: RangeSet.of([3, 5]).toJSON() },
      { message: 'boom', type: 'CheckFailed', ranges: RangeSet.of([9, 10]).toJSON() },
      { message: 'other', type: 'Error', ranges: RangeSet.of([1, 2]).toJSON() },
    ]);
  });

  it('does not change the groups it is given', () => {
    const groups = addFailure([], 'boom', 'Error', 3);
    const copy = JSON.parse(JSON.stringify(groups));
    addFailure(groups, 'boom', 'Error', 4);
    addFailure(groups, 'new', 'Error', 4);
    expect(groups).toEqual(copy);
  });

  it('ignores an empty set of partitions', () => {
    expect(addFailures([], 'boom', 'Error', new RangeSet())).toEqual([]);
  });

  it('cuts long messages', () => {
    const [group] = addFailure([], 'x'.repeat(2000), 'Error', 0);
    expect(group!.message.length).toBeLessThanOrEqual(501);
    expect(group!.message.endsWith('…')).toBe(true);
    // The same long message lands in the same group.
    expect(addFailure([group!], 'x'.repeat(2000), 'Error', 1)).toEqual([{ ...group!, ranges: RangeSet.of([0, 2]).toJSON() }]);
  });

  it('keeps at most MAX_FAILURE_GROUPS distinct messages, plus one group for the rest', () => {
    let groups = addFailure([], 'm0', 'Error', 0);
    for (let i = 1; i < MAX_FAILURE_GROUPS + 10; i++) groups = addFailure(groups, `m${i}`, 'Error', i);
    expect(groups.length).toBe(MAX_FAILURE_GROUPS + 1);
    const other = groups[groups.length - 1]!;
    expect(other.type).toBe('Mixed');
    expect(RangeSet.fromJSON(other.ranges).size).toBe(10);
    // A known message still goes to its own group.
    groups = addFailure(groups, 'm0', 'Error', 100);
    expect(RangeSet.fromJSON(groups[0]!.ranges).has(100)).toBe(true);
    expect(groups.length).toBe(MAX_FAILURE_GROUPS + 1);
  });

  it('mergeFailures merges groups of the same message', () => {
    const a = addFailure(addFailure([], 'boom', 'Error', 1), 'late', 'Timeout', 5);
    const b = addFailure(addFailure([], 'boom', 'Error', 2), 'new', 'Error', 7);
    expect(mergeFailures(a, b)).toEqual([
      { message: 'boom', type: 'Error', ranges: RangeSet.of([1, 3]).toJSON() },
      { message: 'late', type: 'Timeout', ranges: RangeSet.of([5, 6]).toJSON() },
      { message: 'new', type: 'Error', ranges: RangeSet.of([7, 8]).toJSON() },
    ]);
    expect(mergeFailures([], [])).toEqual([]);
  });

  it('withoutPartitions removes partitions and drops emptied groups', () => {
    const groups = addFailures(addFailure([], 'boom', 'Error', 1), 'bad', 'Error', RangeSet.of([4, 8]));
    expect(withoutPartitions(groups, RangeSet.of([1, 2], [5, 6]))).toEqual([{ message: 'bad', type: 'Error', ranges: RangeSet.of([4, 5], [6, 8]).toJSON() }]);
    expect(withoutPartitions(groups, RangeSet.of([0, 100]))).toEqual([]);
    expect(withoutPartitions(groups, new RangeSet())).toEqual(groups);
  });
});
