/** No silent stalls: `status` names the task queue that work waits on when no worker polls it. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient, Status } from '../../client/backfill-client.ts';
import { backfillWorkflowId } from '../../workflows/definitions.ts';
import { ROOT, address, connectClient, endLeftRunning, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

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
          // In batches of two: three activities, scheduled and never started.
          { id: 'stranded', transform: 'noop', taskQueue: lonely, batchSize: 2 },
        ],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      const stalled = await waitFor('node served done, node stranded waiting with its batches in flight', async () => {
        const current = await client.status(backfillId);
        const served = current.nodes.find((n) => n.id === 'served');
        const stranded = current.nodes.find((n) => n.id === 'stranded');
        return served?.done === 5 && current.waiting.length > 0 && stranded?.pending === 0 ? current : undefined;
      });
      expect(stalled.waiting).toEqual([{ node: 'stranded', taskQueue: lonely, reason: 'no_worker', lastPollAt: null }]);
      // No worker started them: its partitions are queued, not running (the node workflow counts them in flight).
      const queuedNodes = (s: Status) => s.nodes.map((n) => [n.id, n.running, n.queued, n.pending]);
      expect(queuedNodes(stalled)).toEqual([
        ['served', 0, 0, 0],
        ['stranded', 0, 5, 0],
      ]);
      expect([stalled.running, stalled.queued]).toEqual([0, 5]);

      const json = await status([backfillId, '--json']);
      expect(json.code).toBe(0);
      const shown = JSON.parse(json.stdout) as Status;
      expect(shown.waiting).toEqual(stalled.waiting);
      expect(queuedNodes(shown)).toEqual(queuedNodes(stalled));
      expect(shown.queued).toBe(5);
      const human = await status([backfillId]);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/│ stranded\s+│ 0\/5\s+│ 0 \(5 queued\)\s+│/);
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

  // Before, a node on a mistyped queue was told of only once someone asked status.
  it('start notes a node queue no worker polls, naming the polled queue its name is near', async () => {
    const queue = uniqueQueue('noted');
    const typo = queue.replace(/^noted/, 'ntoed');
    const dir = scratch('start-notes');
    const worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db') });
    const specFile = join(dir, 'spec.json');
    writeFileSync(
      specFile,
      JSON.stringify({
        name: 'noted',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' },
        defaults: { taskQueue: queue },
        nodes: [{ id: 'served', sql: 'SELECT :partition AS day' }, { id: 'stranded', sql: 'SELECT :partition AS day', taskQueue: typo }],
      }),
    );
    const id = `noted-${Date.now()}`;
    try {
      const started = await runCli<{ backfillId: string }>(['start', specFile, '--id', id, '--json'], { BACKFILL_TASK_QUEUE: queue }, { timeoutMs: 60_000 });
      expect(started.code, started.stderr).toBe(0);
      expect(started.json, started.stdout).toMatchObject({ backfillId: id, admission: expect.anything() });
      expect(started.stderr).toContain(`note: no worker polls task queue ${typo}, so node stranded waits until one does (a typo of ${queue}, which a worker polls?`);
      expect(started.stderr).not.toContain(`task queue ${queue},`);
    } finally {
      await client.client.workflow.getHandle(backfillWorkflowId(id)).terminate('test over').catch(() => undefined);
      await worker.stop();
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
      // A worker started from the hint without the spec's transforms would fail their partitions.
      expect(JSON.parse(json.stdout).error.message).toContain('--transforms');
    } finally {
      await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).terminate('test over');
    }
  });
  it('without a worker, a control is refused at once (no_worker) and cancel cancels, saying the announcement was skipped', async () => {
    const queue = uniqueQueue('unpolled-cancel');
    const spec = testSpec(queue, { name: 'unpolled', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop' }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
    try {
      const began = Date.now();
      const rate = await runCli<{ error: { code: string; message: string } }>(['set-rate', backfillId, '5', '--json'], {}, { timeoutMs: 60_000 });
      expect(rate.code).toBe(1);
      expect(rate.json?.error).toMatchObject({ code: 'no_worker', message: expect.stringContaining(`backfill worker --workflow-queue ${queue}`) });
      expect(rate.json?.error.message).toContain('--transforms');
      const cancel = await runCli<{ cancelRequested: boolean; announced: boolean; announcementSkipped: string }>(['cancel', backfillId, '--reason', 'no worker to ask', '--json'], {}, { timeoutMs: 60_000 });
      expect(cancel.code).toBe(0);
      expect(cancel.json).toMatchObject({ cancelRequested: true, announced: false, announcementSkipped: expect.stringContaining(`no worker polls its workflow task queue '${queue}'`) });
      expect(Date.now() - began).toBeLessThan(30_000);
      // The server recorded the request, with who and why, though no worker has run the workflow.
      const requested = (await handle.fetchHistory()).events?.find((e) => e.workflowExecutionCancelRequestedEventAttributes)?.workflowExecutionCancelRequestedEventAttributes;
      expect(requested).toMatchObject({ cause: 'no worker to ask', identity: expect.stringContaining('@') });
    } finally {
      await handle.terminate('test over');
    }
  });
  it('right after its worker went away: a control gives up within its deadline (it may still apply), and cancel still cancels', async () => {
    const queue = uniqueQueue('gone');
    const warehousePath = join(scratch('gone'), 'warehouse.db');
    const worker = await startTestWorker({ queue, warehousePath });
    const spec = testSpec(queue, { name: 'gone', partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-10' }, defaults: { rate: 1 }, nodes: [{ id: 'a', transform: 'noop' }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    const handle = client.client.workflow.getHandle(backfillWorkflowId(backfillId));
    try {
      await waitFor('a partition done', async () => ((await client.status(backfillId)).done > 0 ? true : undefined));
      // The server lists the stopped worker's poller for minutes: the update is sent, and nobody takes it.
      await worker.stop();
      // Each gives up after its 15 s deadline (the SDK alone would wait for ever), start-up included: under 40 s each even on a loaded machine.
      let began = Date.now();
      const rate = await runCli<{ error: { code: string; message: string } }>(['set-rate', backfillId, '5', '--json'], {}, { timeoutMs: 60_000 });
      expect(rate.code).toBe(1);
      expect(rate.json?.error).toMatchObject({ code: 'timeout', message: expect.stringContaining('may still apply when a worker takes it') });
      expect(Date.now() - began).toBeLessThan(40_000);
      began = Date.now();
      const cancel = await runCli<{ announced: boolean; announcementSkipped: string }>(['cancel', backfillId, '--reason', 'worker gone', '--json'], {}, { timeoutMs: 60_000 });
      expect(cancel.code).toBe(0);
      expect(cancel.json).toMatchObject({ announced: false, announcementSkipped: expect.stringContaining('no worker took it within 15s') });
      expect(Date.now() - began).toBeLessThan(40_000);
      const requested = (await handle.fetchHistory()).events?.find((e) => e.workflowExecutionCancelRequestedEventAttributes)?.workflowExecutionCancelRequestedEventAttributes;
      expect(requested).toMatchObject({ cause: 'worker gone' });
    } finally {
      // Its node workflow outlives the terminated parent, and no worker is left to end it.
      await endLeftRunning(client, [queue]);
    }
  });
});
