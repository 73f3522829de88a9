/** What status says of a running backfill no worker answers for: the worker to start, with what it needs. */
import { describe, expect, it } from 'vitest';
import { busyRefusal, noAnswerError, noWorkerError, polledLately, unansweredError, WorkflowBusyError } from '../../client/status-errors.ts';

describe('status without an answering worker', () => {
  it("names the workflow queue and the spec's transforms, whether no worker polls or the one that polled is silent", () => {
    const worker = "'backfill worker --workflow-queue q --transforms <the spec's transforms modules, if it lists any>'";
    expect(noWorkerError('b', 'q').message).toBe(`backfill 'b' is running but no worker polls its workflow task queue 'q': start one with ${worker}`);
    expect(noAnswerError('b', 'q')).toMatchObject({ code: 'timeout', message: `backfill 'b' is running but no worker answered within 15s: start one with ${worker}` });
  });

  it('leaves out the default workflow queue, as the worker commands of start and rollback do', () => {
    expect(noWorkerError('b', 'backfill').message).toMatch(/: start one with 'backfill worker --transforms <the spec's transforms modules, if it lists any>'$/);
  });

  it('tells a busy workflow (the server says RESOURCE_EXHAUSTED, BusyWorkflow, while a worker polls) from one without a worker', () => {
    // As the SDK wraps it: a ServiceError whose cause is the gRPC error.
    const grpc = Object.assign(new Error('8 RESOURCE_EXHAUSTED: consistent query buffer is full, cannot accept new consistent queries'), {
      code: 8,
      details: 'consistent query buffer is full, cannot accept new consistent queries',
    });
    const wrapped = Object.assign(new Error('Failed to query workflow'), { cause: grpc });
    expect(busyRefusal(wrapped)).toBe('the server refused a query: consistent query buffer is full, cannot accept new consistent queries');
    expect(busyRefusal(new Error('deadline exceeded'))).toBeUndefined();
    // With no worker taking its pending task, status' own queries fill the buffer: that is no worker, not a busy one.
    expect(unansweredError('b', 'q', wrapped, [], [])).not.toBeInstanceOf(WorkflowBusyError);
    const now = Date.now();
    const error = unansweredError('b', 'q', wrapped, [{ identity: 'w', lastAccessMs: now - 9000 }], [{ identity: 'w', lastAccessMs: now - 10 }]);
    expect(error).toBeInstanceOf(WorkflowBusyError);
    expect(error).toMatchObject({ code: 'timeout' });
    expect(error.message).toMatch(/^backfill 'b' is running but its workflow is busy \(the server refused a query: consistent query buffer is full.*\): workers poll its workflow task queue 'q', so no worker is missing; try again$/);
    expect(error.message).not.toContain('start one');
  });

  it('calls an unanswered query busy when a worker polled the workflow queue while it waited, and keeps the no-worker advice when none did', () => {
    const now = Date.now();
    const timeout = new Error('deadline exceeded');
    expect(polledLately([{ identity: 'w', lastAccessMs: now - 5000 }], now)).toBe(true);
    expect(polledLately([{ identity: 'w', lastAccessMs: now - 3 * 60_000 }], now)).toBe(false);
    expect(polledLately(undefined, now)).toBe(false);
    const polled = (ms: number) => [{ identity: 'w', lastAccessMs: ms }];
    expect(unansweredError('b', 'q', timeout, polled(now - 20_000), polled(now - 1000))).toMatchObject({ why: 'no answer within 15s, while a worker polled its queue' });
    // A worker killed a moment ago is still listed, its last poll unchanged: no worker answered.
    for (const [before, after] of [[undefined, undefined], [[], []], [polled(now - 20_000), polled(now - 20_000)], [undefined, polled(now)]] as const) {
      const error = unansweredError('b', 'q', timeout, before, after);
      expect(error).not.toBeInstanceOf(WorkflowBusyError);
      expect(error.message).toBe(noAnswerError('b', 'q').message);
    }
  });
});
