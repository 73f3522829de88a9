/**
 * Controls (updates) of a running backfill whose workers are away: refused at once when nobody
 * polls the workflow task queue, given up after UPDATE_TIMEOUT_MS when the workers are silent,
 * and `cancel` sends the server's cancellation either way.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { UPDATE_TIMEOUT_MS } from '../../client/backfill-client.ts';
import type { ControlMeta } from '../../core/audit.ts';
import { fakeBackfillClient } from './fake-backfill-client.ts';

type Pollers = Array<{ identity: string; lastAccessTime: { seconds: number; nanos: number } }>;

/** A client of one running backfill on task queue 'q', whose workflow worker never takes an update. */
function fakeClient(pollers: () => Pollers) {
  const sent: { updates: string[]; cancels: Array<{ identity?: string; reason?: string }> } = { updates: [], cancels: [] };
  const handle = {
    describe: async () => ({ type: 'backfillWorkflow', status: { name: 'RUNNING' }, taskQueue: 'q', runId: 'r1', startTime: new Date() }),
    // The server holds an update no worker takes: the call answers only when its deadline passes.
    startUpdate: (definition: { name: string }) => {
      sent.updates.push(definition.name);
      return new Promise<never>(() => undefined);
    },
  };
  const client = fakeBackfillClient({
    client: {
      workflow: { getHandle: () => handle },
      // As the SDK reports an update call whose deadline passed.
      withDeadline: <T>(deadline: number, fn: () => Promise<T>) =>
        Promise.race([
          fn(),
          new Promise<never>((_, reject) => setTimeout(() => reject(new WorkflowUpdateRPCTimeoutOrCancelledError('Workflow update call timeout or cancelled', { cause: new Error('4 DEADLINE_EXCEEDED') })), deadline - Date.now())),
        ]),
      options: { identity: 'alice@host' },
    },
    workflowService: {
      describeTaskQueue: async () => ({ pollers: pollers() }),
      requestCancelWorkflowExecution: async (request: { identity?: string; reason?: string }) => {
        sent.cancels.push({ identity: request.identity, reason: request.reason });
        return {};
      },
    },
    identity: 'alice@host',
  });
  return { client, sent };
}

/** A poller the server remembers, that last polled `agoMs` ago. */
function polledAgo(agoMs: number): Pollers {
  const at = Date.now() - agoMs;
  return [{ identity: 'worker@gone', lastAccessTime: { seconds: Math.floor(at / 1000), nanos: (at % 1000) * 1e6 } }];
}

describe('controls of a backfill whose workers are away', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a control is refused with no_worker, unsent, when nobody polls the workflow task queue', async () => {
    const { client, sent } = fakeClient(() => []);
    await expect(client.setRate('b1', 5)).rejects.toMatchObject({ code: 'no_worker', message: expect.stringContaining("backfill worker --workflow-queue q --transforms <the spec's transforms modules, if it lists any>") });
    expect(sent.updates).toEqual([]);
  });

  it('a control no worker takes gives up with timeout after UPDATE_TIMEOUT_MS, saying it may still apply', async () => {
    // Killed a minute ago: the server still lists the poller (for five minutes).
    const { client, sent } = fakeClient(() => polledAgo(60_000));
    const outcome = client.setRate('b1', 5).then(
      () => 'applied',
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(UPDATE_TIMEOUT_MS + 1000);
    expect(await outcome).toMatchObject({ code: 'timeout', message: expect.stringContaining('may still apply when a worker takes it') });
    expect(sent.updates).toEqual(['setRate']);
  });

  it('cancel without a worker sends the server cancellation, with identity and reason, and says the announcement was skipped', async () => {
    const { client, sent } = fakeClient(() => []);
    const cancelled = await client.cancel('b1', { reason: 'wrong range' });
    expect(cancelled).toMatchObject({ announced: false, skipped: expect.stringContaining("no worker polls its workflow task queue 'q'") });
    expect(sent.updates).toEqual([]);
    expect(sent.cancels).toEqual([{ identity: 'alice@host', reason: 'wrong range' }]);
  });

  it('cancel whose announcement no worker takes in time sends the server cancellation all the same', async () => {
    const { client, sent } = fakeClient(() => polledAgo(60_000));
    const cancelled = client.cancel('b1', { reason: 'wrong range' });
    await vi.advanceTimersByTimeAsync(UPDATE_TIMEOUT_MS + 1000);
    expect(await cancelled).toMatchObject({ announced: false, skipped: expect.stringContaining('no worker took it') });
    expect(sent.updates).toEqual(['announceCancel']);
    expect(sent.cancels).toEqual([{ identity: 'alice@host', reason: 'wrong range' }]);
  });

  it('a policy refusal of the announcement still stops the cancel', async () => {
    const { client, sent } = fakeClient(() => polledAgo(1000));
    const { ApplicationFailure } = await import('@temporalio/common');
    const { WorkflowUpdateFailedError } = await import('@temporalio/client');
    const handle = (client.client.workflow.getHandle as unknown as () => { startUpdate: (d: { name: string }, o: { args: [ControlMeta] }) => Promise<unknown> })();
    handle.startUpdate = async () => {
      throw new WorkflowUpdateFailedError('refused', ApplicationFailure.create({ type: 'policy_violation', message: 'a cancel needs a reason', nonRetryable: true }));
    };
    await expect(client.cancel('b1')).rejects.toMatchObject({ code: 'policy_violation' });
    expect(sent.cancels).toEqual([]);
  });
});
