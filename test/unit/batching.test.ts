/** `batchSize: auto`: how many partitions an activity runs, from the partitions' measured durations. */
import { describe, expect, it } from 'vitest';
import { AUTO_BATCH_MAX, autoBatchSize, measurePartitions } from '../../core/batching.ts';

const size = (msPerPartition: number | null, over: { targetMs?: number; queued?: number; concurrency?: number } = {}) =>
  autoBatchSize({ msPerPartition, targetMs: 2000, queued: 100_000, concurrency: 4, ...over });

describe('autoBatchSize', () => {
  it('runs one partition while nothing is measured: the first ones measure the node', () => {
    expect(size(null)).toBe(1);
  });

  it('fits as many partitions as the target holds', () => {
    expect(size(250)).toBe(8);
    expect(size(100)).toBe(20);
    expect(size(100, { targetMs: 500 })).toBe(5);
    expect(size(499)).toBe(4);
  });

  it('slow partitions, a quarter of the target or more, run one per activity', () => {
    expect(size(500)).toBe(1);
    expect(size(1000)).toBe(1);
    expect(size(60_000)).toBe(1);
    expect(size(124, { targetMs: 500 })).toBe(4);
    expect(size(125, { targetMs: 500 })).toBe(1);
  });

  it('holds at most AUTO_BATCH_MAX, however short the partitions (a no-op takes 0 ms)', () => {
    expect(size(0)).toBe(AUTO_BATCH_MAX);
    expect(size(0.01)).toBe(AUTO_BATCH_MAX);
    expect(size(19)).toBe(AUTO_BATCH_MAX);
  });

  it('takes no more than an even share of the waiting partitions among the slots', () => {
    // 40 waiting on 4 slots: 10 each rather than one batch of 40 and three idle slots.
    expect(size(1, { queued: 40 })).toBe(10);
    expect(size(1, { queued: 3 })).toBe(1);
    expect(size(1, { queued: 0 })).toBe(1);
    expect(size(1, { queued: 41, concurrency: 4 })).toBe(11);
  });
});

describe('measurePartitions', () => {
  it('starts at the first batch\'s mean, then moves 30 % of the way towards each new batch\'s', () => {
    const first = measurePartitions(null, [100, 200, 300]);
    expect(first).toBe(200);
    expect(measurePartitions(first, [1200])).toBeCloseTo(500);
  });

  it('a batch that finished nothing changes nothing; a negative duration (clock step) counts as 0', () => {
    expect(measurePartitions(null, [])).toBeNull();
    expect(measurePartitions(42, [])).toBe(42);
    expect(measurePartitions(null, [-5, 5])).toBe(2.5);
  });
});
