/**
 * `status` of a running backfill whose workflow does not answer: busy while a worker polls its
 * workflow task queue (another worker would not help), without a worker when none does: then
 * what the server keeps, the partitions each node had done and failed among it.
 */
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import type { LastKnown } from '../../client/last-known.ts';
import { address, connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor } from './helpers.ts';

type ErrorJson = { error?: { code: string; message: string }; lastKnown?: LastKnown };

describe('status of a backfill whose workflow does not answer', () => {
  let client: BackfillClient;
  const ids: string[] = [];
  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    for (const id of ids) await client.client.workflow.getHandle(backfillWorkflowId(id)).terminate('test over').catch(() => undefined);
    await client?.close();
  });

  it('says its workflow is busy, not that a worker is missing, while a worker polls its queue but does not answer', async () => {
    const queue = uniqueQueue('status-busy');
    const { backfillId } = await client.start(testSpec(queue, { name: 'status-busy', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' }, nodes: [{ id: 'held', transform: 'noop' }] }), { taskQueue: queue });
    ids.push(backfillId);
    // A poller that takes the workflow's tasks and never completes one: its queries wait, as a busy
    // workflow's do, until the server refuses more ("consistent query buffer is full", as the user saw).
    const silent = await Connection.connect({ address: address() });
    let polling = true;
    // Ends the poll in flight at the end: closing the connection under it left the SDK's retry of
    // the call to a closed channel, and the loop, with it, waiting for ever (a timed-out test).
    const stop = new AbortController();
    const polls = (async () => {
      while (polling) {
        // A long poll needs a deadline; one that fails is not hurried into again.
        await silent
          .withAbortSignal(stop.signal, () =>
            silent.withDeadline(Date.now() + 30_000, () => silent.workflowService.pollWorkflowTaskQueue({ namespace: client.namespace, taskQueue: { name: queue }, identity: 'silent-poller' })),
          )
          .catch(() => new Promise((r) => setTimeout(r, 200)));
      }
    })();
    try {
      // Asked while the poller holds the workflow's first task (its timeout, 10 s, would make it a failing task).
      await waitFor('the poller to take its workflow task', async () => (await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).describe()).raw.pendingWorkflowTask?.state === 2, 30_000);
      const runs = await Promise.all([runCli<ErrorJson>(['status', backfillId, '--json']), runCli<ErrorJson>(['status', backfillId])]);
      for (const [i, { code, json, stdout, stderr }] of runs.entries()) {
        expect(code, stderr).toBe(1);
        const said = i === 0 ? json?.error?.message : stderr;
        if (i === 0) expect(json?.error?.code, stdout).toBe('timeout');
        expect(said).toMatch(new RegExp(`backfill '${backfillId}' is running but its workflow is busy \\((no answer within 15s, while a worker polled its queue|the server refused a query: .*query buffer is full.*)\\): workers poll its workflow task queue '${queue}', so no worker is missing`));
        expect(said).not.toContain('start one');
      }
    } finally {
      polling = false;
      stop.abort();
      await polls;
      await silent.close();
    }
  }, 120_000);

  it('shows what is last known of a backfill whose only worker stopped, marked as such, with the worker to start, and exits 1', async () => {
    const queue = uniqueQueue('status-gone');
    // Its partitions wait on a queue nobody polls: it runs until the test ends it.
    const spec = testSpec(queue, { name: 'status-gone', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'parked', transform: 'noop', taskQueue: `${queue}-nowhere` }] });
    const worker = await startTestWorker({ queue, warehousePath: `${scratch('status-gone')}/warehouse.db` });
    let stopped = false;
    try {
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      ids.push(backfillId);
      await waitFor('its node to wait for a worker', async () => (await client.status(backfillId)).waiting.length > 0);
      await worker.stop();
      stopped = true;
      // The server lists the stopped worker as a poller for minutes: its queries wait out their deadline.
      const json = await runCli<ErrorJson>(['status', backfillId, '--json']);
      expect(json.code, json.stderr).toBe(1);
      expect(json.json?.error?.code, json.stdout).toMatch(/^(timeout|no_worker)$/);
      expect(json.json?.error?.message).toContain(`start one with 'backfill worker --workflow-queue ${queue} --transforms`);
      expect(json.json?.error?.message).not.toContain('busy');
      expect(json.json?.lastKnown).toMatchObject({
        backfillId,
        state: 'running',
        workflowTaskQueue: queue,
        asOf: expect.stringMatching(/^\d{4}-/),
        // Its node workflow starts once its datasets are taken, on the queue nobody polls.
        nodes: [{ id: 'parked', taskQueue: `${queue}-nowhere`, partitions: 2, done: 0, failed: 0, workflow: expect.stringMatching(/^(running|not_started)$/), batchesInFlight: expect.any(Number) }],
      });

      const text = await runCli(['status', backfillId]);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(new RegExp(`^${backfillId} last known: running, started .* ago\\); its history last moved at .* ago\\)\n  \\(no worker answers`));
      expect(text.stdout).toMatch(new RegExp(`\\n  parked: 0 of 2 partitions done, on task queue ${queue}-nowhere; its workflow (running|not started)`));
      expect(text.stderr).toMatch(/^error: backfill '.*' is running but no worker (answered within 15s|polls its workflow task queue)/);
    } finally {
      if (!stopped) await worker.stop();
    }
  }, 150_000);

  it("shows each node's partitions done and failed as its last progress did, across a continue-as-new of the backfill", async () => {
    const queue = uniqueQueue('last-known');
    const spec = testSpec(queue, {
      name: 'last-known',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-31' },
      defaults: { batchSize: 1 },
      nodes: [
        { id: 'daily', transform: 'sleep', params: { failKeys: ['2024-01-03', '2024-01-17'], permanent: true } },
        // Waits on a queue nobody polls: the backfill runs until the test ends it.
        { id: 'parked', transform: 'noop', taskQueue: `${queue}-nowhere` },
      ],
    });
    const worker = await startTestWorker({ queue, warehousePath: `${scratch('last-known')}/warehouse.db` });
    let stopped = false;
    try {
      // A small history limit: the backfill's workflow continues as new while daily's reports come in, so its carry counts too.
      const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { historyLimit: 60, reportIntervalMs: 100 } });
      ids.push(backfillId);
      const seen = await waitFor('daily to settle', async () => {
        const progress = await client.progress(backfillId);
        const daily = progress.nodes.find((n) => n.id === 'daily');
        return daily && daily.done + daily.failed === 30 ? progress : undefined;
      });
      const runs = await waitFor('a continue-as-new of the backfill', async () => {
        let count = 0;
        for await (const _ of client.client.workflow.list({ query: `WorkflowId = "${backfillWorkflowId(backfillId)}"` })) count++;
        return count >= 2 ? count : undefined;
      });
      expect(runs).toBeGreaterThanOrEqual(2);
      await worker.stop();
      stopped = true;

      const { code, json, stdout, stderr } = await runCli<ErrorJson>(['status', backfillId, '--json']);
      expect(code, stderr).toBe(1);
      const nodes = Object.fromEntries((json?.lastKnown?.nodes ?? []).map((n) => [n.id, n]));
      const daily = seen.nodes.find((n) => n.id === 'daily')!;
      expect(daily).toMatchObject({ done: 28, failed: 2 });
      expect(nodes.daily, stdout).toMatchObject({ partitions: 30, done: 28, failed: 2 });
      expect(nodes.parked, stdout).toMatchObject({ partitions: 30, done: 0, failed: 0 });

      const text = await runCli(['status', backfillId]);
      expect(text.code).toBe(1);
      expect(text.stdout).toContain('  daily: 28 of 30 partitions done, 2 failed, on task queue');
      expect(text.stdout).toContain('  parked: 0 of 30 partitions done, on task queue');
    } finally {
      if (!stopped) await worker.stop();
    }
  }, 180_000);
});
