/**
 * `status` connects without looking the namespace up first (one call less at start): what it
 * cannot find is still named right, the namespace when that is what is missing, else the
 * backfill. The command line as a user runs it, against the shared dev server.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

type ErrorJson = { error: { code: string; message: string } };

describe('status of something that is not there', () => {
  it('a namespace that does not exist is named, with how to create it', async () => {
    const missing = await runCli<ErrorJson>(['status', 'any-backfill', '--namespace', 'no-such-namespace', '--json']);
    expect(missing.code).not.toBe(0);
    expect(missing.json?.error.code).toBe('not_found');
    expect(missing.json?.error.message).toMatch(/namespace 'no-such-namespace' does not exist .*temporal operator namespace create/);
  });

  it('a backfill that does not exist in a namespace that does is named', async () => {
    const missing = await runCli<ErrorJson>(['status', 'no-such-backfill', '--json']);
    expect(missing.code).not.toBe(0);
    expect(missing.json?.error).toMatchObject({ code: 'not_found', message: expect.stringContaining("no backfill with id 'no-such-backfill' in namespace default") });
  });

  it("the workflow's id (backfill/<id>, as the Web UI shows it) is told apart from the backfill's", async () => {
    const prefixed = await runCli<ErrorJson>(['status', 'backfill/no-such-backfill', '--json']);
    expect(prefixed.code).toBe(1);
    expect(prefixed.json?.error.message).toMatch(/no backfill with id 'backfill\/no-such-backfill' .*: give the backfill's id, 'no-such-backfill', without the workflow id's 'backfill\/'$/);
  });
});

describe("an id that names one of a backfill's own workflows (a node's, copied from the Web UI)", () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('lookup');

  beforeAll(async () => {
    worker = await startTestWorker({ queue, warehousePath: join(scratch('lookup'), 'warehouse.db') });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('is refused, naming the backfill, while the node runs and once it has ended, where status, wait and report read it as a backfill', async () => {
    const id = `lookup-${Date.now()}`;
    const env = { BACKFILL_TASK_QUEUE: queue };
    // Two a second over a week of hours (84 s): the node workflow still runs when the test cancels it
    // after a command-line process, seconds long on a loaded machine (a day, 12 s, could end first,
    // and the backfill then ended completed, not cancelled). Cancelled, it costs nothing.
    await client.start(testSpec(queue, { name: 'lookup', partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-08' }, defaults: { rate: 2 }, nodes: [{ id: 'pages', transform: 'noop' }] }), { id, taskQueue: queue });
    await waitFor('the node workflow to run', async () => (await client.progress(id)).done > 0, 30_000);
    const refused = (result: { code: number; json?: ErrorJson }) => {
      expect(result.code).toBe(1);
      expect(result.json?.error).toEqual({ code: 'invalid_argument', path: 'id', message: `'${id}/pages' is not a backfill id: backfill/${id}/pages is one of the workflows of backfill '${id}' (a nodeWorkflow), not a backfill: use '${id}'` });
    };
    refused(await runCli<ErrorJson>(['status', `${id}/pages`, '--json'], env));
    await client.cancel(id);
    expect((await client.wait(id, 60_000)).state).toBe('cancelled');
    await waitFor('the node workflow to end', async () => (await client.client.workflow.getHandle(`backfill/${id}/pages`).describe()).status.name !== 'RUNNING', 30_000);
    for (const command of ['status', 'wait', 'audit']) refused(await runCli<ErrorJson>([command, `${id}/pages`, '--json'], env));
    refused(await runCli<ErrorJson>(['report', `${id}/pages`, '--output', join(scratch('lookup-report'), 'r.md'), '--warehouse', worker.warehouse.location, '--json'], env));
  });
});
