/** What status says of a running backfill no worker answers for: the worker to start, with what it needs. */
import { describe, expect, it } from 'vitest';
import { noAnswerError, noWorkerError } from '../../client/status-errors.ts';

describe('status without an answering worker', () => {
  it("names the workflow queue and the spec's transforms, whether no worker polls or the one that polled is silent", () => {
    const worker = "'backfill worker --workflow-queue q --transforms <the spec's transforms modules, if it lists any>'";
    expect(noWorkerError('b', 'q').message).toBe(`backfill 'b' is running but no worker polls its workflow task queue 'q': start one with ${worker}`);
    expect(noAnswerError('b', 'q')).toMatchObject({ code: 'timeout', message: `backfill 'b' is running but no worker answered within 15s: start one with ${worker}` });
  });

  it('leaves out the default workflow queue, as the worker commands of start and rollback do', () => {
    expect(noWorkerError('b', 'backfill').message).toMatch(/: start one with 'backfill worker --transforms <the spec's transforms modules, if it lists any>'$/);
  });
});
