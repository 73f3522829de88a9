/**
 * The readiness rule on a real server: a downstream partition never starts before the
 * upstream partitions it maps to are done, and it does start before the whole upstream
 * node is done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { expandPlan, upstreamOf } from '../../core/plan.ts';
import type { LedgerRow } from '../../activities/warehouse/types.ts';
import { Gate, connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('partition-level readiness', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('readiness');
  /** The upstream node's last day waits here until every downstream node has started: the whole node cannot be done first. */
  const lastDay = new Gate();

  beforeAll(async () => {
    worker = await startTestWorker({ queue, warehousePath: `${scratch('readiness')}/warehouse.db`, transforms: { last_day_held: lastDay.holding('2024-02-29') } });
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
        // Its last day is held (see lastDay): a loaded machine could otherwise run all of it
        // before the first downstream partition started, which only readiness should decide.
        { id: 'events', transform: 'last_day_held' },
        { id: 'sessions', transform: 'sleep', params: { ms: 10 }, dependsOn: ['events'] },
        { id: 'rolling', transform: 'sleep', dependsOn: [{ node: 'sessions', mapping: { lag: { from: -6, to: 0 } } }] },
        { id: 'weekly', transform: 'sleep', partitions: { grain: 'week' }, dependsOn: ['events'] },
        { id: 'monthly', transform: 'sleep', partitions: { grain: 'month' }, dependsOn: [{ node: 'sessions', mapping: 'window' }] },
      ],
    });
    const started = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 200 } });
    // Released when every downstream node has published a partition, or after a minute (then the assertions below fail).
    await waitFor('every downstream node to start', async () => {
      const nodes = new Set((await worker.warehouse.ledger({ backfillId: started.backfillId })).map((r) => r.node));
      return ['sessions', 'rolling', 'weekly', 'monthly'].every((n) => nodes.has(n));
    }).catch(() => undefined);
    lastDay.open();
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
