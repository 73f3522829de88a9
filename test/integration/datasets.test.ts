/**
 * One writer per dataset: start refuses a backfill whose datasets a running backfill writes,
 * or waits for them. The suite turns the check off (BACKFILL_SHARED_DATASETS, vitest.config.ts):
 * here it is asked for.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { DatasetWriter } from '../../client/dataset-writers.ts';
import { BackfillError } from '../../core/errors.ts';
import { leftRunning, waitHint } from '../../core/busy-datasets.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('one writer per dataset', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  let dir: string;
  const queue = uniqueQueue('datasets');

  beforeAll(async () => {
    dir = scratch('datasets');
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db') });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  // A week of hours: at 2 a second, 84 s, so that each slow backfill still runs when the test
  // cancels it, however loaded the machine (two days, 24 s, could be used up by the steps before).
  const hours = { grain: 'hour' as const, start: '2024-01-01', end: '2024-01-08' };
  /** A slow backfill writing `nodes` (two partitions a second); every test cancels or ends it. */
  const slow = (name: string, nodes: string[], taskQueue = queue) =>
    testSpec(taskQueue, { name, partitions: hours, defaults: { rate: 2 }, nodes: nodes.map((id) => ({ id, transform: 'noop' })) });
  /**
   * Waits until `id` is seen writing `node`, and has done some work: a cancel that reaches a
   * parent before its node workflows have started is lost (a bug of the parent, reported).
   */
  const visible = async (id: string, node: string) => {
    await waitFor(`${id} writing ${node} to be visible`, async () => (await client.datasetWriters(`other-${id}`, [node])).some((w) => w.backfillId === id), 30_000);
    await waitFor(`${id} to have done a partition`, async () => (await client.progress(id)).done > 0, 30_000);
  };

  it('refuses a backfill that would write a dataset a running backfill writes, naming both', async () => {
    const first = `ds-first-${Date.now()}`;
    await client.start(slow('first', ['events', 'sessions']), { id: first, taskQueue: queue });
    await visible(first, 'sessions');

    const second = `ds-second-${Date.now()}`;
    const refused = await client.start(slow('second', ['sessions', 'users']), { id: second, taskQueue: queue, sharedDatasets: false }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BackfillError);
    expect((refused as BackfillError).code).toBe('dataset_busy');
    expect((refused as BackfillError).message).toMatch(new RegExp(`sessions by backfill '${first}'.*--wait-for-datasets`));
    await expect(client.describe(second)).rejects.toThrow(/no backfill/);

    // Other datasets are free to start; its own id (a rerun) does not count as another writer.
    const disjoint = `ds-disjoint-${Date.now()}`;
    await client.start(slow('disjoint', ['users']), { id: disjoint, taskQueue: queue, sharedDatasets: false });
    await visible(disjoint, 'users');
    expect(await client.datasetWriters(first, ['events', 'sessions'])).toEqual([]);

    // Where one node id names datasets of several warehouses, the client's check is off (as in this
    // suite); the warehouse still leases its datasets, so a second writer of the same warehouse
    // fails at its start, naming the holder, and writes nothing.
    expect(process.env.BACKFILL_SHARED_DATASETS).toBe('1');
    const shared = `ds-shared-${Date.now()}`;
    await client.start(slow('shared', ['sessions']), { id: shared, taskQueue: queue });
    expect((await client.wait(shared, 60_000)).state).toBe('failed');
    const failure = await client.client.workflow.getHandle(backfillWorkflowId(shared)).result().catch((e: unknown) => e);
    const busy = String((failure as { cause?: unknown }).cause);
    expect(busy).toContain(`sessions by backfill '${first}'`);
    // Its advice to wait says when a wait of a staged backfill or a canary ends.
    expect(busy).toContain(waitHint(first));
    // And what frees the datasets of one that was terminated, which neither a wait nor a cancel does.
    expect(busy).toContain(`If '${first}' has ended, ${leftRunning(first)}`);
    expect((await client.progress(shared)).done).toBe(0);

    for (const id of [first, disjoint]) await client.cancel(id);
    for (const id of [first, disjoint]) expect((await client.wait(id, 60_000)).state).toBe('cancelled');
  });

  it('sees a backfill whose node workflows have not started yet, from its input', async () => {
    // No worker polls this queue: the parent runs (for Temporal) but has started no node workflow.
    const idle = uniqueQueue('idle');
    const first = `ds-idle-${Date.now()}`;
    // A dataset no other test file writes: the files share one server, and datasetWriters lists every running backfill.
    await client.start(slow('idle', ['idle_orders']), { id: first, taskQueue: idle });
    try {
      const writers = await waitFor('the idle parent to be visible', async () => {
        const found = await client.datasetWriters('someone-else', ['idle_orders', 'other']);
        return found.length > 0 ? found : undefined;
      }, 30_000);
      expect(writers).toEqual([{ backfillId: first, datasets: ['idle_orders'] }]);
    } finally {
      await client.client.workflow.getHandle(backfillWorkflowId(first)).terminate('test over');
    }
  });

  it('names a terminated backfill, whose node workflows and leases stay, with the way to end it: its wait and its cancel would not', async () => {
    const first = `ds-terminated-${Date.now()}`;
    await client.start(slow('terminated', ['pages']), { id: first, taskQueue: queue });
    await visible(first, 'pages');
    // Paused first: its node workflow, idle, notices that its parent is gone only minutes later (a busy one, at its next report).
    await client.pause(first);
    await waitFor(`${first}'s running partitions to finish`, async () => (await client.progress(first)).running === 0, 30_000);
    await client.client.workflow.getHandle(backfillWorkflowId(first)).terminate('by hand, in the Web UI');
    expect(await client.datasetWriters('someone-else', ['pages'])).toEqual([{ backfillId: first, datasets: ['pages'], ended: 'terminated' }]);

    const second = `ds-after-terminated-${Date.now()}`;
    const refused = await client.start(slow('after', ['pages']), { id: second, taskQueue: queue, sharedDatasets: false }).catch((e: unknown) => e);
    expect((refused as BackfillError).code).toBe('dataset_busy');
    const message = (refused as BackfillError).message;
    expect(message).toContain(`pages by backfill '${first}' (it ended terminated)`);
    expect(message).toContain(`'backfill resume ${first}' then 'backfill cancel ${first}' end it and free them`);
    expect(message).not.toContain(`'backfill wait ${first}'`);
    // Nor does waiting for it end: --wait-for-datasets says so at once, rather than wait for ever.
    const waited = await client.start(slow('after', ['pages']), { id: second, taskQueue: queue, sharedDatasets: false, waitForDatasets: { pollMs: 200, timeoutMs: 5000 } }).catch((e: unknown) => e);
    expect(waited).toMatchObject({ code: 'dataset_busy', message });
    const cancel = await client.cancel(first).catch((e: unknown) => e);
    expect((cancel as BackfillError).code).toBe('not_running');
    expect((cancel as BackfillError).message).toMatch(new RegExp(`it ended terminated\\); a termination \\(or a workflow timeout\\) skips its cleanup, so its datasets stay leased in its warehouse.*'backfill resume ${first}' then 'backfill cancel ${first}'`));

    // The way it names frees them: the warehouse's lease too (else the next start fails at its own start).
    const before = (await client.progress(first)).done;
    await client.resume(first);
    // The new run goes on paused, as the terminated one was.
    await client.resume(first);
    await waitFor(`the resumed ${first} to run its node workflow`, async () => (await client.progress(first)).done > before, 30_000);
    await client.cancel(first);
    expect((await client.wait(first, 60_000)).state).toBe('cancelled');
    await client.start(slow('after', ['pages']), { id: second, taskQueue: queue, sharedDatasets: false });
    await visible(second, 'pages');
    await client.cancel(second);
    expect((await client.wait(second, 60_000)).state).toBe('cancelled');
  });

  it('--wait-for-datasets waits, telling on stderr what it waits for, and starts once they are free', async () => {
    const first = `ds-busy-${Date.now()}`;
    await client.start(slow('busy', ['clicks']), { id: first, taskQueue: queue });
    await visible(first, 'clicks');

    const spec = join(dir, 'waiting.yaml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(spec, `name: waiting\npartitions: { grain: hour, start: 2024-01-01, end: 2024-01-02 }\ndefaults: { taskQueue: ${queue} }\nnodes:\n  - { id: clicks, transform: noop }\n`);
    const second = `ds-waiting-${Date.now()}`;
    const refused = await runCli<{ error: { code: string; message: string } }>(['start', spec, '--id', second, '--json'], { BACKFILL_TASK_QUEUE: queue, BACKFILL_SHARED_DATASETS: '0' });
    expect(refused.code).toBe(1);
    expect(refused.json!.error.code).toBe('dataset_busy');
    expect(refused.json!.error.message).toContain(`clicks by backfill '${first}'`);

    // The library's wait reports who holds the datasets, each time it looks, and starts once they are free.
    const seen: DatasetWriter[][] = [];
    const third = `ds-third-${Date.now()}`;
    const alsoWaiting = client.start(slow('third', ['clicks']), { id: third, taskQueue: queue, sharedDatasets: false, waitForDatasets: { pollMs: 200, onWait: (w) => void seen.push(w) } });
    await waitFor('the library to report the busy dataset', () => seen.length >= 2);
    expect(seen[0]).toEqual([{ backfillId: first, datasets: ['clicks'] }]);
    await client.cancel(first);
    await alsoWaiting;
    await visible(third, 'clicks');

    // The command line waits for the third one in turn, telling on stderr what it waits for.
    let stderr = '';
    const waiting = runCli<{ backfillId: string }>(['start', spec, '--id', second, '--wait-for-datasets', '2m', '--json'], { BACKFILL_TASK_QUEUE: queue, BACKFILL_SHARED_DATASETS: '0' }, { onStderr: (text) => (stderr += text) });
    await waitFor('the command line to say it waits', () => stderr.includes('waiting for datasets to be free'));
    expect(stderr).toMatch(new RegExp(`waiting for datasets to be free:\\n  clicks: written by ${third} \\(\\d+/168 done\\)`));
    await client.cancel(third);
    const started = await waiting;
    expect(started.code, started.stderr).toBe(0);
    expect(started.json!.backfillId).toBe(second);
    expect((await client.wait(second, 60_000)).state).toBe('completed');
    expect((await client.wait(third, 60_000)).state).toBe('cancelled');
  });
});
