/**
 * `batchSize: auto`: how many partitions one activity runs, from how long the node's
 * partitions take. Small partitions are grouped so that an activity runs for about the
 * node's `batchTarget`, which spreads the cost of an activity (its dispatch, its events, the
 * workflow task that sees it end) over many partitions; a partition that takes a good part of
 * the target on its own gains little from company and runs alone, so that a crash or a
 * cancellation costs no more than it. Every partition is still published and checkpointed on
 * its own (the activity heartbeats each one it finished), so a batch changes what a retry
 * redoes by at most one partition.
 */

/** The most partitions an automatic batch holds: its input and result stay small in the history. */
export const AUTO_BATCH_MAX = 100;
/** Partitions that take at least this share of the target run one per activity. */
export const AUTO_BATCH_SLOW_SHARE = 0.25;
export const DEFAULT_BATCH_TARGET = '2s';
/** How much of the running mean each batch's measurement moves. */
const MEASUREMENT_WEIGHT = 0.3;

export type BatchSizing = {
  /** The node's mean time per partition so far (null: nothing measured yet). */
  msPerPartition: number | null;
  targetMs: number;
  /** Partitions waiting to start, and the node's concurrency: a batch takes no more than its share of them. */
  queued: number;
  concurrency: number;
};

/**
 * The size of the next automatic batch: one while nothing is measured (the first partitions
 * measure the node) or when partitions are slow, else as many as fit in the target, at most
 * AUTO_BATCH_MAX, and no more than an even share of the waiting partitions among the node's
 * slots (a short queue is spread over the slots rather than run in one activity).
 */
export function autoBatchSize({ msPerPartition, targetMs, queued, concurrency }: BatchSizing): number {
  if (msPerPartition === null || msPerPartition >= targetMs * AUTO_BATCH_SLOW_SHARE) return 1;
  const fits = Math.floor(targetMs / Math.max(1, msPerPartition));
  const share = Math.ceil(queued / Math.max(1, concurrency));
  return Math.max(1, Math.min(fits, AUTO_BATCH_MAX, share));
}

/** The running mean of a node's time per partition after a batch whose partitions took `durations` ms. */
export function measurePartitions(previous: number | null, durations: readonly number[]): number | null {
  if (durations.length === 0) return previous;
  const mean = durations.reduce((a, b) => a + Math.max(0, b), 0) / durations.length;
  return previous === null ? mean : previous + MEASUREMENT_WEIGHT * (mean - previous);
}
