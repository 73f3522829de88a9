/** No silent stalls: `status` names the task queue that work waits on when no worker polls it. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient, Status } from '../../client/backfill-client.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { ROOT, address, connectClient, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

const run = promisify(execFile);
const BIN = join(ROOT, 'bin/backfill.js');

async function status(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', [BIN, 'status', ...args], { env: { ...process.env, TEMPORAL_ADDRESS: address(), NO_COLOR: '1' }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('work waiting for a worker nobody runs', () => {
  let client: BackfillClient;
  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
  });

  it('status names the node and the task queue no worker polls, and stops once a worker polls it', async () => {
    const queue = uniqueQueue('served');
    const lonely = uniqueQueue('lonely');
    const warehousePath = join(scratch('waiting'), 'warehouse.db');
    let worker: TestWorker | undefined = await startTestWorker({ queue, warehousePath });
    try {
      const spec = testSpec(queue, {
        name: 'waiting',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-06' },
        nodes: [
          { id: 'served', transform: 'noop' },
          { id: 'stranded', transform: 'noop', taskQueue: lonely },
        ],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      const stalled = await waitFor('node served done, node stranded waiting', async () => {
        const current = await client.status(backfillId);
        const served = current.nodes.find((n) => n.id === 'served');
        return served?.done === 5 && current.waiting.length > 0 ? current : undefined;
      });
      expect(stalled.waiting).toEqual([{ node: 'stranded', taskQueue: lonely, reason: 'no_worker', lastPollAt: null }]);

      const json = await status([backfillId, '--json']);
      expect(json.code).toBe(0);
      expect((JSON.parse(json.stdout) as Status).waiting).toEqual(stalled.waiting);
      const human = await status([backfillId]);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(`stranded: 5 partitions wait on task queue '${lonely}', and no worker polls it`);
      expect(human.stdout).toContain(`backfill worker --no-workflows --task-queue ${lonely}`);

      // A worker for the lonely queue: the work runs, and status has nothing more to say.
      await worker.stop();
      worker = undefined;
      worker = await startTestWorker({ queue, warehousePath, extraQueues: [{ name: lonely }] });
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
      expect((await client.status(backfillId)).waiting).toEqual([]);
    } finally {
      await worker?.stop();
    }
  });

  it('status fails at once, naming the workflow task queue, when no worker polls it', async () => {
    const queue = uniqueQueue('unpolled');
    const spec = testSpec(queue, { name: 'unpolled', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop' }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    try {
      const began = Date.now();
      await expect(client.status(backfillId)).rejects.toMatchObject({ code: 'no_worker', message: expect.stringContaining(`workflow task queue '${queue}'`) });
      // Well before the progress query's own 15 s timeout.
      expect(Date.now() - began).toBeLessThan(10_000);
      const json = await status([backfillId, '--json']);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'no_worker', message: expect.stringContaining(`backfill worker --workflow-queue ${queue}`) } });
    } finally {
      await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).terminate('test over');
    }
  });
});
