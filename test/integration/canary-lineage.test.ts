/**
 * The OpenLineage runs of a canary backfill's nodes end at its decision: a node whose every
 * partition is in the slice has only staged versions while the canary waits, so its run must
 * not say COMPLETE then; a discard ABORTs it, an approval lets it COMPLETE with what was
 * published. (Nodes that settle are looked at every 2 s at most: the slow node keeps the slice
 * running long enough for the others to be looked at while it runs.)
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { RunEvent } from '../../core/openlineage.ts';
import { readEvents } from '../lineage/example.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const queue = uniqueQueue('canary-lineage');
const dir = scratch('canary-lineage');
const file = join(dir, 'lineage.jsonl');
let worker: TestWorker;
let client: BackfillClient;

beforeAll(async () => {
  worker = await startTestWorker({
    queue,
    warehousePath: join(dir, 'warehouse.db'),
    lineage: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'file', path: file, append: true } },
  });
  client = await connectClient();
});

afterAll(async () => {
  await client?.close();
  await worker?.stop();
});

/** Three days and the one week they fall in: --canary 1 takes the week, which needs all three days. */
const spec = (name: string) =>
  testSpec(queue, {
    name,
    partitions: { grain: 'day', start: '2024-01-08', end: '2024-01-11' },
    defaults: { taskQueue: queue, concurrency: 4, retry: { initialInterval: '200ms', maximumInterval: '1s' } },
    nodes: [
      { id: `${name}_slow`, transform: 'sleep', params: { ms: 5000 } },
      { id: `${name}_src`, sql: 'SELECT :partition AS day, 1 AS v' },
      { id: `${name}_weekly`, partitions: { grain: 'week' }, dependsOn: [`${name}_src`], sql: 'SELECT :partition AS week, SUM(v) AS total FROM ' + `${name}_src` },
    ],
  });

/** The end events of one backfill's runs: `COMPLETE <job> rows=<rowCount of each output>`. */
function ends(backfill: string): string[] {
  const rows = (e: RunEvent) => e.outputs.map((o) => (o.outputFacets.outputStatistics as { rowCount?: number } | undefined)?.rowCount).join(',');
  return readEvents(file)
    .filter((e) => e.eventType !== 'START' && e.job.name.startsWith(backfill))
    .map((e) => `${e.eventType} ${e.job.name} rows=${rows(e)}`)
    .sort();
}

describe('lineage of a canary backfill', () => {
  it('a discarded canary ends every run ABORT: no node run said COMPLETE while its versions were only staged', async () => {
    const { backfillId } = await client.start(spec('cl_discard'), { id: `cl-discard-${randomUUID().slice(0, 6)}`, taskQueue: queue, canary: 1, tuning: { reportIntervalMs: 200 } });
    await waitFor('the canary to wait', async () => (await client.progress(backfillId)).state === 'awaiting_canary', 120_000, 200);
    await client.decideStaged(backfillId, 'discard', 'wrong numbers');
    expect((await client.wait(backfillId, 60_000)).state).toBe('discarded');
    expect(ends('cl_discard')).toEqual([
      'ABORT cl_discard rows=0,0,0',
      'ABORT cl_discard.cl_discard_slow rows=0',
      'ABORT cl_discard.cl_discard_src rows=0',
      'ABORT cl_discard.cl_discard_weekly rows=0',
    ]);
  });

  it('an approved canary completes its node runs after the approval, with the rows it published', async () => {
    const { backfillId } = await client.start(spec('cl_approve'), { id: `cl-approve-${randomUUID().slice(0, 6)}`, taskQueue: queue, canary: 1, tuning: { reportIntervalMs: 200 } });
    await waitFor('the canary to wait', async () => (await client.progress(backfillId)).state === 'awaiting_canary', 120_000, 200);
    expect(ends('cl_approve')).toEqual([]);
    await client.approveCanary(backfillId, 'numbers look right');
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    expect(ends('cl_approve')).toEqual([
      'COMPLETE cl_approve rows=0,3,1',
      'COMPLETE cl_approve.cl_approve_slow rows=0',
      'COMPLETE cl_approve.cl_approve_src rows=3',
      'COMPLETE cl_approve.cl_approve_weekly rows=1',
    ]);
  });
});
