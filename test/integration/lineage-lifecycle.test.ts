/**
 * The OpenLineage runs of a backfill pair up: every terminal event follows a START of its run,
 * and a node's run says COMPLETE only when its partitions all published.
 *
 * 0. A node's run ends as soon as none of its partitions is pending or running, even while
 *    another node's long partition keeps the backfill's workflow asleep (patch lineage-ends-on-settle).
 * 1. A node's run that ended FAIL while the backfill ran starts again (same run id) when
 *    `retry-failed` hands its partitions back in place, and ends COMPLETE once they publish
 *    (patch lineage-retry-restarts-runs).
 * 2. A backfill refused at its start (a dataset another backfill leases) ends no run: none of
 *    them started (patch lineage-ends-started-runs).
 * 3. A canary stopped by a failure in its slice completes no node's run: the node whose slice
 *    passed published nothing, and the rest of it never ran (ABORT).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowFailedError } from '@temporalio/client';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { backfillWorkflowId, nodeWorkflowId } from '../../workflows/definitions.ts';
import type { Transform } from '../../activities/transforms.ts';
import { NonRetryableError } from '../../transforms.ts';
import { eventsOf } from '../lineage/example.ts';
import { Gate, connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const queue = uniqueQueue('lineage-lifecycle');
const dir = scratch('lineage-lifecycle');
const file = join(dir, 'lineage.jsonl');
const broken = new Set<string>();
const slowGate = new Gate();
const holdGate = new Gate();
/** Opened once the test is done with the ticking node: its partitions then end at once. */
const tickGate = new Gate();
/** The ticking node's last partition, held at `tickGate`: the backfill runs until the test opens it. */
const LAST_TICK = '2024-01-02T15';
/** Held for good (opened after the suite): a node run that may not settle before its backfill fails. */
const neverGate = new Gate();
let worker: TestWorker;
let client: BackfillClient;

const transforms: Record<string, Transform> = {
  fragile: ({ node, partition }) => {
    if (broken.has(`${node}/${partition}`)) throw new NonRetryableError(`source data for ${partition} is corrupt`);
    return [{ partition, v: 1 }];
  },
  gated: async ({ signal }) => {
    await slowGate.pass(signal);
  },
  /** A partition that takes 700 ms, none once `tickGate` is open: the node reports often, which wakes the backfill's workflow. */
  tick: async ({ partition, signal }) => {
    const opened = tickGate.pass(signal);
    if (partition >= LAST_TICK) return opened;
    opened.catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 700);
      signal.addEventListener('abort', () => (clearTimeout(timer), reject(new Error('cancelled'))), { once: true });
      opened.then(() => (clearTimeout(timer), resolve()), () => undefined);
    });
  },
  held: async ({ signal }) => {
    await holdGate.pass(signal);
  },
  stuck: async ({ signal }) => {
    await neverGate.pass(signal);
  },
};

beforeAll(async () => {
  worker = await startTestWorker({
    queue,
    warehousePath: join(dir, 'warehouse.db'),
    transforms,
    lineage: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'file', path: file, append: true } },
  });
  client = await connectClient();
});

afterAll(async () => {
  slowGate.open();
  holdGate.open();
  tickGate.open();
  neverGate.open();
  await client?.close();
  await worker?.stop();
});

/** `<eventType> <job>` of every event of the jobs named `<name>` and `<name>.*`, in the order they were written. */
const events = (name: string): string[] => eventsOf(file, name);

describe('OpenLineage run lifecycle', () => {
  it("a node's run ends within seconds of its settling while another node's partition runs long", async () => {
    const name = `rl_late_${randomUUID().slice(0, 6)}`;
    const bad = `${name}_bad`;
    broken.add(`${bad}/2024-01-02`);
    const spec = testSpec(queue, {
      name,
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
      defaults: { taskQueue: queue, retry: { maxAttempts: 1 } },
      nodes: [
        { id: bad, transform: 'fragile' },
        { id: `${name}_slow`, transform: 'gated' },
      ],
    });
    const { backfillId } = await client.start(spec, { id: `rl-late-${randomUUID().slice(0, 6)}`, taskQueue: queue, tuning: { reportIntervalMs: 200 } });
    await waitFor('the bad node to settle with a failure', async () => {
      const node = (await client.progress(backfillId)).nodes.find((n) => n.id === bad);
      return node !== undefined && node.failed === 1 && node.pending === 0 && node.running === 0;
    }, 60_000, 200);
    const settledAt = Date.now();
    const ended = await waitFor("the bad node's run to end", () => events(name).includes(`FAIL ${name}.${bad}`), 15_000, 200).then(() => Date.now() - settledAt, () => null);
    slowGate.open();
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
    expect(ended, 'ms from settling to the FAIL of its run (null: none within 15 s)').not.toBeNull();
  });

  it("a node's run that ended FAIL, then was retried in place and published, says so", async () => {
    const name = `rl_retry_${randomUUID().slice(0, 6)}`;
    const bad = `${name}_bad`;
    const slow = `${name}_slow`;
    broken.add(`${bad}/2024-01-02`);
    const spec = testSpec(queue, {
      name,
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
      defaults: { taskQueue: queue, retry: { maxAttempts: 1 } },
      nodes: [
        { id: bad, transform: 'fragile' },
        // Partitions of 700 ms one at a time, its workflow woken by each report; the last waits at tickGate, so that the backfill runs until the retry has published.
        { id: slow, transform: 'tick', partitions: { grain: 'hour', start: '2024-01-01T00', end: '2024-01-02T16' }, concurrency: 1 },
      ],
    });
    const { backfillId } = await client.start(spec, { id: `rl-retry-${randomUUID().slice(0, 6)}`, taskQueue: queue, tuning: { reportIntervalMs: 200 } });
    // The bad node settles (2 done, 1 failed) while the slow node keeps the backfill running; its run ends FAIL.
    await waitFor("the bad node's run to end", () => events(name).includes(`FAIL ${name}.${bad}`), 60_000, 200);

    // The cause is fixed and the failed partition retried in place: it publishes.
    broken.delete(`${bad}/2024-01-02`);
    const retried = await client.retryFailed(backfillId, bad);
    expect(retried.resumed).toBeNull();
    await waitFor('the retried partition to publish', async () => (await client.progress(backfillId)).nodes.find((n) => n.id === bad)?.done === 3, 60_000, 200);
    tickGate.open();
    expect((await client.wait(backfillId, 90_000)).state).toBe('completed');
    await waitFor("the backfill's run to end", () => events(name).some((e) => e === `COMPLETE ${name}` || e === `FAIL ${name}`), 30_000, 200);

    const nodeEvents = events(name).filter((e) => e.endsWith(`${name}.${bad}`));
    // The retry started the node's run again (same run id), and it ended COMPLETE with the backfill's.
    expect(events(name)).toContain(`COMPLETE ${name}`);
    expect(nodeEvents).toEqual([`START ${name}.${bad}`, `FAIL ${name}.${bad}`, `START ${name}.${bad}`, `COMPLETE ${name}.${bad}`]);
  });

  it('a backfill refused at its start (a dataset another backfill leases) emits no FAIL for runs it never started', async () => {
    const suffix = randomUUID().slice(0, 6);
    const dataset = `rl_shared_${suffix}`;
    const firstName = `rl_first_${suffix}`;
    const secondName = `rl_second_${suffix}`;
    const range = { grain: 'day' as const, start: '2024-01-01', end: '2024-01-03' };
    const first = `rl-first-${suffix}`;
    await client.start(testSpec(queue, { name: firstName, partitions: range, nodes: [{ id: dataset, transform: 'held' }] }), { id: first, taskQueue: queue });
    await waitFor('the first backfill to start its node runs', () => events(firstName).includes(`START ${firstName}.${dataset}`), 60_000, 200);

    // BACKFILL_SHARED_DATASETS=1 in this suite: the client does not check, the workflow's lease refuses.
    expect(process.env.BACKFILL_SHARED_DATASETS).toBe('1');
    const second = `rl-second-${suffix}`;
    await client.start(testSpec(queue, { name: secondName, partitions: range, nodes: [{ id: dataset, transform: 'held' }] }), { id: second, taskQueue: queue });
    expect((await client.wait(second, 60_000)).state).toBe('failed');
    // A backfill's workflow closes only once its lineage events have landed: none were emitted, since nothing of it started.
    expect(events(secondName)).toEqual([]);

    holdGate.open();
    expect((await client.wait(first, 60_000)).state).toBe('completed');
  });

  it("a start that fails after some node workflows started (one's id is taken) ends the runs it started, and only those", async () => {
    const suffix = randomUUID().slice(0, 6);
    const name = `rl_taken_${suffix}`;
    const backfillId = `rl-taken-${suffix}`;
    const [ran, taken] = [`rl_ran_${suffix}`, `rl_taken_${suffix}`];
    // A workflow of another kind holds the id of the second node's workflow (on a queue nobody polls, so it stays open).
    const squatter = await client.client.workflow.start('squatter', { workflowId: nodeWorkflowId(backfillId, taken), taskQueue: `${queue}-nobody`, args: [] });
    try {
      const range = { grain: 'day' as const, start: '2024-01-01', end: '2024-01-03' };
      const spec = testSpec(queue, { name, partitions: range, nodes: [{ id: ran, transform: 'stuck' }, { id: taken, transform: 'stuck' }] });
      await client.start(spec, { id: backfillId, taskQueue: queue });
      expect((await client.wait(backfillId, 60_000)).state).toBe('failed');
      const failure = await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).result().then(() => null, (error: unknown) => error as WorkflowFailedError);
      expect(failure?.cause?.message).toMatch(new RegExp(`node workflow backfill/${backfillId}/${taken} is already running.*backfill resume ${backfillId}`));
      // The run that started has a START and an end; the backfill's too; the node whose workflow never started has neither.
      const all = events(name);
      expect(all.filter((e) => e.startsWith('START ')).sort()).toEqual([`START ${name}`, `START ${name}.${ran}`]);
      expect(all.filter((e) => !e.startsWith('START ')).sort()).toEqual([`ABORT ${name}.${ran}`, `FAIL ${name}`]);
      // The node workflow it started was cancelled; the one it did not start is not its own, and runs on.
      const ranStatus = (await client.client.workflow.getHandle(nodeWorkflowId(backfillId, ran)).describe()).status.name;
      expect(ranStatus).toBe('CANCELLED');
      expect((await squatter.describe()).status.name).toBe('RUNNING');
      // The leases were released: another backfill of the dataset that ran starts and finishes.
      const next = `rl-taken-next-${suffix}`;
      await client.start(testSpec(queue, { name: `${name}_next`, partitions: range, nodes: [{ id: ran, transform: 'fragile' }] }), { id: next, taskQueue: queue });
      expect((await client.wait(next, 60_000)).state).toBe('completed');
    } finally {
      await squatter.terminate('test over').catch(() => undefined);
    }
  });

  it('a canary stopped by a failure in its slice ends no node run COMPLETE: nothing was published', async () => {
    const name = `rl_canary_${randomUUID().slice(0, 6)}`;
    const bad = `${name}_bad`;
    const good = `${name}_good`;
    // --canary 1 picks each node's newest partition: the bad node's fails, the good node's passes (staged).
    broken.add(`${bad}/2024-01-03`);
    const spec = testSpec(queue, {
      name,
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
      defaults: { taskQueue: queue, retry: { maxAttempts: 1 } },
      nodes: [
        { id: bad, transform: 'fragile' },
        { id: good, transform: 'fragile' },
      ],
    });
    const { backfillId } = await client.start(spec, { id: `rl-canary-${randomUUID().slice(0, 6)}`, taskQueue: queue, canary: 1, tuning: { reportIntervalMs: 200 } });
    expect((await client.wait(backfillId, 60_000)).state).toBe('canary_failed');
    await waitFor("the backfill's run to end", () => events(name).some((e) => e === `FAIL ${name}`), 30_000, 200);
    const progress = await client.progress(backfillId);
    const goodProgress = progress.nodes.find((n) => n.id === good)!;
    // The good node has partitions that never ran, and its one staged version was never published: ABORT, not COMPLETE.
    expect(goodProgress.done).toBeLessThan(goodProgress.total);
    expect(events(name).filter((e) => e.startsWith('COMPLETE ')), JSON.stringify({ events: events(name), good: goodProgress })).toEqual([]);
    expect(events(name).filter((e) => !e.startsWith('START ')).sort()).toEqual([`ABORT ${name}.${good}`, `FAIL ${name}`, `FAIL ${name}.${bad}`]);
  });
});
