/**
 * One warehouse of each kind for a describe block of integration tests: a SQLite file, a
 * PostgreSQL database of its own (dropped after), or a Parquet lake directory; a worker in a process of its own polling a task
 * queue of its own, writing to it; the warehouse opened inline, to read what readers see; and a
 * client of the shared dev server.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { openWarehouse } from '../../activities/warehouse/index.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { createDatabase, databaseUrl, dropDatabase } from '../../scripts/postgres.ts';
import type { WorkerProcess } from '../../scripts/worker-process.ts';
import { address, connectClient, endLeftRunning, scratch, uniqueQueue, workerProcess } from './helpers.ts';

export type Backend = 'sqlite' | 'postgres' | 'lake';

export type BackendFixture = {
  readonly kind: Backend;
  readonly queue: string;
  /** Scratch files of the block (the SQLite file and the lake live here). */
  readonly dir: string;
  /** The warehouse's URL or path, as `--warehouse` takes it. */
  readonly location: string;
  /** Set before the block's first test. */
  worker: WorkerProcess;
  warehouse: Warehouse;
  client: BackfillClient;
};

/** Call inside `describe`: registers the block's beforeAll and afterAll. `env`: the worker's own environment. */
export function backendFixture(kind: Backend, name: string, env: Record<string, string> = {}): BackendFixture {
  const dir = scratch(`${name}-${kind}`);
  const database = `backfill_${name.replace(/\W/g, '_')}_${randomUUID().slice(0, 8)}`;
  const fixture = {
    kind,
    queue: uniqueQueue(`${name}-${kind}`),
    dir,
    location: kind === 'postgres' ? databaseUrl(database) : kind === 'lake' ? `lake://${join(dir, 'lake')}` : join(dir, 'warehouse.db'),
  } as BackendFixture;
  beforeAll(async () => {
    if (kind === 'postgres') await createDatabase(database);
    fixture.worker = workerProcess({ address: address(), queue: fixture.queue, warehouse: fixture.location, env });
    await fixture.worker.start();
    fixture.warehouse = openWarehouse(fixture.location, { inline: true });
    fixture.client = await connectClient();
  });
  afterAll(async () => {
    // Whatever a failed test left waiting, before the worker that could run it goes.
    if (fixture.client) await endLeftRunning(fixture.client, [fixture.queue]);
    await fixture.client?.close();
    await fixture.worker?.stop();
    await fixture.warehouse?.close();
    if (kind === 'postgres') await dropDatabase(database);
  });
  return fixture;
}
