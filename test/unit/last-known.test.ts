import { describe, expect, it } from 'vitest';
import { recordedCounts, renderLastKnown, type LastKnown } from '../../client/last-known.ts';
import { RangeSet } from '../../core/ranges.ts';

const ranges = (...r: Array<[number, number]>) => RangeSet.of(...r).toJSON();

describe('recordedCounts: what a parent run records of its nodes', () => {
  it('adds the reports it received to the readiness its carry started from', () => {
    const carry = { readiness: { a: { done: ranges([0, 10]), failed: ranges([10, 12]) }, b: { done: ranges([0, 3]) } } };
    const counts = recordedCounts(
      carry,
      [
        { atMs: 1, node: 'a', done: ranges([12, 20]), failures: [] },
        { atMs: 2, node: 'b', done: ranges([3, 5]), failures: [{ message: 'boom', type: 'Error', ranges: ranges([5, 6]) }] },
        // A node the plan does not have, and a repeated report, count nothing more.
        { atMs: 3, node: 'ghost', done: ranges([0, 100]), failures: [] },
        { atMs: 4, node: 'a', done: ranges([12, 20]), failures: [] },
      ],
      ['a', 'b', 'c'],
    );
    expect(counts).toEqual({ a: { done: 18, failed: 2 }, b: { done: 5, failed: 1 }, c: { done: 0, failed: 0 } });
  });

  it('a failed partition that a later report says done is no longer failed (retry-failed of a node)', () => {
    const counts = recordedCounts(
      { readiness: { a: { done: '', failed: ranges([0, 4]) } } },
      [
        { atMs: 1, node: 'a', done: ranges([0, 2]), failures: [] },
        { atMs: 2, node: 'a', done: '', failures: [{ message: 'again', type: 'Error', ranges: ranges([3, 5]) }] },
      ],
      ['a'],
    );
    expect(counts).toEqual({ a: { done: 2, failed: 3 } });
  });

  it('a first run has no carry: only its reports count', () => {
    expect(recordedCounts(undefined, [{ atMs: 1, node: 'a', done: ranges([0, 7]), failures: [] }], ['a'])).toEqual({ a: { done: 7, failed: 0 } });
  });
});

describe('renderLastKnown', () => {
  const known = (done: number | null, failed: number | null): LastKnown => ({
    backfillId: 'bf',
    state: 'running',
    startedAt: '2026-12-07T10:00:00.000Z',
    asOf: '2026-12-07T10:05:00.000Z',
    workflowTaskQueue: 'q',
    nodes: [{ id: 'daily', taskQueue: 'q', partitions: 1500, workflow: 'running', batchesInFlight: 2, done, failed }],
    lastAction: null,
  });
  const now = Date.parse('2026-12-07T10:06:00.000Z');

  it('says each node\'s done and failed partitions as its workflow heard them', () => {
    const text = renderLastKnown(known(1200, 3), now);
    expect(text).toContain('  daily: 1,200 of 1,500 partitions done, 3 failed, on task queue q; its workflow running, 2 batches in flight');
    expect(text).toContain("partitions done are those its nodes had reported to it, a node's latest ones may not be among them");
  });

  it('without counts (its history unreadable), says they cannot be read', () => {
    const text = renderLastKnown(known(null, null), now);
    expect(text).toContain('  daily: 1,500 partitions on task queue q; its workflow running, 2 batches in flight');
    expect(text).toContain('nor counts of done partitions');
  });
});
