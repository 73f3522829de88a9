/**
 * The first layer of rate limiting: a task queue's cap, enforced by the Temporal server
 * across all workers of the queue, set by the workers and changed at runtime.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { currentQueueCap } from '../../client/queue-cap.ts';
import { visibilityLiteral } from '../../client/visibility.ts';
import { CORE_GENERATION, type BackfillInput } from '../../core/protocol.ts';
import { BACKFILL_ID, backfillWorkflowId, nodeWorkflowId } from '../../workflows/definitions.ts';
import { connectClient, runCli, scratch, startRate, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

describe('task queue rate limits', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('queues');
  const warehouseQueue = `${queue}-warehouse`;

  beforeAll(async () => {
    // The workers of the warehouse queue cap it at 4 activities per second.
    worker = await startTestWorker({ queue, warehousePath: `${scratch('queues')}/warehouse.db`, extraQueues: [{ name: warehouseQueue, maxActivitiesPerSecond: 4 }] });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('the server holds a queue to its cap whatever the node asks, and follows a change made at runtime', async () => {
    const spec = testSpec(queue, {
      name: 'queue-cap',
      partitions: { grain: 'hour', start: '2024-01-01', end: '2024-01-21' },
      // One partition per activity: the server's cap counts activities, the ledger partitions.
      defaults: { concurrency: 50, batchSize: 1 },
      nodes: [{ id: 'load', transform: 'sleep', taskQueue: warehouseQueue }],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 250 } });
    const ledger = () => worker.warehouse.ledger({ backfillId });
    await waitFor('the first partitions', async () => (await ledger()).length > 0);

    const cappedFrom = Date.now() + 1000;
    await delay(5000);
    const cappedTo = Date.now();
    expect(await client.setQueueRate(warehouseQueue, 12)).toMatchObject({ rate: 12, unused: false });
    // Past the change's first moments (the server's limiter may let a short burst through).
    const raisedFrom = Date.now() + 2000;
    await delay(9000);
    const raisedTo = Date.now();
    const rows = await ledger();
    const capped = startRate(rows, cappedFrom, cappedTo);
    const raised = startRate(rows, raisedFrom, raisedTo);
    expect(capped).toBeGreaterThan(2.5);
    expect(capped).toBeLessThanOrEqual(5);
    expect(raised).toBeGreaterThan(9);
    expect(raised).toBeLessThan(12 * 1.2);

    // Cancelled while the cap still holds it (lifted first, the rest ran out before the cancel on a slow machine).
    await client.cancel(backfillId);
    expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
    expect(await client.setQueueRate(warehouseQueue, null)).toMatchObject({ rate: null, unused: false });
  });

  it('a rate that is the cap in force changes nothing: it says since when, by whom and why, and sends no cap and no record', async () => {
    // Its one partition sleeps on the warehouse queue until cancelled: a running backfill on the queue, asked each time.
    const spec = testSpec(queue, {
      name: 'queue-noop',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' },
      nodes: [{ id: 'held', transform: 'sleep', params: { ms: 600_000 }, taskQueue: warehouseQueue }],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    type Result = { rate: number | null; recordedBy: string[]; unchanged?: { since: number | null; by: string | null; reason: string | null } };
    try {
      const set = await runCli<Result>(['set-queue-rate', warehouseQueue, '7', '--reason', 'INC-7 warehouse load', '--json']);
      expect(set.code, set.stderr).toBe(0);
      expect(set.json).toMatchObject({ rate: 7, recordedBy: [backfillId] });
      expect(set.json).not.toHaveProperty('unchanged');
      const setAt = (await currentQueueCap(client.connection, client.namespace, warehouseQueue)).setBy.since;
      expect(setAt).toEqual(expect.any(Number));

      const same = await runCli<Result>(['set-queue-rate', warehouseQueue, '7', '--reason', 'asked again', '--json']);
      expect(same.code, same.stderr).toBe(0);
      expect(same.json).toEqual({ taskQueue: warehouseQueue, rate: 7, recordedBy: [], unreachable: [], notRecorded: [], unused: false, unchanged: { since: setAt, by: expect.stringMatching(/ \(declared\)$/), reason: 'INC-7 warehouse load' } });
      // No cap was sent: the server's record of the cap is still the first one's.
      expect((await currentQueueCap(client.connection, client.namespace, warehouseQueue)).setBy).toMatchObject({ since: setAt, reason: 'INC-7 warehouse load' });

      // Lifted, a change; lifted again, nothing changed.
      const lifted = await runCli<Result>(['set-queue-rate', warehouseQueue, 'unlimited', '--json']);
      expect(lifted.json).toMatchObject({ rate: null, recordedBy: [backfillId] });
      expect(lifted.json).not.toHaveProperty('unchanged');
      const liftedAgain = await runCli(['set-queue-rate', warehouseQueue, 'unlimited']);
      expect(liftedAgain.code, liftedAgain.stderr).toBe(0);
      expect(liftedAgain.stdout).toMatch(new RegExp(`^task queue ${warehouseQueue}: was already without a server-side cap \\(workers' own setting applies\\) \\(since [^,]+, by [^ ]+ \\(declared\\): backfill set-queue-rate unlimited\\): nothing changed\n$`));
    } finally {
      await client.cancel(backfillId);
      expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
    }
  });

  it('waits only on the backfills with nodes on the queue: one without a worker elsewhere costs nothing, one on it is named', async () => {
    // A backfill whose worker stopped while it ran (a query to it waits out its deadline), and one
    // on a workflow task queue no worker ever polled; their nodes wait on queues nobody polls either.
    const goneQueue = uniqueQueue('queues-gone');
    const neverQueue = uniqueQueue('queues-never');
    const orphan = (name: string, workflowQueue: string) =>
      testSpec(workflowQueue, { name, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' }, nodes: [{ id: 'held', transform: 'noop', taskQueue: `${workflowQueue}-nodes` }] });
    const gone = await startTestWorker({ queue: goneQueue, warehousePath: `${scratch('queues-gone')}/warehouse.db` });
    let goneStopped = false;
    const ids: string[] = [];
    try {
      const { backfillId: goneId } = await client.start(orphan('queue-gone', goneQueue), { taskQueue: goneQueue });
      ids.push(goneId);
      await waitFor('its worker to run it', async () => (await client.progress(goneId)).state === 'running');
      await gone.stop();
      goneStopped = true;
      const { backfillId: neverId } = await client.start(orphan('queue-never', neverQueue), { taskQueue: neverQueue });
      ids.push(neverId);

      // Neither has nodes on this queue: neither is waited on (asked, the first held the call 10 s).
      let began = Date.now();
      expect(await client.setQueueRate(`${queue}-elsewhere`, 5)).toMatchObject({ rate: 5, recordedBy: [], unreachable: [] });
      expect(Date.now() - began).toBeLessThan(8000);

      // On its own queue it is named, at once when no worker polls its workflow task queue (asked, it too held the call 10 s).
      // (The one whose worker stopped is asked and named after the query's deadline: the unit tests' 'down'.)
      began = Date.now();
      await expect(client.setQueueRate(`${neverQueue}-nodes`, 5)).rejects.toMatchObject({ code: 'no_worker', message: expect.stringMatching(new RegExp(`^'${neverId}' \\(nodes on task queue ${neverQueue}-nodes\\) did not answer`)) });
      expect(Date.now() - began).toBeLessThan(8000);
    } finally {
      if (!goneStopped) await gone.stop();
      for (const id of ids) await client.client.workflow.getHandle(backfillWorkflowId(id)).terminate('test over').catch(() => undefined);
    }
  });

  it('tells which backfills to ask from the memo their workflows keep: one a new spec moved onto the queue is asked, and a memo its start\'s caller gave never counts (it names no run of its own)', async () => {
    // Their partitions wait on queues no worker polls: each runs until the test ends it.
    const parked = `${queue}-parked`;
    const target = `${queue}-target`;
    const neverQueue = uniqueQueue('queues-memo-never');
    const node = (name: string) => name.replaceAll('-', '_');
    const held = (name: string, nodeQueue: string) => testSpec(queue, { name, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' }, nodes: [{ id: node(name), transform: 'noop', taskQueue: nodeQueue }] });
    /** Started as Temporal's CLI can: any memo. */
    const startByHand = async (name: string, workflowQueue: string, memo: Record<string, unknown>) => {
      const backfillId = `${name}-${randomUUID().slice(0, 8)}`;
      const input: BackfillInput = { core: CORE_GENERATION, backfillId, spec: held(name, target), range: {} };
      await client.client.workflow.start('backfillWorkflow', { taskQueue: workflowQueue, workflowId: backfillWorkflowId(backfillId), args: [input], memo, typedSearchAttributes: [{ key: BACKFILL_ID, value: backfillId }] });
      return backfillId;
    };
    /** The queues its running run's memo lists, as the list of running backfills shows it, when the run wrote them itself. */
    const listedQueues = async (backfillId: string): Promise<string | undefined> => {
      const query = `WorkflowId = ${visibilityLiteral(backfillWorkflowId(backfillId))} AND ExecutionStatus = 'Running'`;
      for await (const run of client.client.workflow.list({ query })) {
        const memo = run.memo?.nodeQueues as { runId?: unknown; queues?: unknown } | undefined;
        return memo?.runId === run.runId ? JSON.stringify(memo.queues) : 'not its own';
      }
      return undefined;
    };
    const ids: string[] = [];
    const ended: string[] = [];
    try {
      const { backfillId: movedId } = await client.start(held('queue-moved', parked), { taskQueue: queue });
      ids.push(movedId);
      await waitFor('its worker to run it', async () => (await client.progress(movedId)).state === 'running');
      await waitFor('its memo to list its queue', async () => (await listedQueues(movedId)) === JSON.stringify([parked]));
      expect(await client.replaceSpec(movedId, held('queue-moved', target))).toEqual(['queue_moved']);
      await waitFor('its memo to list the new spec\'s queue', async () => (await listedQueues(movedId)) === JSON.stringify([target]));

      // A memo its caller gave (no worker polls its workflow task queue, so it stays) says elsewhere: it names no run of
      // its own, so its input, which puts it on the queue, is read, and it is asked (unreachable).
      const callersMemo = { nodeQueues: { runId: 'a-guess', queues: [parked] } };
      const notYetId = await startByHand('queue-memo-not-yet', neverQueue, callersMemo);
      ids.push(notYetId);
      await waitFor('the list to show it', async () => (await listedQueues(notYetId)) === 'not its own');
      // Its caller's memo until its first task writes the true one.
      const falseId = await startByHand('queue-memo-false', queue, callersMemo);
      ids.push(falseId);
      await waitFor('its workflow to write its own memo', async () => (await listedQueues(falseId)) === JSON.stringify([target]));
      // Written before the start is judged: until then the backfill refuses to judge a rate (not_running).
      await client.admission(falseId, queue);

      await expect(client.setQueueRate(target, 5)).rejects.toMatchObject({ code: 'no_worker', message: expect.stringContaining(notYetId) });
      const set = await client.setQueueRate(target, 5, { force: true });
      expect({ ...set, recordedBy: [...set.recordedBy].sort() }).toMatchObject({ rate: 5, recordedBy: [movedId, falseId].sort(), unreachable: [notYetId], notRecorded: [] });

      // Cancelled, those with a worker release their datasets' leases.
      for (const id of [movedId, falseId]) {
        await client.cancel(id);
        expect((await client.wait(id, 60_000)).state).toBe('cancelled');
        ended.push(id);
      }
    } finally {
      for (const id of ids.filter((id) => !ended.includes(id))) {
        await client.client.workflow.getHandle(backfillWorkflowId(id)).terminate('test over').catch(() => undefined);
        const name = id.replace(/-[0-9a-f]{8}$/, '');
        await client.client.workflow.getHandle(nodeWorkflowId(id, node(name))).terminate('test over').catch(() => undefined);
      }
    }
  });

  it('says so when the queue it caps is one nobody uses (a name mistyped)', async () => {
    const typo = `${queue}-warehuose`;
    expect(await client.setQueueRate(typo, 5)).toMatchObject({ rate: 5, unused: true, recordedBy: [], unreachable: [] });
    const cli = await runCli(['set-queue-rate', typo, 'unlimited']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`warning: no worker polls task queue ${typo} and no running backfill has nodes on it`);
  });
});
