/**
 * A PostgreSQL connection that stops answering in the middle of a publish: the publish waits on
 * a lock another session holds (LOCK TABLE), or its server process is stopped (SIGSTOP). The
 * partition's attempt ends by its time (the node's timeout), the connection is not handed to
 * the next publish in that state, and the partition succeeds on its next attempt.
 */
import { randomUUID } from 'node:crypto';
import { NativeConnection } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { PostgresWarehouse } from '../../activities/warehouse/postgres/postgres-dialect.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import { loadTransforms } from '../../activities/transforms.ts';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { installRuntime } from '../../client/local.ts';
import { createDatabase, databaseUrl, dropDatabase } from '../../scripts/postgres.ts';
import { createWorkers, type BackfillWorkers } from '../../workers/worker.ts';
import { address, connectClient, testSpec, uniqueQueue, waitFor } from './helpers.ts';

const database = `backfill_hang_${randomUUID().slice(0, 8)}`;
const url = databaseUrl(database);
const queue = uniqueQueue('pg-hang');
let admin: pg.Client;
let client: BackfillClient;
let connection: NativeConnection;
let warehouse: Warehouse;
let workers: BackfillWorkers;
let running: Promise<void>;

beforeAll(async () => {
  await createDatabase(database);
  admin = new pg.Client({ connectionString: url });
  await admin.connect();
  process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
  installRuntime();
  connection = await NativeConnection.connect({ address: address() });
  warehouse = new PostgresWarehouse(url, { warn: () => undefined });
  const transforms = new Map(await loadTransforms([]));
  transforms.set('rows', async ({ partition }) => [{ day: partition, n: 1 }]);
  workers = await createWorkers({
    connection,
    workflowQueue: queue,
    warehouse,
    transforms,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    lineage: { enabled: false, why: 'not asked for by the test' },
  });
  running = workers.run();
  client = await connectClient();
  // The schema is set up before any table is locked.
  await warehouse.ledger({ backfillId: 'none' });
});

afterAll(async () => {
  await client?.close();
  workers?.shutdown();
  await running;
  await connection?.close();
  await warehouse?.close();
  await admin?.end();
  await dropDatabase(database);
});

/** The warehouse sessions of the worker (its pool's connections), as the server sees them. */
async function sessions(): Promise<Array<{ pid: number; state: string; waiting: string | null }>> {
  const { rows } = await admin.query<{ pid: number; state: string; waiting: string | null }>(
    `SELECT pid, state, wait_event_type AS waiting FROM pg_stat_activity WHERE datname = $1 AND application_name = 'backfill' AND pid <> pg_backend_pid()`,
    [database],
  );
  return rows;
}

/** A backfill of one partition whose publish has 3 s (the node's timeout), retried once a second. */
function oneDay(name: string, day: string) {
  const next = new Date(Date.parse(day) + 86_400_000).toISOString().slice(0, 10);
  return testSpec(queue, {
    name,
    partitions: { grain: 'day', start: day, end: next },
    defaults: { timeout: '3s', heartbeatTimeout: '1s', retry: { maxAttempts: 4, initialInterval: '1s', maximumInterval: '1s' } },
    nodes: [{ id: `${name}_days`, transform: 'rows' }],
  });
}

describe('a publish whose PostgreSQL connection stops answering', () => {
  it('waiting on a lock another session holds: the attempt ends by its time, and the next attempt publishes', async () => {
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE backfill.ledger IN ACCESS EXCLUSIVE MODE');
      const { backfillId } = await client.start(oneDay('locked', '2024-01-01'), { taskQueue: queue });
      await waitFor('the publish to wait on the lock', async () => (await sessions()).some((s) => s.waiting === 'Lock'), 30_000);
      // Before, it waited for as long as the lock was held, whatever the partition's timeout.
      await waitFor('the attempt to stop waiting by its time', async () => !(await sessions()).some((s) => s.waiting === 'Lock'), 10_000);
      await locker.query('COMMIT');
      const outcome = await client.wait(backfillId, 30_000);
      expect(outcome.state).toBe('completed');
      const rows = await warehouse.ledger({ backfillId });
      expect(rows.map((r) => [r.partition, r.status])).toEqual([['2024-01-01', 'published']]);
      expect(rows[0]!.attempt).toBeGreaterThan(1);
      // No connection is left inside a transaction or a statement.
      await waitFor('every connection of the pool to be idle', async () => (await sessions()).every((s) => s.state === 'idle'), 10_000);
    } finally {
      await locker.end();
    }
  });

  it('whose server process is stopped (SIGSTOP): the worker gives the connection up after the deadline, and the next attempt publishes', async () => {
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    let stopped: number | undefined;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE backfill.ledger IN ACCESS EXCLUSIVE MODE');
      const { backfillId } = await client.start(oneDay('stopped', '2024-02-01'), { taskQueue: queue });
      const waiting = await waitFor('the publish to wait on the lock', async () => (await sessions()).find((s) => s.waiting === 'Lock'), 30_000);
      // Its server process stops: no statement_timeout can end the wait now, the server sends nothing.
      process.kill(waiting.pid, 'SIGSTOP');
      stopped = waiting.pid;
      const firstAttempt = () => workers.running().some((a) => a.partition?.backfillId === backfillId && a.attempt === 1);
      expect(firstAttempt()).toBe(true);
      // Before, the attempt waited on that connection for as long as the process stayed stopped.
      await waitFor('the first attempt to give up its silent connection', () => !firstAttempt(), 15_000);
      process.kill(waiting.pid, 'SIGCONT');
      stopped = undefined;
      await locker.query('COMMIT');
      const outcome = await client.wait(backfillId, 30_000);
      expect(outcome.state).toBe('completed');
      const rows = await warehouse.ledger({ backfillId });
      expect(rows.map((r) => [r.partition, r.status])).toEqual([['2024-02-01', 'published']]);
      expect(rows[0]!.attempt).toBeGreaterThan(1);
      // The connection given up is gone, not back in the pool; the others are idle.
      await waitFor('the stopped connection to be gone and the rest idle', async () => {
        const now = await sessions();
        return !now.some((s) => s.pid === waiting.pid) && now.every((s) => s.state === 'idle');
      }, 10_000);
    } finally {
      if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
      await locker.end();
    }
  });

  it('whose server process is terminated (pg_terminate_backend): the attempt fails at once, the connection leaves the pool, and the next attempt publishes', async () => {
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE backfill.ledger IN ACCESS EXCLUSIVE MODE');
      const { backfillId } = await client.start(oneDay('terminated', '2024-03-01'), { taskQueue: queue });
      const waiting = await waitFor('the publish to wait on the lock', async () => (await sessions()).find((s) => s.waiting === 'Lock'), 30_000);
      await admin.query('SELECT pg_terminate_backend($1)', [waiting.pid]);
      await locker.query('COMMIT');
      const outcome = await client.wait(backfillId, 30_000);
      expect(outcome.state).toBe('completed');
      const rows = await warehouse.ledger({ backfillId });
      expect(rows.map((r) => [r.partition, r.status])).toEqual([['2024-03-01', 'published']]);
      expect(rows[0]!.attempt).toBeGreaterThan(1);
      await waitFor('every connection of the pool to be idle', async () => (await sessions()).every((s) => s.state === 'idle'), 10_000);
    } finally {
      await locker.end();
    }
  });
});
