/**
 * Fix and go on: a backfill whose SQL is broken is fixed with a new spec and completes,
 * recomputing only what failed and what it blocked; a cancelled backfill resumes and skips what
 * it had published.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { SpecInput } from '../../core/spec.ts';
import { Gate, connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('fix and go on', () => {
  let client: BackfillClient;
  let worker: TestWorker;
  const queue = uniqueQueue('fix');
  /** Holds the resumed backfill's partitions from 08:00 on until it has been cancelled. */
  const resumeGate = new Gate();

  beforeAll(async () => {
    client = await connectClient();
    worker = await startTestWorker({ queue, warehousePath: join(scratch('fix'), 'warehouse.db'), transforms: { held: resumeGate.holding('2024-01-01T08') } });
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  const shop = (sql: string): SpecInput => ({
    name: 'fix',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    defaults: { concurrency: 4 },
    nodes: [
      { id: 'orders', sql: "SELECT :partition AS day, 3 AS n UNION ALL SELECT :partition, 4" },
      // Broken on the 5th and later: a column that does not exist.
      { id: 'daily', dependsOn: ['orders'], sql },
      { id: 'weekly', partitions: { grain: 'week' }, dependsOn: ['daily'], sql: 'SELECT :partition AS week, SUM(total) AS total FROM daily' },
    ],
  });
  const broken = "SELECT :partition AS day, CASE WHEN :partition < '2024-01-05' THEN SUM(n) ELSE SUM(nope) END AS total FROM orders";
  const fixed = 'SELECT :partition AS day, SUM(n) AS total FROM orders';

  it('retry-failed with a fixed SQL completes the backfill, recomputing only the failed and blocked partitions', async () => {
    const { backfillId } = await client.start(testSpec(queue, shop(broken)), { taskQueue: queue });
    const first = await client.wait(backfillId, 120_000);
    expect(first.state).toBe('completed_with_failures');
    // SQL errors are not retried: every day fails at once... on SQLite the whole statement is checked, so all fail.
    const failedBefore = first.progress!.failed;
    expect(failedBefore).toBeGreaterThan(0);
    const before = await worker.warehouse.ledger({ backfillId });
    const publishedBefore = before.filter((r) => r.status === 'published').length;

    const result = await client.retryFailed(backfillId, undefined, testSpec(queue, shop(fixed)));
    expect(result.changed).toEqual(['daily']);
    expect(result.retried).toBe(failedBefore);
    const second = await client.wait(backfillId, 120_000);
    expect(second.state).toBe('completed');
    const after = (await worker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published');
    // Only the failed partitions and those they blocked ran again: nothing published before ran twice.
    expect(after.length - publishedBefore).toBe(failedBefore + first.progress!.blocked);
    const keys = after.map((r) => `${r.node}/${r.partition}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(await worker.warehouse.query('SELECT COUNT(*) AS n, SUM(total) AS total FROM daily')).toEqual([{ n: 10, total: 70 }]);
  });

  it('a new spec that changes the partitions is refused, naming the difference, and nothing starts', async () => {
    const { backfillId } = await client.start(testSpec(queue, shop(broken)), { taskQueue: queue });
    await client.wait(backfillId, 120_000);
    const other = shop(fixed);
    other.partitions = { grain: 'day', start: '2024-01-01', end: '2024-01-12' };
    await expect(client.retryFailed(backfillId, undefined, testSpec(queue, other))).rejects.toThrow(/changes the partitions of 'orders'/);
    expect((await client.describe(backfillId)).status.name).toBe('COMPLETED');
  });

  it('a cancelled backfill resumes in a new run that skips every published partition', async () => {
    const slow: SpecInput = {
      name: 'resume',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-02' },
      // The first 8 hours run, the rest wait at the gate: with 200 ms partitions, a loaded machine
      // could finish all of them before the cancel landed. One partition per activity, so that a
      // held one does not hold back the commit of a batch; a short heartbeat timeout lets the cancel reach it.
      defaults: { concurrency: 2, batchSize: 1, heartbeatTimeout: '2s' },
      nodes: [{ id: 'work', transform: 'held' }],
    };
    const { backfillId } = await client.start(testSpec(queue, slow), { taskQueue: queue });
    await waitFor('a few partitions', async () => (await worker.warehouse.ledger({ backfillId })).length >= 6);
    await client.cancel(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
    const publishedAtCancel = (await worker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published').length;
    expect(publishedAtCancel).toBeGreaterThanOrEqual(6);
    expect(publishedAtCancel).toBeLessThanOrEqual(8);
    resumeGate.open();

    const resumed = await client.resume(backfillId);
    expect(resumed.resumed?.backfillId).toBe(backfillId);
    expect((await client.wait(backfillId, 120_000)).state).toBe('completed');
    const rows = (await worker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published');
    expect(rows).toHaveLength(24);
    // The published ones were not run again.
    expect(rows.filter((r) => r.executions > 1).length).toBeLessThanOrEqual(2);
  });
});
