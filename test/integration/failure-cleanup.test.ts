/**
 * Every way a backfill's workflow fails cleans up what it started (patch every-failure-cleaned):
 * its node workflows stop, its lineage runs end (once), its datasets' leases are released.
 * Here the release of the leases at the end fails once (an activity failure, not an
 * ApplicationFailure the workflow throws itself): the backfill fails, and its cleanup releases
 * them again, so the next backfill of the dataset starts and a resume of the failed one ends.
 * Its lineage run ends FAIL, never COMPLETE: the leases are released before the run ends
 * (patch lineage-ends-after-release), while its node's run, whose partitions all published,
 * completed.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/activity';
import type { WorkflowFailedError } from '@temporalio/client';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { backfillWorkflowId, nodeWorkflowId } from '../../workflows/definitions.ts';
import { eventsOf, readEvents } from '../lineage/example.ts';
import { connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const queue = uniqueQueue('failure-cleanup');
const dir = scratch('failure-cleanup');
const file = join(dir, 'lineage.jsonl');
/** Backfills whose next release of their leases fails (once). */
const releaseFails = new Set<string>();
let worker: TestWorker;
let client: BackfillClient;

beforeAll(async () => {
  worker = await startTestWorker({
    queue,
    warehousePath: join(dir, 'warehouse.db'),
    transforms: { quick: ({ partition }) => [{ partition, v: 1 }] },
    lineage: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'file', path: file, append: true } },
  });
  const release = worker.warehouse.releaseDatasets;
  worker.warehouse.releaseDatasets = async (run) => {
    if (releaseFails.delete(run.backfillId)) throw ApplicationFailure.nonRetryable('the lease store cannot be reached', 'LeaseStoreDown');
    return release(run);
  };
  client = await connectClient();
});

afterAll(async () => {
  await client?.close();
  await worker?.stop();
});

/** `<eventType> <job>` of every event of the jobs named `<name>` and `<name>.*`, in the order they were written. */
const events = (name: string): string[] => eventsOf(file, name);

describe('a backfill whose release of its leases fails at its end', () => {
  it('releases its leases, ends its lineage runs once and stops its node workflows; the next backfill and a resume run', async () => {
    const suffix = randomUUID().slice(0, 6);
    const name = `fc_${suffix}`;
    const dataset = `fc_data_${suffix}`;
    const backfillId = `fc-${suffix}`;
    const range = { grain: 'day' as const, start: '2024-01-01', end: '2024-01-03' };
    releaseFails.add(backfillId);
    await client.start(testSpec(queue, { name, partitions: range, nodes: [{ id: dataset, transform: 'quick' }] }), { id: backfillId, taskQueue: queue });
    expect((await client.wait(backfillId, 60_000)).state).toBe('failed');
    const failure = await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).result().then(() => null, (error: unknown) => error as WorkflowFailedError);
    expect((failure?.cause?.cause as Error | undefined)?.message).toBe('the lease store cannot be reached');
    expect(releaseFails.has(backfillId)).toBe(false);

    // Its node workflow has closed; each lineage run has one START and one end: the backfill's FAIL, with why.
    expect((await client.client.workflow.getHandle(nodeWorkflowId(backfillId, dataset)).describe()).status.name).not.toBe('RUNNING');
    expect(events(name).sort()).toEqual([`COMPLETE ${name}.${dataset}`, `FAIL ${name}`, `START ${name}`, `START ${name}.${dataset}`]);
    const end = readEvents(file).find((e) => e.job.name === name && e.eventType === 'FAIL');
    expect(end?.run.facets?.errorMessage?.message).toMatch(/the lease store cannot be reached/);

    // The leases were released by the cleanup: another backfill of the dataset starts and finishes.
    const next = `fc-next-${suffix}`;
    await client.start(testSpec(queue, { name: `${name}_next`, partitions: range, nodes: [{ id: dataset, transform: 'quick' }] }), { id: next, taskQueue: queue });
    expect((await client.wait(next, 60_000)).state).toBe('completed');

    // And the failed backfill resumes: a new run that finds everything published.
    const resumed = await client.resume(backfillId);
    expect(resumed.resumed).not.toBeNull();
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
  });

  it('a discarded staged backfill whose release fails: its node runs end as discarded (ABORT), its own run FAIL', async () => {
    const suffix = randomUUID().slice(0, 6);
    const name = `fcs_${suffix}`;
    const dataset = `fcs_data_${suffix}`;
    const backfillId = `fcs-${suffix}`;
    releaseFails.add(backfillId);
    await client.start(testSpec(queue, { name, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: dataset, transform: 'quick' }] }), {
      id: backfillId,
      taskQueue: queue,
      stage: true,
    });
    await waitFor('every partition to be staged', async () => (await client.progress(backfillId)).state === 'staged');
    await client.decideStaged(backfillId, 'discard');
    expect((await client.wait(backfillId, 60_000)).state).toBe('failed');
    expect(releaseFails.has(backfillId)).toBe(false);
    expect(events(name).sort()).toEqual([`ABORT ${name}.${dataset}`, `FAIL ${name}`, `START ${name}`, `START ${name}.${dataset}`]);
    const why = (job: string) => readEvents(file).find((e) => e.job.name === job && e.eventType !== 'START')?.run.facets?.errorMessage?.message;
    expect(why(`${name}.${dataset}`)).toMatch(/^discarded: /);
    expect(why(name)).toMatch(/the lease store cannot be reached/);
  });
});
