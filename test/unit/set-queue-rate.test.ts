/**
 * `set-queue-rate` asks every running backfill on the queue before it changes the server's cap,
 * and has them record it only after: a refusal or a silent backfill leaves the cap and every
 * audit trail as they were (unless --force). The server is faked: a list of running backfills,
 * each answering the judging query and the recording update as the test says.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import { QueryNotRegisteredError } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import type { QueueRateJudgement } from '../../core/coordinator.ts';
import { fakeBackfillClient } from './fake-backfill-client.ts';

/** `queues`: its nodes' in the run's input; `replaced`: those of each spec sent to it since; `memo`: its run's, as listed; `workflowQueue`: 'backfills' unless said. */
type Backfill = { id: string; queues: string[]; replaced?: string[][]; memo?: Record<string, unknown>; workflowQueue?: string; judge: () => QueueRateJudgement | Promise<QueueRateJudgement> };
const agrees = (): QueueRateJudgement => ({ mine: true, refused: null });
const silent = (): QueueRateJudgement => {
  throw new Error('deadline exceeded: no worker answered');
};
const refuses = (): QueueRateJudgement => ({ mine: true, refused: { code: 'policy_violation', message: 'refused: set-queue-rate above caps.taskQueues[warehouse].rate (40/s)' } });

type QueueRateLimit = { rateLimit?: { requestsPerSecond: number }; metadata?: { reason: string; updateIdentity: string; updateTime: ReturnType<typeof msToTs> } };

/**
 * A client over a fake server; `calls` lists what reached it that changes something, `asked` the
 * backfills queried, `read` those whose history (input or whole) was read. No worker polls `unpolled`.
 */
function fakeClient(backfills: Backfill[], unpolled: string[] = []): { client: BackfillClient; calls: string[]; asked: string[]; read: string[] } {
  const calls: string[] = [];
  const asked: string[] = [];
  const read: string[] = [];
  // The cap the server holds, as it reports it: a rate is a 32-bit float there.
  let queueRateLimit: QueueRateLimit | undefined;
  let updated = Date.parse('2025-03-02T09:14:05Z');
  const byWorkflow = new Map(backfills.map((b) => [`backfill/${b.id}`, b]));
  const temporal = {
    options: { loadedDataConverter: { payloadConverter: defaultPayloadConverter } },
    withDeadline: <T>(_deadline: number, run: () => Promise<T>) => run(),
    workflow: {
      async *list() {
        for (const b of backfills) yield { workflowId: `backfill/${b.id}`, runId: `run-${b.id}`, taskQueue: b.workflowQueue ?? 'backfills', memo: b.memo };
      },
      getHandle: (workflowId: string) => {
        const b = byWorkflow.get(workflowId)!;
        return {
          query: async (definition: { name: string }) => {
            if (definition.name !== 'judgeQueueRate') throw new Error(`unexpected query ${definition.name}`);
            asked.push(b.id);
            return b.judge();
          },
          executeUpdate: async (definition: { name: string }) => {
            if (b.judge === silent) throw new Error('deadline exceeded: no worker answered');
            calls.push(`record ${b.id}`);
            return b.queues.includes('warehouse');
          },
          fetchHistory: async () => {
            read.push(`${b.id} history`);
            return {
              events: (b.replaced ?? []).map((queues) => ({
                workflowExecutionUpdateAcceptedEventAttributes: {
                  acceptedRequest: { input: { name: 'replaceSpec', args: { payloads: [defaultPayloadConverter.toPayload({ nodes: queues.map((taskQueue, i) => ({ id: `n${i}`, taskQueue })) })] } } },
                },
              })),
            };
          },
        };
      },
    },
  };
  const workflowService = {
    updateTaskQueueConfig: async (request: { taskQueue: string; identity: string; updateQueueRateLimit: { rateLimit?: { requestsPerSecond: number }; reason: string } }) => {
      const { rateLimit, reason } = request.updateQueueRateLimit;
      calls.push(`cap ${request.taskQueue} ${rateLimit?.requestsPerSecond ?? 'unlimited'}`);
      queueRateLimit = {
        ...(rateLimit ? { rateLimit: { requestsPerSecond: Math.fround(rateLimit.requestsPerSecond) } } : {}),
        metadata: { reason, updateIdentity: request.identity, updateTime: msToTs((updated += 1000) - 1000) },
      };
      return { config: { queueRateLimit } };
    },
    describeTaskQueue: async (request: { taskQueue: { name: string }; reportConfig?: boolean }) => ({
      pollers: unpolled.includes(request.taskQueue.name) ? [] : [{ identity: 'worker@test' }],
      ...(request.reportConfig && queueRateLimit ? { config: { queueRateLimit } } : {}),
    }),
    getWorkflowExecutionHistory: async (request: { execution: { workflowId: string } }) => {
      const b = byWorkflow.get(request.execution.workflowId)!;
      read.push(`${b.id} input`);
      const input = { spec: { nodes: b.queues.map((taskQueue, i) => ({ id: `n${i}`, taskQueue })) } };
      return { history: { events: [{ workflowExecutionStartedEventAttributes: { input: { payloads: [defaultPayloadConverter.toPayload(input)] } } }] } };
    },
  };
  const client = fakeBackfillClient({ client: temporal, workflowService, identity: 'ops@test' });
  return { client, calls, asked, read };
}

describe('set-queue-rate', () => {
  it('refuses a task queue Temporal reserves before it asks anyone or changes a cap', async () => {
    const { client, calls } = fakeClient([{ id: 'a', queues: ['warehouse'], judge: agrees }]);
    await expect(client.setQueueRate('__temporal_warehouse', 5, { force: true })).rejects.toMatchObject({
      code: 'invalid_argument',
      message: "task queue '__temporal_warehouse' starts with __temporal_, which Temporal reserves for its own task queues: choose a name without that prefix",
    });
    expect(calls).toEqual([]);
  });

  it('a later refusal leaves the cap unchanged and nothing recorded by the backfills that agreed first', async () => {
    const { client, calls } = fakeClient([
      { id: 'a', queues: ['warehouse'], judge: agrees },
      { id: 'b', queues: ['warehouse'], judge: refuses },
    ]);
    await expect(client.setQueueRate('warehouse', 80, { reason: 'INC-1' })).rejects.toMatchObject({
      code: 'policy_violation',
      message: expect.stringMatching(/^backfill 'b' \(on task queue warehouse\) refused: .* the cap is unchanged and nothing was recorded$/),
    });
    expect(calls).toEqual([]);
  });

  it('a backfill on the queue that does not answer blocks the change, unless --force, which names it', async () => {
    const backfills = [
      { id: 'a', queues: ['warehouse'], judge: agrees },
      { id: 'down', queues: ['warehouse'], judge: silent },
      { id: 'elsewhere-down', queues: ['other'], judge: silent },
    ];
    const blocked = fakeClient(backfills);
    await expect(blocked.client.setQueueRate('warehouse', 80)).rejects.toMatchObject({ code: 'no_worker', message: expect.stringMatching(/^'down' \(nodes on task queue warehouse\) did not answer.*--force/) });
    expect(blocked.calls).toEqual([]);

    const forced = fakeClient(backfills);
    await expect(forced.client.setQueueRate('warehouse', 80, { force: true })).resolves.toEqual({
      taskQueue: 'warehouse',
      rate: 80,
      recordedBy: ['a'],
      unreachable: ['down'],
      notRecorded: [],
      unused: false,
    });
    // The cap changes first, and only then does the backfill that agreed record it.
    expect(forced.calls).toEqual(['cap warehouse 80', 'record a']);
  });

  it('a backfill whose code predates the judging query judges and records in one step, before the cap changes', async () => {
    const legacy = (): QueueRateJudgement => {
      throw new QueryNotRegisteredError('unknown queryType judgeQueueRate', 3);
    };
    const { client, calls } = fakeClient([
      { id: 'new', queues: ['warehouse'], judge: agrees },
      { id: 'old', queues: ['warehouse'], judge: legacy },
      { id: 'other', queues: ['other'], judge: () => ({ mine: false, refused: null }) },
    ]);
    const result = await client.setQueueRate('warehouse', 40);
    expect(calls).toEqual(['record old', 'cap warehouse 40', 'record new']);
    expect(result).toMatchObject({ rate: 40, recordedBy: ['old', 'new'], unreachable: [] });
  });

  it('a rate that is the cap in force changes nothing: no cap is sent, nothing recorded, and it says who set it, when and why', async () => {
    const { client, calls } = fakeClient([{ id: 'a', queues: ['warehouse'], judge: agrees }]);
    expect(await client.setQueueRate('warehouse', 80, { reason: 'INC-1' })).not.toHaveProperty('unchanged');
    expect(calls).toEqual(['cap warehouse 80', 'record a']);
    await expect(client.setQueueRate('warehouse', 80)).resolves.toEqual({
      taskQueue: 'warehouse',
      rate: 80,
      recordedBy: [],
      unreachable: [],
      notRecorded: [],
      unused: false,
      unchanged: { since: Date.parse('2025-03-02T09:14:05Z'), by: 'ops@test (declared)', reason: 'INC-1' },
    });
    expect(calls).toEqual(['cap warehouse 80', 'record a']);
    // What the server keeps of 0.1 is not 0.1: still the same cap.
    await client.setQueueRate('warehouse', 0.1);
    expect(await client.setQueueRate('warehouse', 0.1)).toMatchObject({ unchanged: { reason: 'backfill set-queue-rate 0.1' } });
    expect(calls).toEqual(['cap warehouse 80', 'record a', 'cap warehouse 0.1', 'record a']);
  });

  it('no cap asked of a queue that has none changes nothing, and the server tells nothing of since when', async () => {
    const { client, calls } = fakeClient([{ id: 'a', queues: ['warehouse'], judge: agrees }]);
    expect(await client.setQueueRate('warehouse', null)).toMatchObject({ rate: null, recordedBy: [], unchanged: { since: null, by: null, reason: null } });
    expect(calls).toEqual([]);
  });

  it('a backfill whose code predates the judging query still judges the cap in force by recording it, as it judges a change', async () => {
    const legacy = (): QueueRateJudgement => {
      throw new QueryNotRegisteredError('unknown queryType judgeQueueRate', 3);
    };
    const { client, calls } = fakeClient([{ id: 'old', queues: ['warehouse'], judge: legacy }]);
    expect(await client.setQueueRate('warehouse', null)).toMatchObject({ rate: null, recordedBy: ['old'], unchanged: { since: null } });
    expect(calls).toEqual(['record old']);
  });

  it('the cap in force is still judged: a refusal refuses it as it refuses a change', async () => {
    const { client, calls } = fakeClient([{ id: 'a', queues: ['warehouse'], judge: agrees }]);
    await client.setQueueRate('warehouse', 80);
    const refused = fakeClient([{ id: 'b', queues: ['warehouse'], judge: refuses }]);
    await expect(refused.client.setQueueRate('warehouse', null)).rejects.toMatchObject({ code: 'policy_violation' });
    expect([calls, refused.calls]).toEqual([['cap warehouse 80', 'record a'], []]);
  });

  it('asks the running backfills at once: one whose worker is gone holds up the others no longer than itself', async () => {
    // Each answer waits until every backfill has been asked; asked one by one, each would wait its 2 s out alone.
    const count = 5;
    let asked = 0;
    let answering = 0;
    let mostAtOnce = 0;
    let allAsked: () => void = () => undefined;
    const everyoneAsked = new Promise<void>((resolve) => (allAsked = resolve));
    const waitsForTheOthers = async (): Promise<QueueRateJudgement> => {
      mostAtOnce = Math.max(mostAtOnce, ++answering);
      if (++asked === count) allAsked();
      await Promise.race([everyoneAsked, new Promise((resolve) => setTimeout(resolve, 2_000))]);
      answering--;
      return { mine: true, refused: null };
    };
    const { client } = fakeClient(Array.from({ length: count }, (_, i) => ({ id: `b${i}`, queues: ['warehouse'], judge: waitsForTheOthers })));
    expect(await client.setQueueRate('warehouse', 5)).toMatchObject({ rate: 5, recordedBy: ['b0', 'b1', 'b2', 'b3', 'b4'], unreachable: [] });
    expect(asked).toBe(count);
    expect(mostAtOnce).toBe(count);
  });

  it('asks only the backfills with nodes on the queue: one known to run elsewhere is not asked, even with its worker gone', async () => {
    const { client, asked } = fakeClient([
      { id: 'here', queues: ['warehouse', 'other'], judge: agrees },
      { id: 'elsewhere', queues: ['other'], judge: silent },
      { id: 'moved', queues: ['other'], replaced: [['other'], ['warehouse']], judge: agrees },
      { id: 'unknown', queues: [], judge: silent },
    ]);
    await expect(client.setQueueRate('warehouse', 5)).rejects.toMatchObject({ code: 'no_worker', message: expect.stringMatching(/^'unknown' \(nodes on task queue warehouse\) did not answer/) });
    // A spec sent since the start may have moved its nodes: the history tells; one whose input cannot be read is asked.
    expect(asked.sort()).toEqual(['here', 'moved', 'unknown']);
  });

  it('tells from the memo the workflow keeps (the list of running backfills shows it), reading no history; a run without it, as before', async () => {
    const { client, asked, read } = fakeClient([
      { id: 'here', queues: ['other'], memo: { nodeQueues: { runId: 'run-here', queues: ['other', 'warehouse'] } }, judge: agrees },
      // Its input and history say warehouse: the memo, the workflow's own, says it is no longer there.
      { id: 'moved-away', queues: ['warehouse'], replaced: [['warehouse']], memo: { nodeQueues: { runId: 'run-moved-away', queues: ['other'] } }, judge: silent },
      { id: 'too-many', queues: ['other'], memo: { nodeQueues: { runId: 'run-too-many', queues: 'unlisted' } }, judge: agrees },
      { id: 'before-the-memo', queues: ['other'], replaced: [['warehouse']], memo: { governance: {} }, judge: agrees },
      { id: 'unreadable-memo', queues: ['other'], memo: { nodeQueues: 'warehouse' }, judge: silent },
      // A memo its start's caller gave (no run's own): its input puts it on the queue, so it is asked.
      { id: 'caller-memo', queues: ['warehouse'], memo: { nodeQueues: { runId: 'guessed', queues: ['other'] } }, judge: agrees },
    ]);
    expect(await client.setQueueRate('warehouse', 5)).toMatchObject({ rate: 5, unreachable: [] });
    expect(asked.sort()).toEqual(['before-the-memo', 'caller-memo', 'here', 'too-many']);
    expect(read.sort()).toEqual(['before-the-memo history', 'before-the-memo input', 'caller-memo input', 'unreadable-memo history', 'unreadable-memo input']);
  });

  it('a backfill on the queue whose workflow task queue no worker polls is unreachable at once, not asked', async () => {
    const { client, asked } = fakeClient(
      [
        { id: 'a', queues: ['warehouse'], judge: agrees },
        { id: 'down', queues: ['warehouse'], workflowQueue: 'gone', judge: agrees },
      ],
      ['gone'],
    );
    expect(await client.setQueueRate('warehouse', 5, { force: true })).toMatchObject({ rate: 5, recordedBy: ['a'], unreachable: ['down'] });
    expect(asked).toEqual(['a']);
  });

  it('refuses a rate or a reason every backfill would refuse, though none is asked', async () => {
    const { client, calls, asked } = fakeClient([{ id: 'elsewhere', queues: ['other'], judge: agrees }]);
    await expect(client.setQueueRate('warehouse', -1)).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(client.setQueueRate('warehouse', 5, { reason: 'x'.repeat(10_000) })).rejects.toMatchObject({ code: 'invalid_argument', path: 'reason' });
    expect([calls, asked]).toEqual([[], []]);
  });
});
