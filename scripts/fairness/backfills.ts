/**
 * Priority and fairness between real backfills (docs/deploying.md, "Priority and fairness
 * between backfills"): backfills started through BackfillClient with `fairnessWeight` and
 * `priority` (what `start --fairness-weight` and `--priority` send), whose node workflows run
 * one partition per activity (`batchSize: 1`) on one task queue capped at `rate` activities per
 * second by its workers. The warehouse's ledger says when each partition started.
 *
 * - `measureBackfillShares`: two backfills with weights 1 and 3, each with more partitions than
 *   the window can serve; the share of the partitions started within the window.
 * - `measureBackfillPriority`: a priority-1 backfill's time from its start to its end, alone on
 *   the queue and then started behind a priority-5 backfill's backlog.
 * - `priorityOfRuns`: the priority every run of a backfill's workflows was started with (the
 *   node workflows inherit it from the parent, across continue-as-new), from their histories.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { temporal } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { loadTransforms } from '../../activities/transforms.ts';
import { ThreadedWarehouse } from '../../activities/warehouse/sqlite/threaded.ts';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import { registerSearchAttributes } from '../../client/search-attributes.ts';
import { resolveSpec, type ResolvedSpec } from '../../core/spec.ts';
import { backfillWorkflowId, nodeWorkflowId } from '../../workflows/definitions.ts';
import { createWorkers } from '../../workers/worker.ts';

type Priority = temporal.api.common.v1.IPriority;

/** A fleet for the experiment: workers of one capped activity queue (and their workflow queue), a warehouse, a client. */
export type Fleet = {
  queue: string;
  workflowQueue: string;
  client: BackfillClient;
  warehouse: ThreadedWarehouse;
  stop(): Promise<void>;
};

export async function startFleet(options: { address: string; dir: string; rate: number; workflowBundlePath?: string }): Promise<Fleet> {
  const queue = `fair-${randomUUID().slice(0, 8)}`;
  const workflowQueue = `${queue}-workflows`;
  const connection = await NativeConnection.connect({ address: options.address });
  const warehouse = new ThreadedWarehouse(join(options.dir, `${queue}.db`));
  const workers = await createWorkers({
    connection,
    workflowQueue,
    // The partitions' queue: the server starts at most `rate` of its activities a second.
    activityQueues: [{ name: workflowQueue }, { name: queue, maxActivitiesPerSecond: options.rate, maxConcurrent: 200 }],
    warehouse,
    transforms: await loadTransforms([]),
    ...(options.workflowBundlePath ? { workflowBundle: { codePath: options.workflowBundlePath } } : {}),
    lineage: { enabled: false, why: 'a fairness experiment' },
  });
  const running = workers.run();
  const client = await BackfillClient.connect({ settings: localConnection(options.address), identity: 'fairness-experiment' });
  // The experiment's own server: `backfill setup` on it (once; a second time finds them there).
  await registerSearchAttributes(client.connection, client.namespace);
  return {
    queue,
    workflowQueue,
    client,
    warehouse,
    stop: async () => {
      await client.close();
      workers.shutdown();
      await running;
      await connection.close();
      await warehouse.close();
    },
  };
}

/** One node of `partitions` hourly partitions on the fleet's capped queue, one partition per activity (the `sleep` transform: a ledger row, no data), many queued at once. */
export function experimentSpec(fleet: Fleet, node: string, partitions: number, concurrency = 200): ResolvedSpec {
  const start = Date.UTC(2024, 0, 1);
  return resolveSpec({
    name: `fairness-${node}`,
    partitions: { grain: 'hour', start: new Date(start).toISOString().slice(0, 13), end: new Date(start + partitions * 3_600_000).toISOString().slice(0, 13) },
    defaults: { taskQueue: fleet.queue, concurrency, batchSize: 1 },
    nodes: [{ id: node, transform: 'sleep', params: { ms: 0 } }],
  });
}

/** When each partition of a backfill started (the ledger's rows), in epoch milliseconds. */
async function startTimes(fleet: Fleet, backfillId: string): Promise<number[]> {
  return (await fleet.warehouse.ledger({ backfillId })).map((row) => Date.parse(row.startedAt));
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stopBackfill(fleet: Fleet, backfillId: string): Promise<void> {
  await fleet.client.cancel(backfillId, { reason: 'the fairness experiment is over' }).catch(() => undefined);
  await fleet.client.wait(backfillId, 60_000).catch(() => undefined);
}

export type ShareResult = {
  rate: number;
  windowMs: number;
  /** Partitions started within the window, by all the backfills. */
  total: number;
  backfills: Array<{ id: string; weight: number; inWindow: number; share: number }>;
};

/**
 * Two backfills of weights `weights` (the first started first, its partitions already queued
 * when the second starts), each with `partitions` partitions; the window opens `warmupMs` after
 * the second one's first partition started.
 */
export async function measureBackfillShares(fleet: Fleet, options: { rate: number; windowMs: number; weights?: [number, number]; partitions: number; warmupMs?: number }): Promise<ShareResult> {
  const weights = options.weights ?? [1, 3];
  const stamp = Date.now().toString(36);
  const ids = weights.map((w, i) => `fair-${stamp}-${i === 0 ? 'a' : 'b'}-w${w}`);
  try {
    for (const [i, id] of ids.entries()) {
      await fleet.client.start(experimentSpec(fleet, `load_${i === 0 ? 'a' : 'b'}`, options.partitions), { id, taskQueue: fleet.workflowQueue, fairnessWeight: weights[i]! });
      await until(`the first partition of ${id}`, async () => (await startTimes(fleet, id)).length > 0, 60_000);
    }
    const windowStart = Date.now() + (options.warmupMs ?? 3000);
    const windowEnd = windowStart + options.windowMs;
    await until('the end of the window', async () => Date.now() >= windowEnd + 1000, options.windowMs + 30_000);
    const counts = await Promise.all(ids.map(async (id) => (await startTimes(fleet, id)).filter((t) => t >= windowStart && t < windowEnd).length));
    const total = counts.reduce((a, b) => a + b, 0);
    return {
      rate: options.rate,
      windowMs: options.windowMs,
      total,
      backfills: ids.map((id, i) => ({ id, weight: weights[i]!, inWindow: counts[i]!, share: total > 0 ? counts[i]! / total : 0 })),
    };
  } finally {
    await Promise.all(ids.map((id) => stopBackfill(fleet, id)));
  }
}

export type PriorityResult = {
  partitions: number;
  /** From its start to its end, alone on the queue. */
  soloMs: number;
  /** The same, started behind the priority-5 backfill's queued partitions. */
  behindMs: number;
  ratio: number;
  /** From its first partition's start to its last one's end (the ledger): the queue's part of its time. */
  queue: { soloMs: number; behindMs: number; ratio: number };
  /** From its start to its first partition's start: starting its workflows, queuing its partitions. */
  firstPartitionMs: { solo: number; behind: number };
  /** Partitions of the priority-5 backfill that started while the priority-1 one ran (from its start to its end). */
  lowStartedMeanwhile: number;
  /** Of those, the ones that started between its first partition's start and its last one's end: none when priority is strict. */
  lowStartedAmongIts: number;
  /**
   * Of those, the ones in the first half of that span. On a task queue of several partitions
   * priority holds within each: one that runs out of priority-1 partitions first (they are
   * spread unevenly) starts priority-5 ones while the others still have priority-1 ones, so
   * the strays come at the end.
   */
  lowStartedInItsFirstHalf: number;
};

/** A priority-1 backfill of `partitions` partitions, alone, then behind a priority-5 backfill of `backlog` partitions. */
export async function measureBackfillPriority(fleet: Fleet, options: { partitions: number; backlog: number }): Promise<PriorityResult> {
  const stamp = Date.now().toString(36);
  const timed = async (id: string) => {
    const at = Date.now();
    // All its partitions queued at once (concurrency = partitions): how fast they go through is the queue's doing, not its workflow's refills.
    await fleet.client.start(experimentSpec(fleet, `urgent_${id.endsWith('solo') ? 'solo' : 'behind'}`, options.partitions, Math.min(1000, options.partitions)), { id, taskQueue: fleet.workflowQueue, priority: 1 });
    const outcome = await fleet.client.wait(id, 300_000);
    if (outcome.state !== 'completed') throw new Error(`backfill ${id} ended ${outcome.state}`);
    const rows = await fleet.warehouse.ledger({ backfillId: id });
    const first = Math.min(...rows.map((r) => Date.parse(r.startedAt)));
    const last = Math.max(...rows.map((r) => Date.parse(r.finishedAt)));
    return { startMs: at, endMs: Date.now(), firstMs: first - at, spanMs: last - first, first, last };
  };
  const solo = await timed(`prio-${stamp}-p1-solo`);
  const low = `prio-${stamp}-p5`;
  try {
    await fleet.client.start(experimentSpec(fleet, 'bulk', options.backlog), { id: low, taskQueue: fleet.workflowQueue, priority: 5 });
    await until(`the priority-5 backfill's partitions to be queued and running`, async () => (await startTimes(fleet, low)).length >= 20, 60_000);
    const behind = await timed(`prio-${stamp}-p1-behind`);
    const lowStarts = await startTimes(fleet, low);
    const lowStartedMeanwhile = lowStarts.filter((t) => t > behind.startMs && t < behind.endMs).length;
    const among = lowStarts.filter((t) => t > behind.first && t < behind.last);
    const lowStartedInItsFirstHalf = among.filter((t) => t < (behind.first + behind.last) / 2).length;
    const soloMs = solo.endMs - solo.startMs;
    const behindMs = behind.endMs - behind.startMs;
    return {
      partitions: options.partitions,
      soloMs,
      behindMs,
      ratio: behindMs / soloMs,
      queue: { soloMs: solo.spanMs, behindMs: behind.spanMs, ratio: behind.spanMs / solo.spanMs },
      firstPartitionMs: { solo: solo.firstMs, behind: behind.firstMs },
      lowStartedMeanwhile,
      lowStartedAmongIts: among.length,
      lowStartedInItsFirstHalf,
    };
  } finally {
    await stopBackfill(fleet, low);
  }
}

/** The priority each run of the backfill's workflow and its node workflows was started with. */
export async function priorityOfRuns(client: BackfillClient, backfillId: string, nodes: readonly string[]): Promise<Array<{ workflowId: string; runId: string; priority: Priority | null }>> {
  const runs: Array<{ workflowId: string; runId: string; priority: Priority | null }> = [];
  for (const workflowId of [backfillWorkflowId(backfillId), ...nodes.map((n) => nodeWorkflowId(backfillId, n))]) {
    for await (const execution of client.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      const history = await client.client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      runs.push({ workflowId, runId: execution.runId, priority: started?.priority ?? null });
    }
  }
  return runs;
}
