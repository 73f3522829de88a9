/**
 * Bad names at the SQL edge, through a real worker on every warehouse (SQLite, the lake,
 * PostgreSQL): output columns that share a name in any case fail their partitions at once as
 * InvalidOutput, not retried, with one message on every engine; checks that name a column in
 * another case look at it; the rest of the backfill goes on.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NativeConnection } from '@temporalio/worker';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { installRuntime } from '../../client/local.ts';
import { loadTransforms } from '../../activities/transforms.ts';
import { openWarehouse } from '../../activities/warehouse/index.ts';
import { PostgresWarehouse } from '../../activities/warehouse/postgres/postgres-dialect.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import { createWorkers } from '../../workers/worker.ts';
import { address, connectClient, scratch, testSpec, uniqueQueue } from './helpers.ts';

const SERVER = process.env.BACKFILL_TEST_POSTGRES_URL ?? 'postgres://backfill:backfill@127.0.0.1:5432/postgres';
const database = `backfill_edge_${randomUUID().slice(0, 8)}`;
const admin = new pg.Client({ connectionString: SERVER });

function postgresUrl(): string {
  const url = new URL(SERVER);
  url.pathname = `/${database}`;
  return url.toString();
}

const WAREHOUSES: Array<[string, () => Warehouse]> = [
  ['sqlite', () => openWarehouse(join(scratch('sql-edge'), 'warehouse.db'))],
  ['lake', () => openWarehouse(`lake://${join(scratch('sql-edge'), 'lake')}`)],
  // It connects as a superuser: its warning has a test of its own.
  ['postgres', () => new PostgresWarehouse(postgresUrl(), { warn: () => undefined })],
];

/** Workers on `queue` over `warehouse`, with the built-in transforms; returns their stop. */
async function startWorkers(queue: string, warehouse: Warehouse): Promise<() => Promise<void>> {
  process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
  installRuntime();
  const connection = await NativeConnection.connect({ address: address() });
  const workers = await createWorkers({
    connection,
    workflowQueue: queue,
    activityQueues: [{ name: queue }],
    warehouse,
    transforms: new Map(await loadTransforms([])),
    workflowBundle: { codePath: inject('workflowBundlePath') },
    lineage: { enabled: false, why: 'not asked for by the test' },
  });
  const running = workers.run();
  return async () => {
    workers.shutdown();
    await running;
    await connection.close();
  };
}

const TWINS = /^the output has columns 'Amount' and 'amount', whose names differ only in case, .*: give one of them another name in the transform's output \(in SQL, AS another_name\)$/;

describe('bad names at the SQL edge, through a worker', () => {
  let client: BackfillClient;
  beforeAll(async () => {
    client = await connectClient();
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
  });
  afterAll(async () => {
    await client?.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  for (const [kind, open] of WAREHOUSES) {
    it(`${kind}: columns of one name in any case fail as InvalidOutput at the first attempt, the same words on every engine; checks in another case look at the column`, async () => {
      const queue = uniqueQueue(`sql-edge-${kind}`);
      const warehouse = open();
      const stop = await startWorkers(queue, warehouse);
      try {
        const spec = testSpec(queue, {
          name: 'sql-edge',
          partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' },
          // Were a refusal retried, its first retry would come after the test's wait.
          defaults: { retry: { maxAttempts: 5, initialInterval: '1h', maximumInterval: '1h' } },
          nodes: [
            {
              id: 'orders',
              sql: 'SELECT :partition AS day, 1 AS order_id, 10 AS amount',
              checks: [
                { type: 'unique', columns: ['Order_ID'] },
                { type: 'not_null', columns: ['AMOUNT', 'Day'] },
              ],
            },
            { id: 'twins', dependsOn: ['orders'], sql: 'SELECT day, order_id AS "Amount", amount FROM orders' },
            { id: 'pairs', dependsOn: ['orders'], sql: 'SELECT o.day, p.day FROM orders o, orders p' },
          ],
        });
        const { backfillId } = await client.start(spec, { taskQueue: queue });
        const ended = await client.wait(backfillId, 60_000);
        expect(ended.state).toBe('completed_with_failures');
        const node = (id: string) => ended.progress!.nodes.find((n) => n.id === id)!;
        expect({ done: node('orders').done, failed: node('orders').failed }).toEqual({ done: 2, failed: 0 });
        expect(node('twins').failures).toHaveLength(1);
        expect(node('twins').failures[0]).toMatchObject({ type: 'InvalidOutput', partitions: 2 });
        expect(node('twins').failures[0]!.message).toMatch(TWINS);
        expect(node('pairs').failures.map((f) => [f.type, f.partitions, f.message])).toEqual([
          ['InvalidOutput', 2, "the output has two columns named 'day': give one of them another name in the transform's output (in SQL, AS another_name)"],
        ]);
        expect(await warehouse.ledger({ node: 'twins' })).toEqual([]);
        expect((await warehouse.ledger({ node: 'orders' })).map((r) => r.status)).toEqual(['published', 'published']);
      } finally {
        await stop();
        await warehouse.close();
      }
    });
  }
});
