/**
 * `backfill rollback` when no worker runs it: it says once, on stderr, the workflow task queue the
 * rollback waits on and the worker to start, waits on (the rollback is durable), and prints its
 * summary once a worker has run it; `--json` stays one document on stdout.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { RollbackSummary } from '../../core/rollback.ts';
import { connectClient, endLeftRunning, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('rollback without a worker', () => {
  const queue = uniqueQueue('rollback-no-worker');
  let client: BackfillClient;
  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    // A failed test may leave the rollback queued with no worker to run it.
    if (client) await endLeftRunning(client, [queue]);
    await client?.close();
  });

  it("says where it waits and the worker to start once its backfill's worker has stopped, then prints its summary once one runs it", async () => {
    const warehousePath = join(scratch('rollback-no-worker'), 'warehouse.db');
    let worker: TestWorker | undefined = await startTestWorker({ queue, warehousePath });
    try {
      const spec = testSpec(queue, {
        name: 'rollback-no-worker',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
        nodes: [{ id: 'unattended', sql: 'SELECT :partition AS day, 1 AS v' }],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
      // The server lists the stopped worker as a poller of the queue for minutes after this.
      await worker.stop();
      worker = undefined;

      let stderr = '';
      const rollback = runCli<RollbackSummary>(['rollback', backfillId, '--json'], {}, { timeoutMs: 150_000, onStderr: (text) => (stderr += text) });
      await waitFor('the rollback to say it waits for a worker', () => stderr.includes('waits for a worker'), 60_000);
      expect(stderr).toContain(`none takes it from its workflow task queue '${queue}'`);
      // Its node's activities run on the same queue, which a worker polls only when told (the default is 'backfill').
      expect(stderr).toContain(`'backfill worker --workflow-queue ${queue} --task-queue ${queue}'`);
      expect(stderr).toContain('the rollback starts as soon as one does');
      expect(stderr).toContain('Ctrl-C stops only this wait: the rollback stays queued');

      worker = await startTestWorker({ queue, warehousePath });
      const { code, json, stdout } = await rollback;
      expect(code, stderr).toBe(0);
      // The hint went to stderr: stdout is the summary, one JSON document.
      expect(json, stdout).toMatchObject({ backfillId, removed: 3, restored: 0, leftAlone: 0 });
      expect(stderr.match(/waits for a worker/g)).toHaveLength(1);

      // With a worker there, nothing is said: a second rollback finds everything done already.
      const again = await runCli<RollbackSummary>(['rollback', backfillId, '--json'], {}, { timeoutMs: 150_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(again.json).toMatchObject({ backfillId, removed: 0, alreadyRestored: 3 });
      expect(again.stderr).not.toContain('waits for a worker');
    } finally {
      await worker?.stop();
    }
  });
});
