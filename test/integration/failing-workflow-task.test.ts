/**
 * A running backfill whose workflow task keeps failing while a worker polls its queue: `status`
 * (the command line, on the light path, and the SDK's client) says so, with the failure the
 * run's history keeps, rather than "no worker answered" or the query's raw error.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { installRuntime } from '../../client/local.ts';
import { BACKFILL_WORKFLOW_TYPE, backfillWorkflowId } from '../../core/workflow-ids.ts';
import { address, connectClient, refusal, runCli, uniqueQueue, waitFor } from './helpers.ts';

type ErrorJson = { error: { code: string; message: string } };

const queue = uniqueQueue('failing-task');
let workerConnection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let connection: Connection;
let client: Client;
let backfills: BackfillClient;

beforeAll(async () => {
  process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
  installRuntime();
  workerConnection = await NativeConnection.connect({ address: address() });
  worker = await Worker.create({
    connection: workerConnection,
    taskQueue: queue,
    workflowsPath: fileURLToPath(new URL('./fixtures/failing-workflow.ts', import.meta.url)),
  });
  running = worker.run();
  connection = await Connection.connect({ address: address() });
  client = new Client({ connection });
  backfills = await connectClient();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await workerConnection?.close();
  await backfills?.close();
  await connection?.close();
});

describe('status of a backfill whose workflow task keeps failing', () => {
  it('says the workers poll but cannot run its code, how many times it failed, and why', async () => {
    const backfillId = uniqueQueue('failing');
    const handle = await client.workflow.start(BACKFILL_WORKFLOW_TYPE, { taskQueue: queue, workflowId: backfillWorkflowId(backfillId), args: [] });
    try {
      await waitFor('its workflow task failed at least once in a row', async () => ((await handle.describe()).raw.pendingWorkflowTask?.attempt ?? 0) >= 2);

      // The command line takes the light path (plain gRPC, no API key).
      const cli = await runCli<ErrorJson>(['status', backfillId, '--json']);
      expect(cli.code).toBe(1);
      expect(cli.json?.error.code).toBe('workflow_task_failing');
      expect(cli.json?.error.message).toMatch(
        new RegExp(`^backfill '${backfillId}' is running but its workflow task has failed \\d+ times? in a row \\(since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\): the workers poll but cannot run its code, so it makes no progress\\. `),
      );
      expect(cli.json?.error.message).toContain("Its workflow code fails: a bug in workflow code. Read the workers' log for the stack");

      // The SDK's client (TLS or an API key) says the same.
      const sdk = await refusal(backfills.status(backfillId));
      expect(sdk).toMatchObject({ code: 'workflow_task_failing', message: expect.stringContaining('Its workflow code fails: a bug in workflow code.') });
    } finally {
      await handle.terminate('failing-workflow-task.test: done');
    }
  });
});
