/**
 * What a batch activity (`runPartitions`) says it did: its result when it completed, or the
 * details of its failure or cancellation, or the last checkpoint it heartbeated before it timed
 * out. Whatever worker ran it wrote them (a buggy one, a foreign one polling the task queue), so
 * the node workflow reads them against the batch: only a result of one of the batch's partitions
 * (its index and key), once, counts as finished; a failed or throttled index outside the batch,
 * or one it says it finished, is none; an attempt is one of the activity's. The rest is ignored:
 * the batch's other partitions run again (a partition a worker did publish is found in the
 * ledger then).
 *
 * Checked by hand, not with zod: this runs for every partition of every batch, and a zod parse
 * of each result took 2 to 3 s for a million results in batches of 100 (plain Node, shared
 * machine), against 0.1 to 0.3 s by hand. The checks are those of the zod schema it replaced
 * (a safe integer index of at least 0, finite numbers, optional cost and latency of at least 0).
 */
import type { PartitionFailureDetails, PartitionResult, PartitionTask, RunPartitionsResult } from './protocol.ts';
import { shellWord } from './shell-word.ts';

// Read once: in the workflow sandbox every read of a global goes through the vm context.
const { isFinite: finite, isInteger: integer, isSafeInteger: safeInteger } = Number;
const { isArray } = Array;

/** What the workflow reads of a batch's result or failure details, checked against the batch. */
export type BatchDetails = PartitionFailureDetails & Pick<RunPartitionsResult, 'throttled' | 'deferred'>;

type BatchTask = Pick<PartitionTask, 'index' | 'key'>;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !isArray(value);
const isFinite = (value: unknown): value is number => typeof value === 'number' && finite(value);
const isOptionalAmount = (value: unknown): value is number | undefined => value === undefined || (isFinite(value) && value >= 0);
/** The largest amount a result may say: sums of a node's results stay finite. */
const MAX_AMOUNT = Number.MAX_SAFE_INTEGER;
const isBounded = (value: unknown) => value === undefined || (typeof value === 'number' && value >= 0 && value <= MAX_AMOUNT);

/**
 * Whether a result's amounts are such as the activity writes: a version, row count and times
 * of 0 or more, and no amount beyond `MAX_AMOUNT`. The node adds them up (its spending, in
 * each report, and its running total): a negative row count, or two of 1e308 (Infinity), made
 * every later report of the node one its parent refuses (`parseSpending`), with the partitions
 * it says are done, so that the backfill never finished.
 */
function plausible({ version, rowCount, startedAt, finishedAt, cost, latencyMs }: Omit<PartitionResult, 'index' | 'key' | 'checksum'>): boolean {
  return isBounded(version) && isBounded(rowCount) && isBounded(startedAt) && isBounded(finishedAt) && isBounded(cost) && isBounded(latencyMs);
}

/**
 * `value` as a result of one of the batch's partitions (its index and key), with only the fields
 * of a result; else null. One whose amounts are not `plausible` is null too, `amountsChecked`
 * (the patch batch-amounts-checked).
 */
function resultOf(value: unknown, keys: ReadonlyMap<number, string>, amountsChecked: boolean): PartitionResult | null {
  if (!isRecord(value)) return null;
  const { index, key, version, rowCount, checksum, startedAt, finishedAt, cost, latencyMs } = value;
  if (typeof index !== 'number' || !safeInteger(index) || index < 0 || typeof key !== 'string' || keys.get(index) !== key) return null;
  if (!isFinite(version) || !isFinite(rowCount) || typeof checksum !== 'string' || !isFinite(startedAt) || !isFinite(finishedAt)) return null;
  if (!isOptionalAmount(cost) || !isOptionalAmount(latencyMs)) return null;
  if (amountsChecked && !plausible({ version, rowCount, startedAt, finishedAt, cost, latencyMs })) return null;
  // Optional fields absent, not undefined, as the activity writes them.
  const result: PartitionResult = { index, key, version, rowCount, checksum, startedAt, finishedAt };
  if (cost !== undefined) result.cost = cost;
  if (latencyMs !== undefined) result.latencyMs = latencyMs;
  return result;
}

/**
 * A batch's result or failure details (`value`: `runPartitions`'s result, a failure's or
 * cancellation's first detail, or a timeout's last heartbeat details), read against the batch:
 * the finished results of the batch's own partitions, in their order, each once; the failed
 * index, and the throttled partition (with its message), when it is one of the batch's it did
 * not finish; the attempt when it is a whole number from 1 to `maxAttempts`. Details that are
 * not an object, or whose `finished` is there but not a list, say nothing. `deferred` counts
 * when it is a whole number from 1 to the batch's size. A result whose amounts the activity
 * never writes counts only without `amountsChecked` (a history from before the patch
 * batch-amounts-checked).
 */
export function batchDetails(value: unknown, batch: readonly BatchTask[], maxAttempts: number, amountsChecked = true): BatchDetails {
  if (!isRecord(value)) return { finished: [], failedIndex: null };
  const { finished: entries, failedIndex, attempt, throttled, deferred } = value;
  if (entries !== undefined && !isArray(entries)) return { finished: [], failedIndex: null };
  const keys = new Map<number, string>();
  for (const task of batch) keys.set(task.index, task.key);
  const finished: PartitionResult[] = [];
  const seen = new Set<number>();
  for (const entry of (entries as unknown[] | undefined) ?? []) {
    const result = resultOf(entry, keys, amountsChecked);
    if (result === null || seen.has(result.index)) continue;
    seen.add(result.index);
    finished.push(result);
  }
  const unfinished = (index: unknown): index is number => typeof index === 'number' && keys.has(index) && !seen.has(index);
  const details: BatchDetails = { finished, failedIndex: unfinished(failedIndex) ? failedIndex : null };
  if (typeof attempt === 'number' && integer(attempt) && attempt >= 1 && attempt <= maxAttempts) details.attempt = attempt;
  if (isRecord(throttled) && unfinished(throttled.index) && typeof throttled.message === 'string') details.throttled = { index: throttled.index, message: throttled.message };
  if (typeof deferred === 'number' && integer(deferred) && deferred >= 1 && deferred <= batch.length) details.deferred = deferred;
  return details;
}

/**
 * The partitions of a batch (`indices`, in the batch's order) that its completed result does not
 * account for: not finished, not the throttled one or one after it (a throttle ends the batch),
 * not one of the last `deferred` (not started: the run window closed, or the worker stopped).
 * The activity accounts for every partition so; one it does not was run by a worker that says
 * nothing of it (a bug, another build), and running it again as it came would loop for ever.
 */
export function unaccountedFor(indices: readonly number[], result: Pick<BatchDetails, 'finished' | 'throttled' | 'deferred'>): number[] {
  const finished = new Set(result.finished.map((r) => r.index));
  const throttledAt = result.throttled ? indices.indexOf(result.throttled.index) : -1;
  const end = Math.min(indices.length - (result.deferred ?? 0), throttledAt >= 0 ? throttledAt : indices.length);
  return indices.slice(0, Math.max(0, end)).filter((i) => !finished.has(i));
}

/**
 * The partitions of a batch (`indices`, in the batch's order) that its completed result says it
 * deferred: its last `deferred`, but for any it finished or was throttled on.
 */
export function deferredOf(indices: readonly number[], result: Pick<BatchDetails, 'finished' | 'throttled' | 'deferred'>): number[] {
  if (!result.deferred) return [];
  const finished = new Set(result.finished.map((r) => r.index));
  return indices.slice(Math.max(0, indices.length - result.deferred)).filter((i) => !finished.has(i) && i !== result.throttled?.index);
}

/**
 * The failure of a partition that completed batches deferred `times` times with no run window
 * closing (`SchedulerOptions.deferrals`).
 */
export function deferredMessage(times: number, taskQueue: string): string {
  return (
    `the batch completed ${times} times saying it deferred this partition (did not start it) while no run window closed: ` +
    `does a worker of another build, or one that is misconfigured or always stopping, poll task queue '${taskQueue}'? ` +
    `See who polls it (temporal task-queue describe --task-queue ${shellWord(taskQueue)}), stop that worker, then retry-failed`
  );
}

/** The failure of a partition that `times` completed batches did not account for (`unaccountedFor`). */
export function noResultMessage(times: number, taskQueue: string): string {
  return `the batch completed ${times} ${times === 1 ? 'time' : 'times'} without a result for this partition: does a worker of another build poll task queue '${taskQueue}'? Stop it, then retry-failed`;
}
