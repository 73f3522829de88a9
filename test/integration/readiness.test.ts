/**
 * The readiness rule on a real server: a downstream partition never starts before the
 * upstream partitions it maps to are done, and it does start before the whole upstream
 * node is done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { expandPlan, upstreamOf } from '../../core/plan.ts';
import type { LedgerRow } from '../../activities/warehouse/types.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, type TestWorker } from './helpers.ts';

describe('partition-level readiness', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('readiness');

  beforeAll(async () => {
    worker = await startTestWorker({ queue, warehousePath: `${scratch('readiness')}/warehouse.db` });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('starts each downstream partition once its upstream partitions are done, not when the whole node is', async () => {
    const spec = testSpec(queue, {
      name: 'readiness',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-03-01' },
      // One partition per activity: a batch publishes its partitions one by one but the node
      // hears of them together, which would blur what this test measures.
      defaults: { concurrency: 2, batchSize: 1 },
      nodes: [
        // Slow enough that the upstream node takes several seconds in all.
        { id: 'events', transform: 'sleep', params: { ms: 40 } },
        { id: 'sessions', transform: 'sleep', params: { ms: 10 }, dependsOn: ['events'] },
        { id: 'rolling', transform: 'sleep', dependsOn: [{ node: 'sessions', mapping: { lag: { from: -6, to: 0 } } }] },
        { id: 'weekly', transform: 'sleep', partitions: { grain: 'week' }, dependsOn: ['events'] },
        { id: 'monthly', transform: 'sleep', partitions: { grain: 'month' }, dependsOn: [{ node: 'sessions', mapping: 'window' }] },
      ],
    });
    const started = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 200 } });
    const outcome = await client.wait(started.backfillId, 120_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress?.done).toBe(expandPlan(spec).totalPartitions);

    const ledger = await worker.warehouse.ledger({ backfillId: started.backfillId });
    const byKey = new Map<string, LedgerRow>(ledger.map((row) => [`${row.node}/${row.partition}`, row]));
    const plan = expandPlan(spec);
    let checked = 0;
    for (const node of plan.nodes) {
      for (let j = 0; j < node.partitions.size; j++) {
        const row = byKey.get(`${node.id}/${node.partitions.key(j)}`)!;
        expect(row, `${node.id} ${node.partitions.key(j)} has a ledger row`).toBeDefined();
        for (const dep of upstreamOf(plan, node.id, j)) {
          const upstream = plan.byId.get(dep.node)!;
          for (let i = dep.start; i < dep.end; i++) {
            const up = byKey.get(`${dep.node}/${upstream.partitions.key(i)}`)!;
            // The downstream transform started after the upstream partition was published.
            expect(Date.parse(row.startedAt), `${node.id} ${row.partition} after ${dep.node} ${up.partition}`).toBeGreaterThanOrEqual(Date.parse(up.finishedAt));
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(500);

    // ... and it did not wait for the whole upstream node.
    const finished = (node: string) => Math.max(...ledger.filter((r) => r.node === node).map((r) => Date.parse(r.finishedAt)));
    const firstStart = (node: string) => Math.min(...ledger.filter((r) => r.node === node).map((r) => Date.parse(r.startedAt)));
    expect(firstStart('sessions')).toBeLessThan(finished('events'));
    expect(firstStart('weekly')).toBeLessThan(finished('events'));
    expect(firstStart('rolling')).toBeLessThan(finished('sessions'));
    expect(firstStart('monthly')).toBeLessThan(finished('sessions'));
  });
});
