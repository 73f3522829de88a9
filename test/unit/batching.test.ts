/** `batchSize: auto`: how many partitions an activity runs, from the partitions' measured durations. */
import { describe, expect, it } from 'vitest';
import { AUTO_BATCH_MAX, AutoBatcher, autoBatchSize } from '../../core/batching.ts';
import type { PartitionResult } from '../../core/protocol.ts';

const size = (msPerPartition: number | null, over: { targetMs?: number; queued?: number; parallel?: number } = {}) =>
  autoBatchSize({ msPerPartition, targetMs: 2000, queued: 100_000, parallel: 4, ...over });

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

  it('takes no more than an even share of the waiting partitions among the activities that can run at once', () => {
    // 40 waiting on 4 slots: 10 each rather than one batch of 40 and three idle slots.
    expect(size(1, { queued: 40 })).toBe(10);
    expect(size(1, { queued: 3 })).toBe(1);
    expect(size(1, { queued: 0 })).toBe(1);
    expect(size(1, { queued: 41, parallel: 4 })).toBe(11);
    expect(size(1, { queued: 41, parallel: 2.5 })).toBe(17);
  });
});

const result = (index: number, startedAt: number, ms: number): PartitionResult => ({ index, key: `k${index}`, version: 1, rowCount: 0, checksum: '', startedAt, finishedAt: startedAt + ms });

describe('AutoBatcher', () => {
  it('measures the mean time per partition: the first batch\'s, then 30 % of the way towards each new one\'s', () => {
    const batcher = new AutoBatcher(2000);
    expect(batcher.measuredMs).toBeNull();
    expect(batcher.size(1000, 4)).toBe(1);
    batcher.finished(0, [result(0, 0, 100), result(1, 100, 200), result(2, 300, 300)]);
    expect(batcher.measuredMs).toBe(200);
    batcher.finished(0, [result(3, 0, 1200)]);
    expect(batcher.measuredMs).toBeCloseTo(500);
    // A batch that finished nothing changes nothing; a negative duration (a clock step) counts as 0.
    batcher.finished(0, []);
    expect(batcher.measuredMs).toBeCloseTo(500);
    const stepped = new AutoBatcher(2000);
    stepped.finished(0, [result(0, 10, -5), result(1, 10, 5)]);
    expect(stepped.measuredMs).toBe(2.5);
  });

  it('waits for its first partition for a quarter of the target, once', () => {
    const batcher = new AutoBatcher(2000);
    expect(batcher.probeDeadline(0, 0)).toBeNull();
    batcher.started(1000);
    expect(batcher.probeDeadline(1000, 1)).toBe(1500);
    expect(batcher.probeDeadline(1499, 1)).toBe(1500);
    expect(batcher.probeDeadline(1500, 1)).toBeNull();
    // Nothing in flight (the first one failed): nothing to wait for.
    expect(batcher.probeDeadline(1200, 0)).toBeNull();
    batcher.started(3000);
    expect(batcher.probeDeadline(1200, 1)).toBe(1500);
    batcher.finished(1000, [result(0, 1010, 50)]);
    expect(batcher.probeDeadline(1200, 1)).toBeNull();
  });

  it('spreads over the concurrency while batches start at once, over fewer when they wait in the task queue for a worker', () => {
    const batcher = new AutoBatcher(2000);
    // 10 ms partitions, batches of 10 that start 10 ms after the workflow starts them (dispatch).
    batcher.finished(0, Array.from({ length: 10 }, (_, i) => result(i, 10 + i * 10, 10)));
    expect(batcher.parallel(50)).toBeCloseTo(50 * (100 / 110));
    // Batches that wait 900 ms for a slot and run 100 ms: a tenth of 50 runs at once.
    const waiting = new AutoBatcher(2000, { msPerPartition: 10, probeStartedAt: 0, runMs: 100, waitMs: 900 });
    expect(waiting.parallel(50)).toBe(5);
    expect(waiting.size(100, 50)).toBe(20);
    expect(new AutoBatcher(2000, { msPerPartition: 10, probeStartedAt: 0, runMs: 100, waitMs: 0 }).size(100, 50)).toBe(2);
  });

  it('carries everything through JSON', () => {
    const batcher = new AutoBatcher(2000);
    batcher.started(5);
    batcher.finished(5, [result(0, 20, 30)]);
    const copy = new AutoBatcher(2000, JSON.parse(JSON.stringify(batcher.toJSON())));
    expect(copy.toJSON()).toEqual({ msPerPartition: 30, probeStartedAt: 5, runMs: 30, waitMs: 15 });
  });
});
