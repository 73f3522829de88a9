/**
 * A client clock ahead of (or behind) the server's: the poll times the server lists are on its
 * clock, so `status` judges them against the server's time as the polls tell it, and warns of
 * silent workers only when they are.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { statusOf, type StatusReads } from '../../client/light-status.ts';
import { WORKFLOW_EXECUTION_STATUS_RUNNING } from '../../client/status-wire.ts';
import { queueStates, type Poller } from '../../client/waiting.ts';

/** The server's time. */
const S = Date.parse('2024-03-01T12:00:00Z');
const polled = (agoMs: number): Poller[] => [{ identity: 'w', lastAccessMs: S - agoMs }];
/** The workflow worker that just answered the query polled a few seconds ago. */
const workflowPollers = polled(5000);

describe('silent workers, judged on the server clock', () => {
  it('a client clock 3 minutes ahead shows no live worker as silent', () => {
    const queues = new Map([['warehouse', polled(60_000)]]);
    expect(queueStates(queues, S + 180_000, workflowPollers)).toEqual(new Map());
  });

  it('workers that did stop polling are silent, whichever way the client clock is off', () => {
    const queues = new Map([['warehouse', polled(60_000)], ['gone', polled(200_000)]]);
    for (const clientNow of [S, S + 180_000, S - 180_000]) {
      expect(queueStates(queues, clientNow, workflowPollers), String(clientNow - S)).toEqual(
        new Map([['gone', { reason: 'workers_silent', lastPollAt: new Date(S - 200_000).toISOString() }]]),
      );
    }
  });

  it('a queue nobody polls has no worker', () => {
    expect(queueStates(new Map([['lonely', []]]), S + 180_000, workflowPollers)).toEqual(new Map([['lonely', { reason: 'no_worker', lastPollAt: null }]]));
  });

  describe('status of a running backfill, from a client 3 minutes ahead', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it('warns of no silent workers when they poll', async () => {
      vi.spyOn(Date, 'now').mockReturnValue(S + 180_000);
      const progress = { backfillId: 'b1', state: 'running', paused: false, nodes: [{ id: 'a', running: 1, pending: 5 }] };
      const rpc: StatusReads = {
        describe: async () => ({ runId: 'r1', type: 'backfillWorkflow', status: WORKFLOW_EXECUTION_STATUS_RUNNING, taskQueue: 'backfill' }),
        query: async (_workflowId: string, query: string) => {
          if (query === 'progress') return progress;
          throw new Error('no carry in this test');
        },
        firstInput: async () => ({ spec: { nodes: [{ id: 'a', taskQueue: 'warehouse' }] }, range: {} }),
        taskFailure: async () => undefined,
        pollers: async (queue: string) => (queue === 'backfill' ? workflowPollers : polled(60_000)),
      };
      const status = await statusOf(rpc, 'b1');
      expect(status?.waiting).toEqual([]);
    });
  });
});
