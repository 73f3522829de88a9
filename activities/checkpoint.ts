/**
 * The checkpoint a batch activity heartbeats: the results of the partitions it committed (a
 * retry skips them) and its attempt. The activity owns the heartbeat's details; a transform's
 * own details (`ctx.heartbeat(details)`) travel under `user`, which nothing reads back.
 */
import type { PartitionResult, PartitionTask } from '../core/protocol.ts';

export type Checkpoint = { finished: PartitionResult[]; attempt: number; user?: unknown };

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** The result's own fields, or null when it is not a partition result. */
function resultOf(value: unknown): PartitionResult | null {
  if (typeof value !== 'object' || value === null) return null;
  const r = value as Record<string, unknown>;
  const { index, key, version, rowCount, checksum, startedAt, finishedAt, cost, latencyMs } = r;
  if (!Number.isSafeInteger(index) || typeof key !== 'string' || !isCount(version) || !isCount(rowCount) || typeof checksum !== 'string' || !isCount(startedAt) || !isCount(finishedAt)) return null;
  if ((cost !== undefined && !isCount(cost)) || (latencyMs !== undefined && !isCount(latencyMs))) return null;
  return {
    index: index as number,
    key,
    version,
    rowCount,
    checksum,
    startedAt,
    finishedAt,
    ...(cost !== undefined ? { cost } : {}),
    ...(latencyMs !== undefined ? { latencyMs } : {}),
  };
}

/**
 * What an earlier attempt of this batch checkpointed as finished: its results when every one
 * is a result of a partition of this batch (index and key), once; nothing otherwise. Ignoring
 * a checkpoint costs little, as a retry finds a published partition in the ledger.
 */
export function priorFinished(details: unknown, partitions: readonly PartitionTask[]): PartitionResult[] {
  if (typeof details !== 'object' || details === null) return [];
  const finished = (details as { finished?: unknown }).finished;
  if (!Array.isArray(finished)) return [];
  const keys = new Map(partitions.map((t) => [t.index, t.key]));
  const results: PartitionResult[] = [];
  const seen = new Set<number>();
  for (const value of finished) {
    const result = resultOf(value);
    if (!result || keys.get(result.index) !== result.key || seen.has(result.index)) return [];
    seen.add(result.index);
    results.push(result);
  }
  return results;
}
