/**
 * `status` of a running backfill whose workflow does not answer: busy while a worker polls its
 * workflow task queue (another worker would not help), without a worker when none does.
 */
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollersOf } from '../../client/pollers.ts';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { address, connectClient, runCli, testSpec, uniqueQueue, waitFor } from './helpers.ts';

type ErrorJson = { error?: { code: string; message: string } };

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
    const polls = (async () => {
      while (polling) {
        // A long poll needs a deadline; one that fails (the connection closed at the end) is not hurried into again.
        await silent
          .withDeadline(Date.now() + 30_000, () => silent.workflowService.pollWorkflowTaskQueue({ namespace: client.namespace, taskQueue: { name: queue }, identity: 'silent-poller' }))
          .catch(() => new Promise((r) => setTimeout(r, 200)));
      }
    })();
    try {
      await waitFor('the poller to be listed', async () => (await pollersOf(silent, client.namespace, queue, 'workflow')).length > 0, 30_000);
      for (const args of [['status', backfillId, '--json'], ['status', backfillId]]) {
        const { code, json, stdout, stderr } = await runCli<ErrorJson>(args);
        expect(code, stderr).toBe(1);
        const said = args.includes('--json') ? json?.error?.message : stderr;
        if (args.includes('--json')) expect(json?.error?.code, stdout).toBe('timeout');
        expect(said).toMatch(new RegExp(`backfill '${backfillId}' is running but its workflow is busy \\((no answer within 15s|the server refused a query: .*query buffer is full.*)\\): a worker polled its workflow task queue '${queue}' within the last minute, so no worker is missing`));
        expect(said).not.toContain('start one');
      }
    } finally {
      polling = false;
      await silent.close();
      await polls;
    }
  }, 120_000);
});
