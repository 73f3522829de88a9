/**
 * The production shape: the real Temporal server (not the dev server) on PostgreSQL, with the
 * config in deploy/, three worker processes on one capped task queue, and a server restart.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { BackfillClient } from '../../client/backfill-client.ts';
import { registerSearchAttributes, SEARCH_ATTRIBUTES } from '../../client/search-attributes.ts';
import { openWarehouse, type Warehouse } from '../../activities/warehouse/index.ts';
import { expandPlan } from '../../core/plan.ts';
import { parseRange, type ResolvedSpec } from '../../core/spec.ts';
import { fingerprint } from '../../client/demo.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import { createDatabase, dropDatabase, testPostgresUrl } from '../../scripts/postgres.ts';
import { startTemporalCluster, type TemporalCluster } from '../../scripts/temporal-cluster.ts';
import type { WorkerProcess } from '../../scripts/worker-process.ts';
import { ROOT, connectClient, scratch, startRate, startTestWorker, testSpec, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

const CAP = 8;
const WINDOW_MS = 30_000;

/** Registers the search attributes, then waits until the server accepts them in a query. */
async function setupSearchAttributes(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await registerSearchAttributes(connection, namespace);
    // The server learns of them when it next refreshes its namespace cache (every 2 s by default).
    const query = Object.keys(SEARCH_ATTRIBUTES).map((name) => `${name} IS NULL`).join(' AND ');
    await waitFor('the search attributes to be usable', () => connection.workflowService.listWorkflowExecutions({ namespace, query, pageSize: 1 }).then(() => true), 30_000, 250);
  } finally {
    await connection.close();
  }
}

/** The activity rate the server enforces on a task queue, and who set it. */
async function effectiveRateLimit(client: BackfillClient, taskQueue: string): Promise<{ requestsPerSecond: number | null | undefined; source: string }> {
  const { TaskQueueType, RateLimitSource } = proto.temporal.api.enums.v1;
  const response = await client.connection.workflowService.describeTaskQueue({
    namespace: client.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    reportConfig: true,
  });
  const limit = response.effectiveRateLimit;
  return { requestsPerSecond: limit?.requestsPerSecond, source: (RateLimitSource[limit?.rateLimitSource ?? 0] ?? '').replace('RATE_LIMIT_SOURCE_', '') };
}

describe('Temporal server on PostgreSQL', () => {
  const databasePrefix = `backfill_test_${randomUUID().slice(0, 8)}`;
  const queue = uniqueQueue('capped');
  let warehousePath: string;
  let cluster: TemporalCluster | undefined;
  let workers: WorkerProcess[] = [];
  let client: BackfillClient | undefined;
  let warehouse: Warehouse | undefined;

  beforeAll(async () => {
    const dir = scratch('temporal-server');
    warehousePath = join(dir, 'warehouse.db');
    cluster = await startTemporalCluster({ databasePrefix, logFile: join(dir, 'temporal-server.log') });
    await setupSearchAttributes(cluster.address, cluster.namespace);
    const address = cluster.address;
    workers = [1, 2, 3].map(() => workerProcess({ address, queue, queueCap: CAP, warehouse: warehousePath }));
    await Promise.all(workers.map((w) => w.start()));
    client = await BackfillClient.connect({ address });
    warehouse = openWarehouse(warehousePath, { inline: true });
  });

  afterAll(async () => {
    await client?.close();
    await Promise.all(workers.map((w) => w.stop()));
    await warehouse?.close();
    await cluster?.stop();
    if (!process.env.BACKFILL_KEEP_TEST_FILES && cluster) {
      await Promise.all(Object.values(cluster.databases).map((name) => dropDatabase(name)));
    }
  });

  it('holds three workers to the task queue cap, and a backfill survives a server restart', async () => {
    // 384 partitions at 8/s: about 48 s, so the cap is measured over 30 s and some 15 s of work are
    // left for the checks after it and the restart (at 312, about 5 s were, tight on a loaded machine).
    const spec = testSpec(queue, {
      name: 'server-cap',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-17' },
      // One partition per activity: the cap counts activities, the ledger partitions.
      defaults: { concurrency: 200, batchSize: 1 },
      nodes: [{ id: 'load', transform: 'sleep', params: { ms: 20 } }],
    });
    const total = expandPlan(spec).totalPartitions;
    const { backfillId } = await client!.start(spec, { taskQueue: queue });
    const ledger = () => warehouse!.ledger({ backfillId });
    await waitFor('the first partitions', async () => (await ledger()).length > 0);

    // From past the initial burst to before the last partitions start.
    const from = Date.now() + 2000;
    const to = from + WINDOW_MS;
    await waitFor('partitions started after the window', async () => (await ledger()).some((r) => Date.parse(r.startedAt) > to + 500), WINDOW_MS + 15_000, 250);
    const started = await ledger();
    expect(started.length).toBeLessThan(total);
    const rate = startRate(started, from, to);
    expect(rate).toBeGreaterThanOrEqual(CAP * 0.95);
    expect(rate).toBeLessThanOrEqual(CAP * 1.05);
    // The server holds the workers' cap, and UpdateTaskQueueConfig (set-queue-rate) is enabled.
    expect(await effectiveRateLimit(client!, queue)).toEqual({ requestsPerSecond: CAP, source: 'WORKER' });
    expect((await client!.setQueueRate(queue, CAP)).rate).toBe(CAP);
    expect(await effectiveRateLimit(client!, queue)).toEqual({ requestsPerSecond: CAP, source: 'API' });
    expect((await client!.setQueueRate(queue, null)).rate).toBeNull();

    await cluster!.stop();
    const beforeRestart = (await ledger()).length;
    await cluster!.restart();
    // A supervisor would restart a worker that gave up while the server was away.
    await Promise.all(workers.filter((w) => !w.running).map((w) => w.start()));

    const outcome = await client!.wait(backfillId, 120_000);
    expect(outcome.state).toBe('completed');
    const rows = await ledger();
    expect(beforeRestart).toBeLessThan(total);
    expect(new Set(rows.map((r) => r.partition)).size).toBe(total);
    expect(rows.length).toBe(total);
  });
  it('runs the example on a PostgreSQL warehouse with three workers, one killed mid-run: it completes, each partition is published once, and the data equals the SQLite run', async () => {
    const example = (await loadSpecFile(join(ROOT, 'examples/shop/backfill.yaml'))).spec;
    const range = parseRange('2024-01-01', '2024-03-01');
    // The example unchanged but for where it runs, and a short heartbeat timeout so that the killed worker's partitions move on quickly.
    const onQueue = (name: string): ResolvedSpec => ({ ...example, nodes: example.nodes.map((n) => ({ ...n, taskQueue: name, heartbeatTimeout: '3s' })) });
    const total = expandPlan(example, range).totalPartitions;
    const transforms = [join(ROOT, 'examples/shop/transforms.ts')];

    // The reference: the same backfill on the embedded SQLite warehouse, on the dev server.
    const sqliteQueue = uniqueQueue('topology-sqlite');
    const sqliteWorker = await startTestWorker({ queue: sqliteQueue, warehousePath: join(scratch('topology'), 'warehouse.db'), transformModules: transforms });
    const devClient = await connectClient();
    let expected: string;
    try {
      const { backfillId } = await devClient.start(onQueue(sqliteQueue), { range, taskQueue: sqliteQueue });
      expect((await devClient.wait(backfillId, 180_000)).state).toBe('completed');
      expected = fingerprint((await sqliteWorker.warehouse.ledger({ backfillId })).filter((r) => r.status === 'published'));
    } finally {
      await devClient.close();
      await sqliteWorker.stop();
    }

    const database = `${databasePrefix}_warehouse`;
    await createDatabase(database);
    const url = new URL(testPostgresUrl());
    url.pathname = `/${database}`;
    const pgQueue = uniqueQueue('topology-pg');
    const pgWorkers = [1, 2, 3].map(() => workerProcess({ address: cluster!.address, queue: pgQueue, warehouse: url.toString(), transforms }));
    const pgWarehouse = openWarehouse(url.toString());
    try {
      await Promise.all(pgWorkers.map((w) => w.start()));
      const { backfillId } = await client!.start(onQueue(pgQueue), { range, taskQueue: pgQueue });
      const published = async () => (await pgWarehouse.ledger({ backfillId })).filter((r) => r.status === 'published');
      await waitFor('a third of the partitions', async () => (await published()).length >= total / 3, 120_000, 200);
      await pgWorkers[0]!.kill();
      const killedAt = (await published()).length;

      expect((await client!.wait(backfillId, 240_000)).state).toBe('completed');
      const rows = await published();
      expect(killedAt).toBeLessThan(total);
      // Each partition is published exactly once, whatever was in flight on the killed worker.
      const perPartition = new Map<string, number>();
      for (const r of rows) perPartition.set(`${r.node}/${r.partition}`, (perPartition.get(`${r.node}/${r.partition}`) ?? 0) + 1);
      expect(perPartition.size).toBe(total);
      expect([...perPartition.values()].every((n) => n === 1)).toBe(true);
      expect(fingerprint(rows)).toBe(expected);
    } finally {
      await Promise.all(pgWorkers.map((w) => w.stop()));
      await pgWarehouse.close();
      if (!process.env.BACKFILL_KEEP_TEST_FILES) await dropDatabase(database);
    }
  });
});
