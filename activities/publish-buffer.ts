/**
 * The partitions a batch activity has computed and not yet committed, and when to commit
 * them. A batch commits its partitions together (`Warehouse.publishMany`: one transaction,
 * one commit, each partition atomic in it), but never holds more than a bounded amount of
 * work uncommitted: a crash loses at most the work since the last commit, which is one
 * partition's when a partition takes `COMMIT_AFTER_MS` or more, and under that much time
 * otherwise. A partition's work counts the SQL it queued (`insertFrom`), which runs in the
 * commit: as measured by earlier commits, and until then as `COMMIT_AFTER_MS` (it commits alone).
 */
import type { PartitionTask } from '../core/protocol.ts';
import type { PartitionWrite } from './warehouse/types.ts';

/** Computed work held uncommitted, at most: a partition that takes this long commits alone. */
export const COMMIT_AFTER_MS = 500;
/** Rows held in memory for a commit, at most (a partition with more commits alone). */
export const COMMIT_AFTER_ROWS = 20_000;
/** Partitions in one commit, at most. */
export const COMMIT_AFTER_PARTITIONS = 100;

/** A partition whose transform finished, waiting for its commit. */
export type PendingPartition = {
  task: PartitionTask;
  write: PartitionWrite;
  startedAt: number;
  /** When its transform returned. */
  computedAt: number;
  cost?: number;
  latencyMs?: number;
};

export class PublishBuffer {
  private readonly held: PendingPartition[] = [];
  private workMs = 0;
  private rows = 0;

  get size(): number {
    return this.held.length;
  }

  /** `queuedMs`: how long the SQL it queued takes in the commit, as measured; unknown, the most a commit may hold. */
  add(pending: PendingPartition, queuedMs?: number): void {
    this.held.push(pending);
    const queued = pending.write.data.selects.length === 0 ? 0 : (queuedMs ?? COMMIT_AFTER_MS);
    this.workMs += Math.max(0, pending.computedAt - pending.startedAt) + queued;
    this.rows += pending.write.data.rows.length;
  }

  /** Whether what it holds should be committed now rather than after the next partition. */
  full(): boolean {
    return this.held.length > 0 && (this.workMs >= COMMIT_AFTER_MS || this.rows >= COMMIT_AFTER_ROWS || this.held.length >= COMMIT_AFTER_PARTITIONS);
  }

  /** Everything it holds, in order; it is empty afterwards. */
  take(): PendingPartition[] {
    this.workMs = 0;
    this.rows = 0;
    return this.held.splice(0);
  }
}
