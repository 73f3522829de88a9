/**
 * A batch's result and failure details come from whatever worker ran it. Here a foreign worker
 * polls a node's activity task queue: its `runPartitions` fails every batch (or lets it time out
 * after a heartbeat) saying it finished the node's other partitions, or completes a batch the
 * first time with a forged or malformed result and fails it the next, or completes every batch
 * with nothing finished. The node workflow counts none of those partitions done: each partition
 * is run (again, after a forged result, as a failed attempt), and fails, on its own.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { PartitionResult, RunPartitionsInput } from '../../core/protocol.ts';
import { address, connectClient, scratch, startTestWorker, testSpec, uniqueQueue, type TestWorker } from './helpers.ts';

const DAYS = ['2024-01-01', '2024-01-02', '2024-01-03', '2024-01-04'];

/** A result for every partition of the node but the batch's own: what a foreign worker may say it finished. */
function othersFinished(input: RunPartitionsInput): unknown[] {
  const mine = new Set(input.partitions.map((t) => t.index));
  const result = (index: number): PartitionResult => ({ index, key: DAYS[index]!, version: 1, rowCount: 1, checksum: 'forged', startedAt: 1, finishedAt: 2 });
  const others = DAYS.map((_, i) => i).filter((i) => !mine.has(i));
  // Twice, and beside a result of another key for a partition of the batch.
  return [...others.map(result), ...others.map(result), { ...result(input.partitions[0]!.index), key: 'not-its-key' }];
}

/** Results a foreign worker may return for a batch it did not run: of no use, each in its own way. */
function garbled(input: RunPartitionsInput): unknown {
  const own = input.partitions[0]!;
  switch (own.index) {
    case 0:
      return { finished: [null, 'x', { index: own.index, key: own.key }] };
    case 1:
      return { finished: 'all' };
    case 2:
      return undefined;
    default:
      return { finished: [{ index: own.index, key: own.key, version: 'v1', rowCount: 1, checksum: 'c', startedAt: 1, finishedAt: 2 }] };
  }
}

describe('the failure details and results of a batch a foreign worker ran', () => {
  let client: BackfillClient;
  let worker: TestWorker;
  let foreign: Worker;
  let foreignConnection: NativeConnection;
  let foreignRun: Promise<void>;
  const queue = uniqueQueue('details');
  const foreignQueue = `${queue}-foreign`;
  /** The foreign worker's runs of each partition, by node and key. */
  const calls = new Map<string, number>();
  /** Its runs of the node 'silent', by key; once healed, it says it finished what it was given. */
  const silentCalls = new Map<string, number>();
  let healed = false;
  /** When the foreign worker was asked to run each partition of the node 'defers', by key. */
  const deferCalls = new Map<string, number[]>();

  beforeAll(async () => {
    client = await connectClient();
    worker = await startTestWorker({ queue, warehousePath: join(scratch('details'), 'warehouse.db') });
    foreignConnection = await NativeConnection.connect({ address: address() });
    foreign = await Worker.create({
      connection: foreignConnection,
      taskQueue: foreignQueue,
      activities: {
        async runPartitions(input: RunPartitionsInput): Promise<unknown> {
          if (input.node.id === 'defers') {
            // Says it started none of the batch (as a worker that stops, or whose run window closed, says), every time.
            for (const t of input.partitions) deferCalls.set(t.key, [...(deferCalls.get(t.key) ?? []), Date.now()]);
            return { finished: [], attempt: 1, deferred: input.partitions.length };
          }
          if (input.node.id === 'silent') {
            for (const t of input.partitions) silentCalls.set(t.key, (silentCalls.get(t.key) ?? 0) + 1);
            const finished = healed ? input.partitions.map((t): PartitionResult => ({ index: t.index, key: t.key, version: 1, rowCount: 1, checksum: 'c', startedAt: 1, finishedAt: 2 })) : [];
            return { finished, attempt: 1 };
          }
          if (input.node.id === 'forges' || input.node.id === 'garbles') {
            const key = `${input.node.id}/${input.partitions.map((t) => t.key).join(',')}`;
            const call = (calls.get(key) ?? 0) + 1;
            calls.set(key, call);
            if (call > 1) throw ApplicationFailure.nonRetryable('this worker runs nothing', 'Foreign');
            // The first time: completed, with a result that says the node's other partitions (or nothing usable) finished.
            return input.node.id === 'forges' ? { finished: othersFinished(input), attempt: 1e9 } : garbled(input);
          }
          if (input.node.id === 'fails') throw ApplicationFailure.nonRetryable('this worker runs nothing', 'Foreign', { finished: othersFinished(input), failedIndex: 99, attempt: 1e9 });
          // Heartbeats the claim, then goes silent past the heartbeat timeout.
          Context.current().heartbeat({ finished: othersFinished(input), attempt: 1 });
          await new Promise((resolve) => setTimeout(resolve, 3000));
          throw ApplicationFailure.nonRetryable('too late', 'Foreign');
        },
      },
    });
    foreignRun = foreign.run();
  });
  afterAll(async () => {
    foreign?.shutdown();
    await foreignRun;
    await foreignConnection?.close();
    await client?.close();
    await worker?.stop();
  });

  it('counts no partition done that the failed or timed-out batch did not hold: every one runs and fails', async () => {
    const spec = testSpec(queue, {
      name: 'foreign-details',
      partitions: { grain: 'day', start: DAYS[0]!, end: '2024-01-05' },
      defaults: { batchSize: 1, concurrency: 1, retry: { maxAttempts: 1 } },
      nodes: [
        // On the test worker, whose first node's queue runs the backfill's own activities (its warehouse, its leases).
        { id: 'local', sql: 'SELECT :partition AS day' },
        { id: 'fails', sql: 'SELECT :partition AS day', taskQueue: foreignQueue },
        { id: 'times_out', sql: 'SELECT :partition AS day', taskQueue: foreignQueue, heartbeatTimeout: '1s', concurrency: 4 },
      ],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 100 } });
    const ended = await client.wait(backfillId, 120_000);
    expect(ended.state).toBe('completed_with_failures');
    const counts = Object.fromEntries(ended.progress!.nodes.map((n) => [n.id, { done: n.done, failed: n.failed }]));
    expect(counts).toEqual({ local: { done: 4, failed: 0 }, fails: { done: 0, failed: 4 }, times_out: { done: 0, failed: 4 } });
    // The forged attempt counts one failed attempt, not a billion.
    expect(ended.progress!.governance?.budgets.retries?.used).toBe(8);
  });

  it('counts no partition done that a completed batch did not hold: what its result does not account for runs again', async () => {
    const spec = testSpec(queue, {
      name: 'foreign-results',
      partitions: { grain: 'day', start: DAYS[0]!, end: '2024-01-05' },
      // Two attempts: the completed one that accounts for nothing is the first.
      defaults: { batchSize: 1, concurrency: 1, retry: { maxAttempts: 2 } },
      nodes: [
        { id: 'local', sql: 'SELECT :partition AS day' },
        { id: 'forges', sql: 'SELECT :partition AS day', taskQueue: foreignQueue },
        { id: 'garbles', sql: 'SELECT :partition AS day', taskQueue: foreignQueue },
      ],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 100 } });
    const ended = await client.wait(backfillId, 120_000);
    expect(ended.state).toBe('completed_with_failures');
    const counts = Object.fromEntries(ended.progress!.nodes.map((n) => [n.id, { done: n.done, failed: n.failed }]));
    expect(counts).toEqual({ local: { done: 4, failed: 0 }, forges: { done: 0, failed: 4 }, garbles: { done: 0, failed: 4 } });
    // Each partition ran twice: completed (forged) once, then again, and failed.
    expect(Object.fromEntries(calls)).toEqual(Object.fromEntries(['forges', 'garbles'].flatMap((node) => DAYS.map((day) => [`${node}/${day}`, 2]))));
    // Each forged or garbled completion counts one failed attempt (not a billion), and so does each of the 8 failures.
    expect(ended.progress!.governance?.budgets.retries?.used).toBe(16);
  });

  it('counts a partition that completed batches never account for as a failed attempt: it fails after retry.maxAttempts, and retry-failed runs it again', async () => {
    const spec = testSpec(queue, {
      name: 'foreign-silent',
      partitions: { grain: 'day', start: DAYS[0]!, end: '2024-01-05' },
      defaults: { batchSize: 2, concurrency: 2, retry: { maxAttempts: 3 } },
      nodes: [
        { id: 'local', sql: 'SELECT :partition AS day' },
        { id: 'silent', sql: 'SELECT :partition AS day', taskQueue: foreignQueue },
      ],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 100 } });
    // Before, every batch completed with nothing finished, and its partitions ran again, for ever.
    const ended = await client.wait(backfillId, 60_000);
    expect(ended.state).toBe('completed_with_failures');
    const silent = ended.progress!.nodes.find((n) => n.id === 'silent')!;
    expect({ done: silent.done, failed: silent.failed }).toEqual({ done: 0, failed: 4 });
    expect(silent.failures).toEqual([
      {
        message: `the batch completed 3 times without a result for this partition: does a worker of another build poll task queue '${foreignQueue}'? Stop it, then retry-failed`,
        type: 'NoResult',
        partitions: 4,
        examples: DAYS.slice(0, 3),
      },
    ]);
    // Three attempts of each partition, each a failed attempt for the retry budget.
    expect(Object.fromEntries(silentCalls)).toEqual(Object.fromEntries(DAYS.map((day) => [day, 3])));
    expect(ended.progress!.governance?.budgets.retries?.used).toBe(12);
    healed = true;
    expect((await client.retryFailed(backfillId)).retried).toBe(4);
    const again = await client.wait(backfillId, 60_000);
    expect(again.state).toBe('completed');
    expect(again.progress!.nodes.find((n) => n.id === 'silent')).toMatchObject({ done: 4, failed: 0 });
  });

  it('backs off from a worker that defers every batch with no run window closing, and fails the partitions after tuning.maxDeferrals, costing no attempt', async () => {
    const spec = testSpec(queue, {
      name: 'foreign-defers',
      partitions: { grain: 'day', start: DAYS[0]!, end: '2024-01-05' },
      defaults: { batchSize: 2, concurrency: 2, retry: { maxAttempts: 3 } },
      nodes: [
        { id: 'local', sql: 'SELECT :partition AS day' },
        { id: 'defers', sql: 'SELECT :partition AS day', taskQueue: foreignQueue },
      ],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 100, maxDeferrals: 3, deferralBackoffMs: 300 } });
    // Before, every batch came back deferred and ran again at once, for ever.
    const ended = await client.wait(backfillId, 30_000);
    expect(ended.state).toBe('completed_with_failures');
    const defers = ended.progress!.nodes.find((n) => n.id === 'defers')!;
    expect({ done: defers.done, failed: defers.failed }).toEqual({ done: 0, failed: 4 });
    expect(defers.failures).toHaveLength(1);
    expect(defers.failures[0]).toMatchObject({ type: 'Deferred', partitions: 4 });
    expect(defers.failures[0]!.message).toContain(`completed 4 times saying it deferred this partition (did not start it) while no run window closed`);
    expect(defers.failures[0]!.message).toContain(`temporal task-queue describe --task-queue ${foreignQueue}`);
    // Each partition was asked for 4 times: at once after the first deferral, then after 300 ms, then after 600 ms.
    for (const day of DAYS) {
      const at = deferCalls.get(day)!;
      expect(at).toHaveLength(4);
      expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(300);
      expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(600);
    }
    // A deferral is no attempt: the retry budget is untouched.
    expect(ended.progress!.governance?.budgets.retries?.used ?? 0).toBe(0);
  });
});
