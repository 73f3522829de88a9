/**
 * `status` without the SDK's client (client/light-status.ts) tells what the SDK's client tells,
 * for the same backfill on the shared dev server; and where it cannot tell (a backfill that
 * ended, one that does not exist, a server that is not there, TLS), it steps aside and the
 * command answers through the SDK's client as before.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient, Status } from '../../client/backfill-client.ts';
import { localConnection, resolveConnection } from '../../client/connection.ts';
import { lightStatus, lightStatusApplies } from '../../client/light-status.ts';
import { backfillWorkflowId } from '../../core/workflow-ids.ts';
import { freePort } from '../../host/dev-server.ts';
import { address, connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, waitFor, type TestWorker } from './helpers.ts';

type ErrorJson = { error: { code: string; message: string } };

/**
 * `read` at a still moment: the SDK client tells the same before and after it (one after the
 * other: the server buffers only a few queries per workflow at a time). A running backfill's
 * counts may move between two reads.
 */
async function stillRead<T>(backfillId: string, what: string, read: () => Promise<T>): Promise<{ read: T; sdk: Status }> {
  return waitFor(`the same status before and after ${what}`, async () => {
    const before = await freshStatus(backfillId);
    const value = await read();
    const after = await freshStatus(backfillId);
    return JSON.stringify(before) === JSON.stringify(after) ? { read: value, sdk: after } : undefined;
  });
}

/** The status as the SDK client of a new process tells it (a client reuses its live ETA for a few seconds). */
async function freshStatus(backfillId: string): Promise<Status> {
  const fresh = await connectClient();
  try {
    return await fresh.status(backfillId);
  } finally {
    await fresh.close();
  }
}

describe('status through the light path', () => {
  let client: BackfillClient;
  let worker: TestWorker;
  let queue: string;
  beforeAll(async () => {
    client = await connectClient();
    queue = uniqueQueue('light-status');
    worker = await startTestWorker({ queue, warehousePath: join(scratch('light-status'), 'warehouse.db') });
  });
  afterAll(async () => {
    await worker?.stop();
    await client?.close();
  });

  it('gives the same status as the SDK client for the same running backfill: progress, ETAs and the node waiting for a worker', async () => {
    const lonely = uniqueQueue('light-lonely');
    const spec = testSpec(queue, {
      name: 'light-status',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
      nodes: [
        { id: 'served', transform: 'sleep', params: { ms: 20 } },
        { id: 'stranded', transform: 'noop', taskQueue: lonely, dependsOn: ['served'] },
      ],
    });
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    try {
      // A state that holds still: the served node done, the other waiting on a queue nobody polls.
      await waitFor('node served done, node stranded waiting', async () => {
        const now = await client.status(backfillId);
        return now.nodes.find((n) => n.id === 'served')?.done === 10 && now.waiting.length > 0;
      });
      const settings = localConnection(address());
      expect(lightStatusApplies(settings)).toBe(true);
      // A still moment: the SDK client tells the same before and after the light path reads.
      const { read: light, sdk } = await stillRead(backfillId, 'the light read', () => lightStatus(settings, backfillId));
      expect(light).not.toBeNull();
      expect(light).toEqual(sdk);
      // Not a vacuous match: both carry the waiting node, and the ETAs it leaves (none for it, nor for the backfill: nothing says when a worker comes).
      expect(light!.waiting).toEqual([{ node: 'stranded', taskQueue: lonely, reason: 'no_worker', lastPollAt: null }]);
      expect(light!.nodes.map((n) => [n.id, n.etaSeconds])).toEqual([
        ['served', 0],
        ['stranded', null],
      ]);
      expect(light!.etaSeconds).toBeNull();
      // What it has in flight, scheduled on the queue nobody polls, is queued, not running: both paths tell it so.
      expect(light!.nodes.map((n) => [n.id, n.running, (n.queued ?? 0) > 0])).toEqual([
        ['served', 0, false],
        ['stranded', 0, true],
      ]);

      // The command line, which takes the light path here, prints the same, at a still moment too
      // (the stranded node's running and pending counts moved between two reads in one CI run).
      const printed = await stillRead(backfillId, 'the command line read', async () => {
        const cli = await runCli<Status>(['status', backfillId, '--json']);
        expect(cli.code).toBe(0);
        return cli.json;
      });
      expect(printed.read).toEqual(printed.sdk);
    } finally {
      await client.cancel(backfillId);
    }
  });

  it('steps aside for a backfill that ended: the command answers through the SDK client', async () => {
    const spec = testSpec(queue, { name: 'light-ended', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'only', transform: 'noop' }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
    expect(await lightStatus(localConnection(address()), backfillId)).toBeNull();
    const cli = await runCli<Status>(['status', backfillId, '--json']);
    expect(cli.code).toBe(0);
    expect(cli.json).toEqual(await client.status(backfillId));
  });

  it('says no_worker as the SDK client does when no worker polls the workflow task queue', async () => {
    const unpolled = uniqueQueue('light-unpolled');
    const spec = testSpec(unpolled, { name: 'light-unpolled', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop' }] });
    const { backfillId } = await client.start(spec, { taskQueue: unpolled });
    try {
      const light = await lightStatus(localConnection(address()), backfillId).catch((e: unknown) => e);
      const sdk = await freshStatus(backfillId).catch((e: unknown) => e);
      expect(light).toMatchObject({ code: 'no_worker', message: expect.stringContaining(`workflow task queue '${unpolled}'`) });
      expect((light as Error).message).toBe((sdk as Error).message);
    } finally {
      // No worker would carry out a cancel.
      await client.client.workflow.getHandle(backfillWorkflowId(backfillId)).terminate('test over');
    }
  });

  it('steps aside for a backfill that does not exist, and the error names it as before', async () => {
    expect(await lightStatus(localConnection(address()), 'no-such-backfill')).toBeNull();
    const cli = await runCli<ErrorJson>(['status', 'no-such-backfill', '--json']);
    expect(cli.json?.error).toMatchObject({ code: 'not_found', message: expect.stringContaining("no backfill with id 'no-such-backfill'") });
  });

  it('an address where no server listens gives the connection error, with the fix, not a light-path one', async () => {
    const nowhere = `127.0.0.1:${await freePort()}`;
    expect(await lightStatus(localConnection(nowhere), 'any')).toBeNull();
    const cli = await runCli<ErrorJson>(['status', 'any', '--json'], { TEMPORAL_ADDRESS: nowhere });
    expect(cli.code).not.toBe(0);
    expect(cli.json?.error.code).toBe('server_unavailable');
    expect(cli.json?.error.message).toContain(`cannot reach the Temporal server (${nowhere}`);
  });

  it('is not used with TLS or an API key: those go through the SDK client, which speaks them', () => {
    expect(lightStatusApplies(resolveConnection({ address: address() }, { TEMPORAL_TLS: 'true' }))).toBe(false);
    expect(lightStatusApplies(resolveConnection({ address: address() }, { TEMPORAL_API_KEY: 'secret' }))).toBe(false);
  });
});
