/**
 * `runPartitions`: the activity that produces partitions. For each partition of its batch
 * (one, unless the node sets batchSize) it runs the transform, then publishes the result
 * as a new version with its checks and ledger row in one transaction. It heartbeats the
 * partitions it finished, so that a retry after a crash skips them.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import {
  NON_RETRYABLE_TYPES,
  PARTITION_FAILURES,
  type PartitionFailureDetails,
  type PartitionResult,
  type PartitionTask,
  type RunPartitionsInput,
  type RunPartitionsResult,
} from '../core/protocol.ts';
import { parseDuration } from '../core/duration.ts';
import { heartbeatEveryMs } from '../core/heartbeat.ts';
import { priorFinished, type Checkpoint } from './checkpoint.ts';
import { isApplicationFailure, isNonRetryable, isThrottled } from './errors.ts';
import { paramsWriteFailure, readOnlyParams } from './params.ts';
import { specHash } from './spec-hash.ts';
import { PartitionTelemetry } from './telemetry.ts';
import { appendRows, collectData, partitionBindings, type PartitionSession, type Transform, type TransformRegistry } from './transforms.ts';
import { CheckFailedError, CommitDeadlineError, InvalidDatasetError, InvalidOutputError, SqlError, StaleRunError, type PartitionWrite, type PinnedInput, type Published, type Warehouse } from './warehouse/types.ts';
import { missingRelationHint } from './missing-relation.ts';
import { PublishBuffer, type PendingPartition } from './publish-buffer.ts';
import { assertRows } from './rows.ts';
import { createWarehouseActivities } from './warehouse-activities.ts';

export type ActivityDeps = {
  warehouse: Warehouse;
  transforms: TransformRegistry;
  /** Recorded in the ledger: which code produced a partition. */
  codeVersion: string;
  /** Aborted when the worker starts shutting down: a batch then starts no new partition. */
  stopping?: AbortSignal;
  /** Whether a batch's attempt runs nothing, its backfill's retry budget spent (workers/retry-budget.ts). */
  retryBudget?: { holds(backfillId: string, batch: string, attempt: number): Promise<boolean> };
};

/** The failure types the retry policy never retries: only the project's own errors, and an ApplicationFailure thrown on purpose, carry them. */
const RESERVED_TYPES: ReadonlySet<string> = new Set(NON_RETRYABLE_TYPES);

/** How a partition's error fails its activity: the failure's type, whether a retry may heal it, and its message. */
function classify(error: unknown): { type: string; nonRetryable: boolean; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof CheckFailedError) return { type: PARTITION_FAILURES.checkFailed, nonRetryable: true, message };
  if (error instanceof SqlError) return { type: PARTITION_FAILURES.sqlError, nonRetryable: true, message };
  if (error instanceof InvalidDatasetError) return { type: PARTITION_FAILURES.invalidSpec, nonRetryable: true, message };
  if (error instanceof InvalidOutputError) return { type: PARTITION_FAILURES.invalidOutput, nonRetryable: true, message };
  if (error instanceof StaleRunError) return { type: PARTITION_FAILURES.staleRun, nonRetryable: true, message };
  // Its queued SQL outlasted the partition's timeout: retried, as a timeout is.
  if (error instanceof CommitDeadlineError) return { type: new PartitionTimeoutError().name, nonRetryable: false, message };
  if (isNonRetryable(error)) return { type: PARTITION_FAILURES.nonRetryable, nonRetryable: true, message };
  // A deliberate ApplicationFailure, of any copy of the SDK, keeps its type, a reserved one too.
  if (error instanceof ApplicationFailure || isApplicationFailure(error)) return { type: error.type ?? 'Error', nonRetryable: error.nonRetryable ?? false, message };
  const name = error instanceof Error ? error.name : 'Error';
  // Another library's error named like a reserved type (the mariadb connector names all its
  // errors SqlError, a lost connection too) would never be retried: it gets a neutral type,
  // and its name goes in the message.
  if (RESERVED_TYPES.has(name)) return { type: 'Error', nonRetryable: false, message: `${name}: ${message}` };
  return { type: name, nonRetryable: false, message };
}

function resultOf(task: PartitionTask, published: Published, startedAt: number, finishedAt: number, cost?: number, latencyMs?: number): PartitionResult {
  return {
    index: task.index,
    key: task.key,
    version: published.version,
    rowCount: published.rowCount,
    checksum: published.checksum,
    startedAt,
    finishedAt,
    ...(cost !== undefined ? { cost } : {}),
    ...(latencyMs !== undefined ? { latencyMs } : {}),
  };
}

/** Whether heartbeat details convert to JSON, as the SDK's payload converter needs. */
function serializable(details: unknown): boolean {
  try {
    JSON.stringify(details);
    return true;
  } catch {
    return false;
  }
}

/** A partition of a batch ran longer than its node's timeout: retried, as an activity that timed out would be. */
export class PartitionTimeoutError extends Error {
  override name = 'PartitionTimeout';
}

/**
 * Runs one partition of a batch within the node's per-partition timeout. The activity's own
 * timeout covers the whole batch (the timeout times its partitions), so without this a partition
 * that hangs would hold the batch for as long. The transform's signal aborts at the deadline, and
 * a transform that ignores it is left behind: its attempt fails and the retry runs the partition
 * again (the abandoned one's rows, should it ever return them, are never committed: nothing holds them for a commit).
 */
export async function withinTimeout<T>(timeoutMs: number | null, signal: AbortSignal | null, run: (signal: AbortSignal | null) => Promise<T>): Promise<T> {
  if (timeoutMs === null) return run(signal);
  const deadline = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new PartitionTimeoutError(`the partition ran longer than its timeout of ${timeoutMs} ms (the node's timeout): it is retried`);
      deadline.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([run(signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for a commit that runs queued SQL (its partitions' work) until their time is up
 * (`timeoutMs`) or the run window stops (`stopped`), then throws why. The warehouse may still be
 * running it, but commits nothing of it after that moment (`PartitionWrite.commitBy`).
 */
async function commitWithin<T>(work: Promise<T>, timeoutMs: number | null, stopped: AbortSignal | null): Promise<T> {
  // Left behind, its end is no one's to hear.
  work.catch(() => undefined);
  const done = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const bounds: Array<Promise<never>> = [];
  if (timeoutMs !== null) {
    bounds.push(
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new PartitionTimeoutError(`the partitions' SQL ran longer than their timeout (${timeoutMs} ms in all, the node's timeout each): they are retried`)), timeoutMs);
      }),
    );
  }
  if (stopped) {
    bounds.push(
      new Promise<never>((_, reject) => {
        if (stopped.aborted) return reject(stopped.reason as Error);
        stopped.addEventListener('abort', () => reject(stopped.reason as Error), { once: true, signal: done.signal });
      }),
    );
  }
  try {
    return await Promise.race([work, ...bounds]);
  } finally {
    clearTimeout(timer);
    done.abort();
  }
}

/** The earliest of the bounds that are set (epoch ms); undefined when none is. */
function earliest(...bounds: Array<number | null | undefined>): number | undefined {
  const set = bounds.filter((b): b is number => b !== null && b !== undefined);
  return set.length > 0 ? Math.min(...set) : undefined;
}

/** The run window closed: the partition was not started, or was stopped at the end of the grace period (it runs again later). */
class WindowClosed extends Error {}

/**
 * The run window of a batch: `closed` once no partition may start (its close), `stopped`
 * (an AbortSignal) once running ones must stop (close + grace).
 */
function windowOf(window: RunPartitionsInput['window']): { closed(): boolean; stopped: AbortSignal | null; dispose(): void } {
  if (!window) return { closed: () => false, stopped: null, dispose: () => undefined };
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new WindowClosed('the run window closed and its grace period is over')), Math.max(0, window.stopBy - Date.now()));
  return { closed: () => Date.now() >= window.notAfter, stopped: stop.signal, dispose: () => clearTimeout(timer) };
}

/** A node's spec hash, computed once per spec (every activity of a node brings the same spec). */
const specHashes = new Map<string, string>();
function specHashOf(node: RunPartitionsInput['node']): string {
  const key = JSON.stringify([node.transform, node.sql, node.params, node.checks]);
  let hash = specHashes.get(key);
  if (hash === undefined) {
    hash = specHash(node);
    if (specHashes.size >= 1000) specHashes.clear();
    specHashes.set(key, hash);
  }
  return hash;
}

/**
 * How long a partition's queued SQL takes in its commit, per node definition, as last measured
 * on this worker: the publish buffer counts it as the partition's work.
 */
class QueuedSqlTimes {
  private readonly measured = new Map<string, number>();

  private static key(write: PartitionWrite): string {
    return `${write.node}/${write.specHash ?? ''}`;
  }

  get(write: PartitionWrite): number | undefined {
    return this.measured.get(QueuedSqlTimes.key(write));
  }

  /** A commit of these writes took `msEach` per partition. */
  record(writes: readonly PartitionWrite[], msEach: number): void {
    const queued = writes.find((w) => w.data.selects.length > 0);
    if (!queued) return;
    if (this.measured.size >= 1000) this.measured.clear();
    this.measured.set(QueuedSqlTimes.key(queued), msEach);
  }
}

export function createActivities(deps: ActivityDeps) {
  const queuedSql = new QueuedSqlTimes();
  /** Runs one partition's transform: its result when there is nothing to publish, else its write, to commit with the batch's next ones. */
  const runOne = async (
    input: RunPartitionsInput,
    task: PartitionTask,
    ctx: Context,
    definitionHash: string,
    telemetry: PartitionTelemetry,
    stopped: AbortSignal | null,
    deadline: number | undefined,
    heartbeat: (details?: unknown) => void,
  ): Promise<{ done: PartitionResult } | { pending: PendingPartition }> => {
    const { node } = input;
    const startedAt = Date.now();
    const signal = stopped ? AbortSignal.any([ctx.cancellationSignal, stopped]) : ctx.cancellationSignal;
    let cost: number | undefined;
    const transform = deps.transforms.get(node.transform);
    if (!transform) {
      const known = [...deps.transforms.keys()].sort().join(', ');
      throw ApplicationFailure.nonRetryable(
        `transform '${node.transform}' is not registered on this worker (it has: ${known}): start the worker with --transforms <module> that defines it`,
        PARTITION_FAILURES.unknownTransform,
      );
    }
    // Orchestration only: nothing is written, versioned or recorded (load tests, dry runs).
    if (transform.dryRun) return { done: { index: task.index, key: task.key, version: 0, rowCount: 0, checksum: '', startedAt, finishedAt: Date.now() } };
    // A retry after a crash that followed the commit, or a partition an earlier workflow run
    // may have finished (`recheck`), finds the partition published: nothing to redo.
    if (ctx.info.attempt > 1 || task.recheck) {
      const done = await deps.warehouse.publishedBy(node.id, task.key, input.runKey);
      if (done) {
        // Whoever made it never delivered its result (a crash after the commit, or a node workflow
        // that continued as new while it ran): this result is the only one the budgets see, so it
        // says what making the partition took and cost, not this look-up's few milliseconds.
        const finishedAt = Date.now();
        const result = resultOf(task, done, done.durationMs !== undefined ? finishedAt - done.durationMs : startedAt, finishedAt, done.cost);
        telemetry.foundPublished(result);
        return { done: result };
      }
    }
    const { data, session } = collectData();
    // The latency the transform reports for the system it calls: the highest of the partition's.
    let latencyMs: number | undefined;
    const reportLatency = (ms: number) => {
      if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) latencyMs = Math.max(latencyMs ?? 0, Math.round(ms));
    };
    const bindings = partitionBindings(task.key, task.window, node.params);
    // The first read pins the upstream versions it sees; later reads and the ledger use the same ones.
    let pinned: PinnedInput[] | undefined;
    const query: PartitionSession['query'] = async (sql, b) => {
      // A staged backfill reads the versions it staged upstream (else the published ones).
      pinned ??= await deps.warehouse.pin(task.inputs, input.stage ? { runKey: input.runKey } : {});
      // Its SQL ends with the partition's time, as the transform does: the warehouse stops it then.
      return deps.warehouse.query(sql, b, pinned, deadline === undefined ? {} : { deadline });
    };
    const params = readOnlyParams(node.params);
    let returned: Awaited<ReturnType<Transform>>;
    try {
      returned = await transform({
        node: node.id,
        partition: task.key,
        window: task.window,
        params,
        sql: node.sql,
        inputs: task.inputs,
        bindings,
        warehouse: { ...session, query },
        signal,
        attempt: ctx.info.attempt,
        throttled: task.throttled,
        heartbeat,
        reportCost: (amount) => {
          if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
            throw ApplicationFailure.nonRetryable(`transform '${node.transform}' reported a cost of ${String(amount)}: report a number of 0 or more`, PARTITION_FAILURES.invalidOutput);
          }
          cost = (cost ?? 0) + amount;
        },
        reportLatency,
      });
    } catch (error) {
      // Writing to the frozen params fails the same way on every retry.
      throw paramsWriteFailure(error, params, { transform: node.transform, node: node.id }) ?? error;
    }
    if (returned !== undefined) {
      if (!Array.isArray(returned)) {
        throw ApplicationFailure.nonRetryable(`transform '${node.transform}' returned ${typeof returned}: return an array of rows or nothing`, PARTITION_FAILURES.invalidOutput);
      }
      appendRows(data.rows, returned);
    }
    assertRows(data.rows, node.transform);
    // Cancelled (or its window's grace ran out) while the transform ran: publish nothing.
    if (ctx.cancellationSignal.aborted) throw new CancelledFailure('cancelled before publishing');
    if (stopped?.aborted) throw new WindowClosed('stopped at the end of the run window');
    const write: PartitionWrite = {
      node: node.id,
      partition: task.key,
      backfillId: input.backfillId,
      runKey: input.runKey,
      workflowId: input.workflowId,
      data,
      checks: node.checks,
      transform: node.transform,
      params: node.params,
      codeVersion: deps.codeVersion,
      inputs: task.inputs,
      ...(pinned ? { pinned } : {}),
      attempt: ctx.info.attempt,
      startedAt,
      specHash: definitionHash,
      ...(node.adopt ? { adopt: true } : {}),
      ...(cost !== undefined ? { cost } : {}),
      ...(input.stage ? { stage: true } : {}),
    };
    return { pending: { task, write, startedAt, computedAt: Date.now(), ...(cost !== undefined ? { cost } : {}), ...(latencyMs !== undefined ? { latencyMs } : {}) } };
  };

  /**
   * Commits the partitions a batch computed, in one transaction: each is atomic in it, and the
   * first that fails fails alone. Those after it are committed too (one more transaction),
   * unless another fails: that one and the rest are not finished and run again. Returns the
   * results, and the first failure with its partition.
   */
  const commit = async (
    ctx: Context,
    telemetry: PartitionTelemetry,
    batch: readonly PendingPartition[],
    commitBy: number | undefined,
  ): Promise<{ results: PartitionResult[]; failed?: { task: PartitionTask; error: Error } }> => {
    const results: PartitionResult[] = [];
    let rest = batch;
    let failed: { task: PartitionTask; error: Error } | undefined;
    while (rest.length > 0) {
      const began = Date.now();
      // After a failure, another's would not be reported (the batch reports one): it runs again, and is recorded then, not twice.
      const writes = rest.map((p) => ({ ...p.write, computedAt: p.computedAt, ...(commitBy !== undefined ? { commitBy } : {}), ...(failed ? { recordFailure: false } : {}) }));
      const outcome = await deps.warehouse.publishMany(writes);
      // Each partition's time is its own work and its share of the commit (pacing and batch sizing read it).
      const share = (Date.now() - began) / rest.length;
      if (!outcome.failed) queuedSql.record(writes, share);
      for (const [i, published] of outcome.published.entries()) {
        const p = rest[i]!;
        for (const warning of published.alreadyPublished ? [] : published.warnings) ctx.log.warn(`check warning on ${p.write.node} ${p.task.key}: ${warning}`);
        const result = resultOf(p.task, published, p.startedAt, Math.round(p.computedAt + share), p.cost, p.latencyMs);
        telemetry.published(result);
        results.push(result);
      }
      if (!outcome.failed) break;
      if (failed) break;
      failed = { task: rest[outcome.failed.index]!.task, error: outcome.failed.error };
      rest = rest.slice(outcome.failed.index + 1);
    }
    return { results, ...(failed ? { failed } : {}) };
  };

  /**
   * The warehouse's identity, read once. A partition of a backfill that started on another
   * warehouse is not this worker's to run: the batch gives its partitions back (deferred, as a
   * worker that stops does), for a worker of that warehouse polling the same queue to take, and
   * says why in this worker's log. Failing them (as before) left a healthy worker's partitions
   * failed because one misconfigured worker took them first. With no worker of the right
   * warehouse, the node fails them after its deferrals, asking which worker is misconfigured.
   */
  let identity: Promise<string> | undefined;
  const otherWarehouse = async (input: RunPartitionsInput): Promise<string | null> => {
    if (input.warehouseId === undefined) return null;
    identity ??= deps.warehouse.identity();
    identity.catch(() => (identity = undefined));
    const id = await identity;
    if (id === input.warehouseId) return null;
    return (
      `this worker writes to warehouse ${deps.warehouse.location} (identity ${id}), but backfill '${input.backfillId}' started on warehouse ${input.warehouseId}: ` +
      `it gives the partitions back for a worker of that warehouse; start this worker with that backfill's warehouse (BACKFILL_WAREHOUSE or --warehouse), or stop it polling this task queue`
    );
  };

  return {
    ...createWarehouseActivities(deps),
    async runPartitions(input: RunPartitionsInput): Promise<RunPartitionsResult> {
      const ctx = Context.current();
      const wrongWarehouse = await otherWarehouse(input);
      if (wrongWarehouse !== null) {
        ctx.log.warn(wrongWarehouse, { type: PARTITION_FAILURES.wrongWarehouse });
        return { finished: priorFinished(ctx.info.heartbeatDetails, input.partitions), attempt: ctx.info.attempt, deferred: input.partitions.length };
      }
      const telemetry = new PartitionTelemetry(ctx, input);
      const finished: PartitionResult[] = priorFinished(ctx.info.heartbeatDetails, input.partitions);
      const skip = new Set(finished.map((r) => r.index));
      const attempt = ctx.info.attempt;
      // The running partition's latest details of its own: beside the checkpoint, never in its place.
      let user: { details: unknown } | undefined;
      const checkpoint = (): void => ctx.heartbeat({ finished, attempt, ...(user ? { user: user.details } : {}) } satisfies Checkpoint);
      const transformHeartbeat = (details?: unknown): void => {
        // Details the SDK cannot encode would cancel the activity: they are left out, and said so.
        if (details !== undefined && serializable(details)) user = { details };
        else if (details !== undefined) ctx.log.warn(`transform '${input.node.transform}' heartbeated details that do not convert to JSON (a bigint?): they are not sent`);
        checkpoint();
      };
      // Heartbeat on a timer too, so that a long transform is not mistaken for a dead worker.
      const everyMs = heartbeatEveryMs(parseDuration(input.node.heartbeatTimeout) ?? 30_000);
      const timer = setInterval(checkpoint, everyMs);
      const definitionHash = specHashOf(input.node);
      const window = windowOf(input.window);
      // Alone, a partition has the activity's timeout; in a batch, each has the node's.
      // A dry run's transform runs nothing: no timer, controller and race for each of its partitions.
      const dryRun = deps.transforms.get(input.node.transform)?.dryRun === true;
      const nodeTimeout = input.node.timeout === undefined || dryRun ? null : (parseDuration(input.node.timeout) ?? null);
      const partitionTimeout = input.partitions.length > 1 ? nodeTimeout : null;
      // Where the activity's own timeout ends it (the node's timeout for each partition): its SQL, alone too, stops by then.
      const activityEnds = nodeTimeout === null ? null : Date.now() + nodeTimeout * input.partitions.length;
      /** When the SQL of a partition that starts now must have ended. */
      const partitionDeadline = () => earliest(partitionTimeout === null ? null : Date.now() + partitionTimeout, activityEnds, input.window?.stopBy);
      const buffer = new PublishBuffer();
      /** The batch's cancellation, with what it committed before it (the workflow counts those done). */
      const cancelled = () => new CancelledFailure('cancelled', [{ finished, failedIndex: null, attempt } satisfies PartitionFailureDetails]);
      /** A partition's failure, as the workflow reads it; or the batch's result when it is a throttle or the end of the run window. */
      const failure = (task: PartitionTask, error: unknown, i: number): RunPartitionsResult => {
        if (isThrottled(error)) {
          telemetry.throttled(task, error.message);
          return { finished, attempt, throttled: { index: task.index, message: error.message } };
        }
        if (error instanceof CancelledFailure || ctx.cancellationSignal.aborted) throw cancelled();
        if (window.stopped?.aborted) return { finished, attempt, deferred: input.partitions.length - i };
        const { type, nonRetryable, message: said } = classify(error);
        const message = error instanceof SqlError ? missingRelationHint(said, task.inputs.map((input) => input.node)) : said;
        telemetry.failed(task, error, type, nonRetryable);
        const details: PartitionFailureDetails = { finished, failedIndex: task.index, attempt };
        throw ApplicationFailure.create({
          // The key is in the activity id and the details: kept out of the message, failures of one cause group together.
          message,
          type,
          nonRetryable,
          details: [details],
          cause: error instanceof Error ? error : undefined,
        });
      };
      /**
       * Commits partitions whose queued SQL runs in the commit: that is their work, so it has
       * the bounds a transform has, the partitions' timeout and the run window's stop.
       */
      const commitSql = (batch: readonly PendingPartition[]) => {
        const timeoutMs = partitionTimeout === null ? null : partitionTimeout * batch.length;
        const commitBy = earliest(timeoutMs === null ? null : Date.now() + timeoutMs, input.window?.stopBy, activityEnds);
        return commitWithin(commit(ctx, telemetry, batch, commitBy), timeoutMs, window.stopped);
      };
      /**
       * Commits what the buffer holds, and checkpoints it (a retry skips it); throws (or ends the batch) on a failed partition.
       * A commit without queued SQL still ends with the attempt: a publish that waits on the
       * database (a lock another session holds, a server that stopped answering) is stopped then.
       */
      const flush = async (last = false): Promise<RunPartitionsResult | null> => {
        if (buffer.size === 0) return null;
        const batch = buffer.take();
        let committed: Awaited<ReturnType<typeof commit>>;
        try {
          committed = batch.some((p) => p.write.data.selects.length > 0) ? await commitSql(batch) : await commit(ctx, telemetry, batch, earliest(input.window?.stopBy, activityEnds));
        } catch (error) {
          committed = { results: [], failed: { task: batch[0]!.task, error: error instanceof Error ? error : new Error(String(error)) } };
        }
        const { results, failed } = committed;
        finished.push(...results);
        // What a retry may skip; at the end of the batch, the result says it.
        if (results.length > 0 && !(last && !failed)) checkpoint();
        return failed ? failure(failed.task, failed.error, input.partitions.findIndex((t) => t.index === failed.task.index)) : null;
      };
      try {
        // Once the backfill's retry budget is spent, counting the failed attempts of batches still
        // retrying, a batch runs nothing: its partitions go back to the node (deferred), which holds
        // them, and the attempts that failed are counted with this result. Before, Temporal retried
        // a failing batch to its last attempt, and only then were its failures counted. Asked with
        // the heartbeat timer running: after a worker's crash the workflow's answer may be slow.
        const batchKey = `${ctx.info.workflowExecution?.workflowId ?? input.workflowId}/${ctx.info.activityId}`;
        if (deps.retryBudget !== undefined && (await deps.retryBudget.holds(input.backfillId, batchKey, attempt))) {
          return { finished, attempt, deferred: input.partitions.length };
        }
        for (const [i, task] of input.partitions.entries()) {
          if (skip.has(task.index)) continue;
          if (ctx.cancellationSignal.aborted) throw cancelled();
          // The worker stops: the rest go back to the node, which runs them again on another
          // worker; a failure would count an attempt against each, and so would a result that
          // did not say they were deferred.
          if (deps.stopping?.aborted) return (await flush()) ?? { finished, attempt, deferred: input.partitions.length - i };
          // Outside the run window nothing starts: the rest run again in the next window.
          if (window.closed()) return (await flush()) ?? { finished, attempt, deferred: input.partitions.length - i };
          let outcome: Awaited<ReturnType<typeof runOne>>;
          try {
            const deadline = partitionDeadline();
            user = undefined;
            outcome = await withinTimeout(partitionTimeout, window.stopped, (stopped) => runOne(input, task, ctx, definitionHash, telemetry, stopped, deadline, transformHeartbeat));
          } catch (error) {
            // What the batch computed before this partition is committed first, unless it was cancelled.
            if (!(error instanceof CancelledFailure || ctx.cancellationSignal.aborted)) {
              const ended = await flush();
              if (ended) return ended;
            }
            return failure(task, error, i);
          }
          if ('done' in outcome) {
            // Nothing was written (a dry run) or it was published before: nothing a crash could
            // lose, so no checkpoint of its own (each heartbeat encodes every finished result:
            // per partition, that cost grew with the batch). The next commit or the timer's
            // heartbeat carries it.
            finished.push(outcome.done);
            continue;
          }
          buffer.add(outcome.pending, queuedSql.get(outcome.pending.write));
          if (buffer.full()) {
            const ended = await flush(i === input.partitions.length - 1);
            if (ended) return ended;
          }
        }
        return (await flush(true)) ?? { finished, attempt };
      } finally {
        clearInterval(timer);
        window.dispose();
      }
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
