/**
 * What a backfill does with its warehouse around its partitions: it records the warehouse's
 * identity at start (a worker of another warehouse runs none of its partitions, giving them back), it
 * leases its datasets there (a second backfill of the same datasets on the same warehouse is
 * refused, whatever the client checked, and may go once the first has ended), and a node's
 * `adopt` reaches the warehouse.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { nodeWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const hours = { grain: 'hour' as const, start: '2024-01-01', end: '2024-01-02' };

describe("a backfill's warehouse", () => {
  const workers: TestWorker[] = [];
  let client: BackfillClient | undefined;
  afterEach(async () => {
    await client?.close();
    client = undefined;
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });

  it('is recorded at start: a worker of another warehouse runs nothing of it and gives its partitions back, and a worker of its own finishes it', async () => {
    const queue = uniqueQueue('identity');
    const dir = scratch('identity');
    const right = await startTestWorker({ queue, warehousePath: join(dir, 'right.db') });
    workers.push(right);
    client = await connectClient();
    // One partition, then one every 50 s until the wrong worker has taken over: partitions are left
    // for it however long the first report, the right worker's stop and the wrong one's start take
    // (at 2 a second the day took 12 s, which a loaded machine could use up: the backfill then
    // completed on the right warehouse). Then set-rate lifts the rate, and the rest goes at once.
    const spec = testSpec(queue, { name: 'identity', partitions: hours, defaults: { rate: 0.02, concurrency: 1 }, nodes: [{ id: 'events', sql: 'SELECT :partition AS hour' }] });
    const id = `identity-${Date.now()}`;
    await client.start(spec, { id, taskQueue: queue });
    await waitFor('a partition done on the right warehouse', async () => (await client!.progress(id)).done > 0, 60_000);

    // The right worker goes; one on another warehouse takes the rest, and gives each batch back.
    await workers.pop()!.stop();
    const wrong = await startTestWorker({ queue, warehousePath: join(dir, 'wrong.db') });
    workers.push(wrong);
    // Asked again until the new worker takes it (the workflow's tasks may wait a moment on the stopped worker's sticky queue).
    await waitFor('the wrong worker to take the rate change', () => client!.setRate(id, null, 'events').then(() => true), 60_000, 500);
    const node = client.client.workflow.getHandle(nodeWorkflowId(id, 'events'));
    const converter = client.client.options.loadedDataConverter.payloadConverter;
    await waitFor(
      'a batch given back by the worker of the other warehouse',
      async () =>
        ((await node.fetchHistory()).events ?? []).some((event) => {
          const payload = event.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
          return payload !== undefined && (converter.fromPayload(payload) as { deferred?: number }).deferred !== undefined;
        }),
      60_000,
      250,
    );
    const held = await client.progress(id);
    expect(held.failed).toBe(0);
    expect(await wrong.warehouse.ledger({ backfillId: id })).toEqual([]);

    // A worker of the backfill's own warehouse finishes it: nothing failed, nothing reached the other one.
    await workers.pop()!.stop();
    const again = await startTestWorker({ queue, warehousePath: join(dir, 'right.db') });
    workers.push(again);
    const outcome = await client.wait(id, 120_000);
    expect(outcome.state).toBe('completed');
    expect(outcome.progress).toMatchObject({ done: 24, failed: 0 });
    expect(await again.warehouse.ledger({ backfillId: id })).toHaveLength(24);
  });

  it("leases its datasets: another backfill of them on the same warehouse is refused, and goes once the first has ended", async () => {
    const queue = uniqueQueue('lease');
    const dir = scratch('lease');
    const worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db') });
    workers.push(worker);
    client = await connectClient();
    // A week of hours at 2 a second (84 s): it is still writing when the second is refused and when
    // it is cancelled, however loaded the machine (a day, 12 s, left little for both). Cancelled, it costs nothing.
    const slow = testSpec(queue, { name: 'first', partitions: { ...hours, end: '2024-01-08' }, defaults: { rate: 2 }, nodes: [{ id: 'sessions', sql: 'SELECT :partition AS hour' }] });
    const first = `lease-first-${Date.now()}`;
    await client.start(slow, { id: first, taskQueue: queue });
    await waitFor('the first backfill to write', async () => (await client!.progress(first)).done > 0, 60_000);

    // The client's own check is skipped (as when two starts race): the warehouse's lease decides.
    const fast = testSpec(queue, { name: 'second', partitions: hours, nodes: [{ id: 'sessions', sql: 'SELECT :partition AS hour' }, { id: 'users', sql: 'SELECT :partition AS hour' }] });
    const second = `lease-second-${Date.now()}`;
    await client.start(fast, { id: second, taskQueue: queue, sharedDatasets: true });
    const refused = await client.wait(second, 60_000);
    expect(refused.state).toBe('failed');
    const description = await client.describe(second);
    expect(description.status.name).toBe('FAILED');
    const why = await client.result(second).catch((error: unknown) => String((error as Error).cause ?? error));
    expect(String(why)).toMatch(new RegExp(`sessions by backfill '${first}'.*one writer per dataset`));
    // Nothing of the second was written, not even its other dataset.
    expect(await worker.warehouse.ledger({ backfillId: second })).toEqual([]);

    await client.cancel(first);
    expect((await client.wait(first, 60_000)).state).toBe('cancelled');
    const again = `lease-again-${Date.now()}`;
    await client.start(fast, { id: again, taskQueue: queue, sharedDatasets: true });
    expect((await client.wait(again, 120_000)).state).toBe('completed');
    expect(await worker.warehouse.ledger({ backfillId: again, node: 'sessions' })).toHaveLength(24);
  });

  it("takes over a view of the user's only when the node says adopt", async () => {
    const queue = uniqueQueue('adopt');
    const dir = scratch('adopt');
    const path = join(dir, 'warehouse.db');
    const db = new Database(path);
    db.exec(`CREATE VIEW totals AS SELECT 1 AS n; CREATE VIEW kept AS SELECT 1 AS n`);
    db.close();
    const worker = await startTestWorker({ queue, warehousePath: path });
    workers.push(worker);
    client = await connectClient();
    const day = { grain: 'day' as const, start: '2024-01-01', end: '2024-01-02' };
    const spec = testSpec(queue, {
      name: 'adopt',
      partitions: day,
      nodes: [
        { id: 'totals', sql: 'SELECT 2 AS n', adopt: true },
        { id: 'kept', sql: 'SELECT 2 AS n' },
      ],
    });
    const id = `adopt-${Date.now()}`;
    await client.start(spec, { id, taskQueue: queue });
    const outcome = await client.wait(id, 60_000);
    expect(outcome.state).toBe('completed_with_failures');
    const kept = outcome.progress!.nodes.find((n) => n.id === 'kept')!;
    expect(kept.failed).toBe(1);
    expect(kept.failures[0]!.message).toMatch(/kept.*adopt/);
    expect(await worker.warehouse.query('SELECT n FROM totals')).toEqual([{ n: 2 }]);
    expect(await worker.warehouse.query('SELECT n FROM kept')).toEqual([{ n: 1 }]);
  });
});
