/** Adding up a staged backfill's diff (core/diff.ts). */
import { describe, expect, it } from 'vitest';
import { thrownBackfillError } from './backfill-error.ts';
import { diffKeys } from '../../core/diff-keys.ts';
import { addDiffs, columnDelta, emptyDiff, formatPercent, rowChangePercent, withCopies, type PartitionDiff } from '../../core/diff.ts';

const part = (node: string, partition: string, extra: Partial<PartitionDiff> = {}): PartitionDiff => ({
  node,
  partition,
  stagedVersion: 2,
  publishedVersion: 1,
  rowsBefore: 10,
  rowsAfter: 11,
  added: 1,
  removed: 0,
  changed: 2,
  key: ['id'],
  columns: [],
  ...extra,
});

describe('addDiffs', () => {
  it('sums counts per node and in all, nodes in the order they first come', () => {
    const summary = addDiffs(emptyDiff(), [part('b', 'k1'), part('a', 'k1', { added: 0, removed: 3, changed: 0, rowsAfter: 7 }), part('b', 'k2')]);
    expect(summary).toMatchObject({ partitions: 3, rowsBefore: 30, rowsAfter: 29, added: 2, removed: 3, changed: 4 });
    expect(summary.nodes.map((n) => [n.node, n.partitions, n.added, n.removed, n.changed, n.rowsAfter])).toEqual([
      ['b', 2, 2, 0, 4, 22],
      ['a', 1, 0, 3, 0, 7],
    ]);
  });

  it('merges column statistics: sums add up, the least minimum and the greatest maximum; a side with none takes the other', () => {
    const summary = addDiffs(emptyDiff(), [
      part('a', 'k1', { columns: [{ column: 'x', before: { sum: 5, min: 1, max: 4 }, after: { sum: 6, min: 2, max: 4 } }] }),
      part('a', 'k2', {
        columns: [
          { column: 'x', before: null, after: { sum: 10, min: -1, max: 9 } },
          { column: 'w', before: { sum: 1, min: 1, max: 1 }, after: null },
        ],
      }),
    ]);
    expect(summary.nodes[0]!.columns).toEqual([
      { column: 'w', before: { sum: 1, min: 1, max: 1 }, after: null },
      { column: 'x', before: { sum: 5, min: 1, max: 4 }, after: { sum: 16, min: -1, max: 9 } },
    ]);
  });

  it('adding nothing changes nothing', () => {
    expect(addDiffs(emptyDiff(), [])).toEqual(emptyDiff());
  });
});

describe('withCopies', () => {
  it('counts the copies the row counts show and distinct counts miss, as added or removed', () => {
    // Every row twice: EXCEPT sees nothing new.
    expect(withCopies({ rowsBefore: 3, rowsAfter: 6, added: 0, removed: 0 })).toEqual({ rowsBefore: 3, rowsAfter: 6, added: 3, removed: 0 });
    expect(withCopies({ rowsBefore: 6, rowsAfter: 3, added: 0, removed: 0 })).toEqual({ rowsBefore: 6, rowsAfter: 3, added: 0, removed: 3 });
    // One row new and one copy more.
    expect(withCopies({ rowsBefore: 3, rowsAfter: 5, added: 1, removed: 0 })).toMatchObject({ added: 2, removed: 0 });
    // Distinct rows that explain the counts are left as they are (other fields kept).
    const plain = { rowsBefore: 3, rowsAfter: 3, added: 1, removed: 1, changed: 2 };
    expect(withCopies(plain)).toBe(plain);
  });
});

describe('rowChangePercent', () => {
  it('is rows added, removed and changed over the rows before', () => {
    expect(rowChangePercent({ partitions: 1, rowsBefore: 200, rowsAfter: 205, added: 5, removed: 2, changed: 3 })).toBe(5);
  });
  it('is 0 without changes, also from nothing, and infinite for anything new from nothing', () => {
    expect(rowChangePercent({ partitions: 1, rowsBefore: 0, rowsAfter: 0, added: 0, removed: 0, changed: 0 })).toBe(0);
    expect(rowChangePercent({ partitions: 1, rowsBefore: 0, rowsAfter: 3, added: 3, removed: 0, changed: 0 })).toBe(Infinity);
  });
});

describe('columnDelta', () => {
  it('is after minus before, per statistic', () => {
    expect(columnDelta({ column: 'x', before: { sum: 10, min: 1, max: 5 }, after: { sum: 12.5, min: 0, max: 7 } })).toEqual({ sum: 2.5, min: -1, max: 2 });
  });
  it('a column new in the staged version changes its sum by all of it; min and max have nothing to compare', () => {
    expect(columnDelta({ column: 'x', before: null, after: { sum: 4, min: 1, max: 3 } })).toEqual({ sum: 4, min: null, max: null });
    expect(columnDelta({ column: 'x', before: { sum: 4, min: 1, max: 3 }, after: null })).toEqual({ sum: null, min: null, max: null });
  });
});

describe('formatPercent', () => {
  it('rounds to two decimals and names a change from nothing', () => {
    expect(formatPercent(4.2)).toBe('4.2%');
    expect(formatPercent(1 / 3)).toBe('0.33%');
    expect(formatPercent(Infinity)).toBe('all new');
  });
});

describe('diffKeys', () => {
  it('gives each keyed node its columns and leaves nodes without a key out (compared by whole rows)', () => {
    expect(diffKeys([{ id: 'orders', key: ['order_id', 'line'] }, { id: 'daily' }])).toEqual({ orders: ['order_id', 'line'] });
    expect(diffKeys([])).toEqual({});
  });

  it('refuses a key a workflow input brought that is not a list of distinct column names', () => {
    for (const [key, message] of [
      ['order_id', /node orders's key in the backfill's input must be a list of column names/],
      [['id', 'id'], /node orders's key\[1\] in the backfill's input 'id' is listed twice/],
      [[], /needs at least one column/],
      [[{ drop: 'table' }], /key\[0\] in the backfill's input must be a column name/],
    ] as const) {
      const error = thrownBackfillError(() => diffKeys([{ id: 'orders', key }]));
      expect(error.code).toBe('invalid_spec');
      expect(error.message).toMatch(message);
    }
  });
});
