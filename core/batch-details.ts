/**
 * What a failed, timed-out or cancelled batch activity (`runPartitions`) says it did: the details
 * of its failure or cancellation, or the last checkpoint it heartbeated before it timed out.
 * Whatever worker ran it wrote them (a buggy one, a foreign one polling the task queue), so the
 * node workflow parses them against the batch: only a result of one of the batch's partitions
 * (its index and key), once, counts as finished; a failed index outside the batch is none; an
 * attempt is one of the activity's. The rest is ignored: the batch's other partitions run again
 * (a partition a worker did publish is found in the ledger then).
 */
import { z } from 'zod';
import type { PartitionFailureDetails, PartitionResult, PartitionTask } from './protocol.ts';

const finite = z.number().finite();

const PartitionResultSchema = z.object({
  index: z.number().int().min(0),
  key: z.string(),
  version: finite,
  rowCount: finite,
  checksum: z.string(),
  startedAt: finite,
  finishedAt: finite,
  cost: finite.min(0).optional(),
  latencyMs: finite.min(0).optional(),
});

/** The fields of the details the workflow reads; each is checked on its own, so one bad field does not cost the others. */
const DetailsSchema = z.object({ finished: z.array(z.unknown()).optional(), failedIndex: z.unknown().optional(), attempt: z.unknown().optional() });

/**
 * The batch's failure details, parsed (`value`: the failure's or cancellation's first detail,
 * or a timeout's last heartbeat details): the finished results of the batch's own partitions,
 * in their order, each once; the failed index when it is one of the batch's; the attempt when
 * it is a whole number from 1 to `maxAttempts`.
 */
export function batchFailureDetails(value: unknown, batch: ReadonlyArray<Pick<PartitionTask, 'index' | 'key'>>, maxAttempts: number): PartitionFailureDetails {
  const details = DetailsSchema.safeParse(value);
  if (!details.success) return { finished: [], failedIndex: null };
  const keys = new Map(batch.map((t) => [t.index, t.key]));
  const finished: PartitionResult[] = [];
  const seen = new Set<number>();
  for (const entry of details.data.finished ?? []) {
    const result = PartitionResultSchema.safeParse(entry);
    if (!result.success || keys.get(result.data.index) !== result.data.key || seen.has(result.data.index)) continue;
    seen.add(result.data.index);
    finished.push(withoutUndefined(result.data));
  }
  const { failedIndex, attempt } = details.data;
  const inBatch = typeof failedIndex === 'number' && keys.has(failedIndex) && !seen.has(failedIndex);
  const isAttempt = typeof attempt === 'number' && Number.isInteger(attempt) && attempt >= 1 && attempt <= maxAttempts;
  return { finished, failedIndex: inBatch ? failedIndex : null, ...(isAttempt ? { attempt } : {}) };
}

/** A result as the activity writes it: optional fields absent, not undefined (they travel to the parent as JSON either way). */
function withoutUndefined(result: z.infer<typeof PartitionResultSchema>): PartitionResult {
  const { cost, latencyMs, ...rest } = result;
  return { ...rest, ...(cost !== undefined ? { cost } : {}), ...(latencyMs !== undefined ? { latencyMs } : {}) };
}
