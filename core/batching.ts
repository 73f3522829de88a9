/**
 * `batchSize: auto`: how many partitions one activity runs, from how long the node's
 * partitions take. Small partitions are grouped so that an activity runs for about the
 * node's `batchTarget`, which spreads the cost of an activity (its dispatch, its events, the
 * workflow task that sees it end) over many partitions; a partition that takes a good part of
 * the target on its own gains little from company and runs alone, so that a crash or a
 * cancellation costs no more than it. A node with nothing measured runs one partition first
 * and waits a moment for it (`probeWindowMs`): filling every slot with single partitions before
 * knowing how long one takes would leave a short backfill unbatched. Every partition is still
 * published and checkpointed on its own (the activity heartbeats each one it finished), so a
 * batch changes what a retry redoes by at most one partition.
 *
 * A batch takes no more than an even share of the waiting partitions among the activities that
 * can run at once, so that a short queue is spread over them rather than run in one activity;
 * the batches a node starts together take the same share, of the queue as it was before the first.
 * How many can run at once is the node's concurrency, unless its activities wait in the task
 * queue for a worker: then the workers, not the concurrency, bound it, and by Little's law they
 * run about concurrency × run time / (wait + run time) of them.
 */
import type { PartitionResult } from './protocol.ts';

/** The most partitions an automatic batch holds: its input and result stay small in the history. */
export const AUTO_BATCH_MAX = 100;
/** Partitions that take at least this share of the target run one per activity. */
export const AUTO_BATCH_SLOW_SHARE = 0.25;
export const DEFAULT_BATCH_TARGET = '2s';
/** How much of the running means each batch's measurement moves. */
const MEASUREMENT_WEIGHT = 0.3;

export type BatchSizing = {
  /** The node's mean time per partition so far (null: nothing measured yet). */
  msPerPartition: number | null;
  targetMs: number;
  /** Partitions waiting to start, and how many activities can run at once: a batch takes no more than its share of them. */
  queued: number;
  parallel: number;
};

/**
 * The size of an automatic batch: one while nothing is measured or when partitions are slow,
 * else as many as fit in the target, at most AUTO_BATCH_MAX, and no more than an even share of
 * the waiting partitions among the activities that can run at once.
 */
export function autoBatchSize({ msPerPartition, targetMs, queued, parallel }: BatchSizing): number {
  if (msPerPartition === null || msPerPartition >= targetMs * AUTO_BATCH_SLOW_SHARE) return 1;
  const fits = Math.floor(targetMs / Math.max(1, msPerPartition));
  const share = Math.ceil(queued / Math.max(1, parallel));
  return Math.max(1, Math.min(fits, AUTO_BATCH_MAX, share));
}

/**
 * How long a node with nothing measured waits for its first partition (the probe) before it
 * starts others: one that finished by then sizes the batches; one still running is slow, and
 * the others start one per activity without waiting longer.
 */
export function probeWindowMs(targetMs: number): number {
  return targetMs * AUTO_BATCH_SLOW_SHARE;
}

/** A running mean moved towards `sample`; the first sample is the mean. */
function moved(mean: number | null, sample: number): number {
  return mean === null ? sample : mean + MEASUREMENT_WEIGHT * (sample - mean);
}

export type AutoBatchJSON = {
  /** Mean time per partition. */
  msPerPartition: number | null;
  /** When the first partition (the probe) started, in workflow time. */
  probeStartedAt: number | null;
  /** Mean time a batch ran (its first partition's start to its last one's end), and waited before that. */
  runMs: number | null;
  waitMs: number | null;
};

/** What a node with `batchSize: auto` measured, and the batch sizes that follow from it. */
export class AutoBatcher {
  private msPerPartition: number | null;
  private probeStartedAt: number | null;
  private runMs: number | null;
  private waitMs: number | null;

  constructor(
    private readonly targetMs: number,
    state?: Partial<AutoBatchJSON>,
  ) {
    this.msPerPartition = state?.msPerPartition ?? null;
    this.probeStartedAt = state?.probeStartedAt ?? null;
    this.runMs = state?.runMs ?? null;
    this.waitMs = state?.waitMs ?? null;
  }

  get measuredMs(): number | null {
    return this.msPerPartition;
  }

  /** How many activities can run at once, of the node's `concurrency` (see the module comment). */
  parallel(concurrency: number): number {
    if (this.runMs === null || this.waitMs === null || this.runMs + this.waitMs <= 0) return concurrency;
    return Math.max(1, (concurrency * this.runMs) / (this.runMs + this.waitMs));
  }

  /** The size of the next batch, with `queued` partitions waiting. */
  size(queued: number, concurrency: number): number {
    return autoBatchSize({ msPerPartition: this.msPerPartition, targetMs: this.targetMs, queued, parallel: this.parallel(concurrency) });
  }

  /** While the first partition runs (and nothing is measured), when the node stops waiting for it; else null. */
  probeDeadline(now: number, inFlight: number): number | null {
    if (this.msPerPartition !== null || this.probeStartedAt === null || inFlight === 0) return null;
    const deadline = this.probeStartedAt + probeWindowMs(this.targetMs);
    return now < deadline ? deadline : null;
  }

  /** A batch started at `now` (workflow time). */
  started(now: number): void {
    this.probeStartedAt ??= now;
  }

  /** A batch started at `startedAt` (workflow time) finished these partitions. */
  finished(startedAt: number, results: readonly PartitionResult[]): void {
    if (results.length === 0) return;
    let first = Infinity;
    let last = -Infinity;
    let sum = 0;
    for (const r of results) {
      first = Math.min(first, r.startedAt);
      last = Math.max(last, r.finishedAt);
      sum += Math.max(0, r.finishedAt - r.startedAt);
    }
    this.msPerPartition = moved(this.msPerPartition, sum / results.length);
    this.runMs = moved(this.runMs, Math.max(0, last - first));
    // The activity's clock against the workflow's: on one host the same, across hosts close.
    this.waitMs = moved(this.waitMs, Math.max(0, first - startedAt));
  }

  toJSON(): AutoBatchJSON {
    return { msPerPartition: this.msPerPartition, probeStartedAt: this.probeStartedAt, runMs: this.runMs, waitMs: this.waitMs };
  }
}
