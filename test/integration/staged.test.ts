/**
 * Staged backfills on a real server, with a worker in a process of its own, on both warehouses:
 * `start --stage` leaves every dataset as it was; `diff` counts what publishing would change (as
 * SQL EXCEPT counts it); `publish` moves everything at once (a reader polling the views meanwhile
 * never sees a mix) and leaves the datasets as a direct run leaves them; `discard` drops the
 * staged versions; a decision sent straight to the workflow, past the command line, is
 * validated the same way, and a signal of the same name does nothing.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/canonical.ts';
import { openWarehouse } from '../../activities/warehouse/index.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { DiffSummary } from '../../core/diff.ts';
import type { SpecInput } from '../../core/spec.ts';
import { createDatabase, dropDatabase, testPostgresUrl } from '../../scripts/postgres.ts';
import type { WorkerProcess } from '../../scripts/worker-process.ts';
import { address, connectClient, runCli, scratch, testSpec, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

/** Daily src (two rows a day, scaled by `factor`), daily totals of it, and weekly totals of those, over the first ten days of 2024. */
function specInput(queue: string, prefix: string, factor: number): SpecInput {
  return {
    name: `staged-${prefix}`,
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    defaults: { taskQueue: queue, concurrency: 4, heartbeatTimeout: '5s', retry: { initialInterval: '200ms', maximumInterval: '1s' } },
    nodes: [
      { id: `${prefix}_src`, sql: 'SELECT :partition AS day, 1 AS k, :factor AS v UNION ALL SELECT :partition, 2, :factor * 2', params: { factor } },
      { id: `${prefix}_daily`, dependsOn: [`${prefix}_src`], sql: `SELECT day, SUM(v) AS total, COUNT(*) AS n FROM ${prefix}_src GROUP BY day` },
      { id: `${prefix}_weekly`, partitions: { grain: 'week' }, dependsOn: [`${prefix}_daily`], sql: `SELECT :partition AS week, SUM(total) AS total, COUNT(*) AS days FROM ${prefix}_daily` },
    ],
  };
}

const nodesOf = (prefix: string) => [`${prefix}_src`, `${prefix}_daily`, `${prefix}_weekly`];

/** Every dataset's rows, as its view shows them. */
async function views(warehouse: Warehouse, prefix: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const node of nodesOf(prefix)) out[node] = (await warehouse.query(`SELECT * FROM ${node}`)).map((row) => canonicalJson(row)).sort();
  return out;
}

type Backend = 'sqlite' | 'postgres';

describe.each<Backend>(['sqlite', 'postgres'])('staged backfills on %s', (kind) => {
  const queue = uniqueQueue(`staged-${kind}`);
  const database = `backfill_st_${randomUUID().slice(0, 8)}`;
  const dir = scratch(`staged-${kind}`);
  let location: string;
  let worker: WorkerProcess;
  let warehouse: Warehouse;
  let client: BackfillClient;

  beforeAll(async () => {
    if (kind === 'postgres') {
      await createDatabase(database);
      const url = new URL(testPostgresUrl());
      url.pathname = `/${database}`;
      location = url.toString();
    } else {
      location = join(dir, 'warehouse.db');
    }
    worker = workerProcess({ address: address(), queue, warehouse: location });
    await worker.start();
    warehouse = openWarehouse(location, { inline: true });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
    await warehouse?.close();
    if (kind === 'postgres') await dropDatabase(database);
  });

  const direct = async (prefix: string, factor: number): Promise<string> => {
    const { backfillId } = await client.start(testSpec(queue, specInput(queue, prefix, factor)), { taskQueue: queue, tuning: { reportIntervalMs: 200 }, id: `${prefix}-direct-${randomUUID().slice(0, 6)}` });
    expect((await client.wait(backfillId, 120_000)).state).toBe('completed');
    return backfillId;
  };
  /** `backfill start --stage` from a spec file, until every partition is staged. */
  const staged = async (prefix: string, factor: number): Promise<string> => {
    const file = join(dir, `${prefix}-${factor}.json`);
    writeFileSync(file, JSON.stringify(specInput(queue, prefix, factor)));
    const started = await runCli<{ backfillId: string }>(['start', file, '--stage', '--id', `${prefix}-staged-${factor}`, '--json'], { BACKFILL_TASK_QUEUE: queue });
    expect(started.code, started.stderr).toBe(0);
    const id = started.json!.backfillId;
    await waitFor('every partition to be staged', async () => (await client.progress(id)).state === 'staged', 120_000, 200);
    return id;
  };
  const cli = async <T>(...args: string[]) => {
    const result = await runCli<T>([...args, '--json'], { BACKFILL_WAREHOUSE: location });
    return { code: result.code, json: result.json!, stderr: result.stderr };
  };

  it('stage changes nothing readers see; diff counts the change; publish moves it all at once, as a direct run would', async () => {
    const p = `s_${kind}`;
    await direct(p, 1);
    const before = await views(warehouse, p);
    const id = await staged(p, 2);
    expect(await views(warehouse, p)).toEqual(before);
    const progress = await client.progress(id);
    expect(progress).toMatchObject({ state: 'staged', done: progress.total, failed: 0 });

    // diff: each day of src has both rows changed (2 removed, 2 added), daily one row, weekly one row per week (2 weeks).
    const diff = await cli<DiffSummary & { phase: string }>('diff', id);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.json.phase).toBe('awaiting');
    expect(diff.json.nodes.map((n) => [n.node, n.partitions, n.added, n.removed, n.changed, n.rowsBefore, n.rowsAfter])).toEqual([
      [`${p}_daily`, 10, 10, 10, 0, 10, 10],
      [`${p}_src`, 10, 20, 20, 0, 20, 20],
      [`${p}_weekly`, 2, 2, 2, 0, 2, 2],
    ]);
    expect(diff.json.nodes.find((n) => n.node === `${p}_src`)!.columns.find((c) => c.column === 'v')).toEqual({ column: 'v', before: { sum: 30, min: 1, max: 2 }, after: { sum: 60, min: 2, max: 4 } });

    // Past the command line: a signal named publish does nothing, and an update is validated where it arrives.
    const handle = client.client.workflow.getHandle(`backfill/${id}`);
    await handle.signal('publish', { by: 'mallory' });
    const refused = await handle.executeUpdate('publish', { args: [{ by: 'mallory', extra: 'x' }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refused as WorkflowUpdateFailedError).cause?.message).toMatch(/unknown field extra/);
    expect(await views(warehouse, p)).toEqual(before);
    expect((await client.progress(id)).state).toBe('staged');

    // A reader polling the views during publish sees the old totals or the new ones, never a mix.
    // One statement: one snapshot of both datasets.
    const totals = async () => {
      const [row] = await warehouse.query(`SELECT (SELECT SUM(v) FROM ${p}_src) AS src, (SELECT SUM(total) FROM ${p}_daily) AS daily`);
      return `${Number(row!.src)}/${Number(row!.daily)}`;
    };
    const seen = new Set<string>();
    let publishing = true;
    const reader = (async () => {
      while (publishing) {
        seen.add(await totals());
        // An inline SQLite warehouse answers in microtasks: let the command line's exit be heard.
        await new Promise((r) => setImmediate(r));
      }
    })();
    const published = await cli<{ versions: number; by: string; reason: string | null }>('publish', id, '--reason', 'diff reviewed');
    publishing = false;
    await reader;
    expect(published.code, published.stderr).toBe(0);
    expect(published.json).toMatchObject({ versions: 22, reason: 'diff reviewed' });
    expect([...seen].filter((t) => t !== '30/30' && t !== '60/60'), `totals seen: ${[...seen].join(', ')}`).toEqual([]);
    expect(await totals()).toBe('60/60');
    expect((await client.wait(id, 60_000)).state).toBe('completed');

    // Published, it is an ordinary backfill: publishing again is refused, and a direct run of the same spec changes nothing.
    const again = await cli<{ error: { code: string } }>('publish', id);
    expect(again.json.error.code).toBe('not_running');
    const after = await views(warehouse, p);
    await direct(p, 2);
    expect(await views(warehouse, p)).toEqual(after);
    expect((await warehouse.ledger({ backfillId: id })).every((r) => r.status === 'published' && r.staged === true)).toBe(true);
  });

  it('discard drops the staged versions and publishes nothing; the backfill ends discarded', async () => {
    const p = `d_${kind}`;
    await direct(p, 1);
    const before = await views(warehouse, p);
    const id = await staged(p, 3);
    const early = await cli<{ error: { code: string } }>('publish', `${p}-nobody`);
    expect(early.json.error.code).toBe('not_found');
    const discarded = await cli<{ versions: number }>('discard', id, '--reason', 'wrong factor');
    expect(discarded.code, discarded.stderr).toBe(0);
    expect(discarded.json.versions).toBe(22);
    expect((await client.wait(id, 60_000)).state).toBe('discarded');
    expect(await views(warehouse, p)).toEqual(before);
    expect(new Set((await warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['discarded']));
    // The datasets are free again: a direct run publishes.
    await direct(p, 3);
    expect(await views(warehouse, p)).not.toEqual(before);
  });

  it('a backfill that was not staged refuses diff with a clear error', async () => {
    const p = `n_${kind}`;
    const id = await direct(p, 1);
    const diff = await cli<{ error: { code: string; message: string } }>('diff', id);
    expect(diff.code).not.toBe(0);
    expect(diff.json.error).toMatchObject({ code: 'not_staged' });
    expect(diff.json.error.message).toMatch(/was not started with --stage/);
  });
});
