/**
 * Batching and pacing that tune themselves, on a real server: with no `batchSize` in the spec
 * (`auto`), a node times one partition and then packs fast ones many to an activity; with
 * `pace.latencyTarget`, a node runs fewer partitions at once while the service it calls answers
 * slower than the target, and goes back to its concurrency once the service is fast again.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { AUTO_BATCH_MAX } from '../../core/batching.ts';
import { expandPlan } from '../../core/plan.ts';
import type { RunPartitionsInput } from '../../core/protocol.ts';
import { backfillWorkflowId, carryQuery, nodeViewQuery, nodeWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('self-tuning nodes', () => {
  let client: BackfillClient;
  const workers: TestWorker[] = [];

  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    for (const worker of workers) await worker.stop();
  });

  const worker = async (name: string) => {
    const started = await startTestWorker({ queue: uniqueQueue(name), warehousePath: `${scratch(name)}/warehouse.db` });
    workers.push(started);
    return started;
  };

  /** The partitions of every activity the node workflow scheduled, in order. */
  const batches = async (backfillId: string, node: string): Promise<number[]> => {
    const history = await client.client.workflow.getHandle(nodeWorkflowId(backfillId, node)).fetchHistory();
    return history.events!.flatMap((e) => {
      const payload = e.activityTaskScheduledEventAttributes?.input?.payloads?.[0];
      return payload ? [defaultPayloadConverter.fromPayload<RunPartitionsInput>(payload).partitions.length] : [];
    });
  };

  it('batchSize auto: times the first partition alone, then runs no-op partitions many to an activity', async () => {
    const { queue, warehouse } = await worker('auto-batch');
    const spec = testSpec(queue, {
      name: 'auto-batch',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-22' },
      defaults: { concurrency: 4 },
      nodes: [{ id: 'quick', transform: 'sleep' }],
    });
    expect(spec.nodes[0]!.batchSize).toBe('auto');
    const total = expandPlan(spec).totalPartitions;
    expect(total).toBe(504);
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    const outcome = await client.wait(backfillId, 120_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress?.done).toBe(total);
    expect(await warehouse.ledger({ backfillId })).toHaveLength(total);

    const sizes = await batches(backfillId, 'quick');
    // Every partition in exactly one activity (none retried), the probe first and alone.
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
    expect(sizes[0]).toBe(1);
    expect(Math.max(...sizes)).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(AUTO_BATCH_MAX);
    // One partition per activity would be 504 activities; an even share of the queue per slot is at most ~126.
    expect(sizes.length).toBeLessThan(total / 10);
  });

  it('pace.latencyTarget: runs fewer partitions at once while the service it calls is slower than the target, and all of them again once it is fast', async () => {
    // Two backfills on two workers of this process call the same simulated service (the
    // `sleep` transform's latencyBase/latencyCapacity, shared by node id within a process):
    // 20 ms × (1 + calls in flight / 2). The paced node alone, 8 at once: about 100 ms, well under
    // its 250 ms target, with room for a loaded machine's timer delays (a 150 ms target left 35 ms
    // below the 135 ms it climbs under). With the other backfill's 40 calls as well: 420 ms and up.
    const TARGET_MS = 250;
    const service = { latencyBase: 20, latencyCapacity: 2 };
    const paced = await worker('paced');
    const load = await worker('load');
    const pacedSpec = testSpec(paced.queue, {
      name: 'paced',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-02-15' },
      defaults: { concurrency: 8, batchSize: 1 },
      nodes: [{ id: 'svc', transform: 'sleep', params: service, pace: { latencyTarget: `${TARGET_MS}ms` } }],
    });
    const loadSpec = testSpec(load.queue, {
      name: 'load',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-15' },
      defaults: { concurrency: 40, batchSize: 1 },
      nodes: [{ id: 'svc', transform: 'sleep', params: service }],
    });
    const { backfillId } = await client.start(pacedSpec, { taskQueue: paced.queue, tuning: { reportIntervalMs: 200 } });
    const view = () => client.client.workflow.getHandle(nodeWorkflowId(backfillId, 'svc')).query(nodeViewQuery);
    const p95 = async () => (await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).query(carryQuery)).reports.svc?.latencyP95Ms ?? null;

    // Alone: it measures latencies under the target and runs at its full concurrency.
    await waitFor('the paced node to measure latencies under its target', async () => {
      const latency = await p95();
      return latency !== null && latency < TARGET_MS && (await view()).concurrency === 8;
    });

    // The other backfill loads the service: the paced node lowers its concurrency.
    const other = await client.start(loadSpec, { taskQueue: load.queue, sharedDatasets: true });
    const slowed = await waitFor('the paced node to run fewer partitions at once', async () => {
      const now = await view();
      return now.concurrency < 8 ? now : undefined;
    });
    expect(slowed.queued).toBeGreaterThan(0);
    expect((await client.wait(other.backfillId, 120_000)).state).toBe('completed');

    // The service is fast again: the paced node climbs back to its concurrency while work is left.
    const recovered = await waitFor('the paced node to run 8 at once again', async () => {
      const now = await view();
      return now.concurrency === 8 ? now : undefined;
    }, 60_000);
    expect(recovered.queued).toBeGreaterThan(0);
    await waitFor('the paced node to report latencies under its target again', async () => ((await p95()) ?? Infinity) < TARGET_MS);

    const outcome = await client.wait(backfillId, 180_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress?.done).toBe(expandPlan(pacedSpec).totalPartitions);
    expect(await paced.warehouse.ledger({ backfillId })).toHaveLength(expandPlan(pacedSpec).totalPartitions);
  });
});
