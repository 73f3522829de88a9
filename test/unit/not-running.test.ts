/**
 * A control sent to a backfill that ended is refused naming how the backfill ended (its result's
 * state: discarded, completed with failures), not its workflow's status on the server (completed).
 */
import { describe, expect, it } from 'vitest';
import { notRunningError } from '../../client/ended.ts';
import type { BackfillState } from '../../core/protocol.ts';
import { fakeBackfillClient, noDeadline } from './fake-backfill-client.ts';

/** A client of one backfill whose latest run closed with the server's `status` and, when COMPLETED, the result's `state`. */
function endedAs(status: string, state?: BackfillState, staged?: { phase: string; decision?: { by: string } }) {
  const handle = {
    describe: async () => ({ type: 'backfillWorkflow', status: { name: status }, runId: 'r1', taskQueue: 'q', startTime: new Date() }),
    result: async () => ({ state, progress: { state, nodes: [] }, carry: staged ? { staged } : {} }),
    query: () => Promise.reject(new Error('no worker')),
  };
  return fakeBackfillClient({ client: { workflow: { getHandle: () => handle }, withDeadline: noDeadline, options: { identity: 'alice@host' } }, identity: 'alice@host' });
}

describe('controls of a backfill that ended', () => {
  it("name the backfill's own state, as status shows it", async () => {
    const discarded = endedAs('COMPLETED', 'discarded');
    const refusal = { code: 'not_running', message: "backfill 'st-1' is not running (it ended discarded)" };
    await expect(discarded.pause('st-1')).rejects.toMatchObject(refusal);
    await expect(discarded.setRate('st-1', 5)).rejects.toMatchObject(refusal);
    // A publish of one never staged says so, and what undoes what it published (it said only that it was not running).
    await expect(endedAs('COMPLETED', 'completed').decideStaged('st-1', 'publish')).rejects.toMatchObject({
      code: 'not_staged',
      message: "backfill 'st-1' was not started with --stage: each partition was published as it finished (it ended completed), so there is nothing to publish (undo it with 'backfill rollback st-1')",
    });
    // A staged backfill whose decision was taken says so, and by whom: not that it is not running.
    const decided = endedAs('COMPLETED', 'discarded', { phase: 'discarded', decision: { by: 'bob@host' } });
    await expect(decided.decideStaged('st-1', 'publish')).rejects.toMatchObject({
      code: 'already_decided',
      message: "backfill 'st-1': the staged versions were discarded already (by bob@host); nothing is left to decide",
    });
    await expect(decided.pause('st-1')).rejects.toMatchObject(refusal);
    const published = endedAs('COMPLETED', 'completed', { phase: 'published', decision: { by: 'bob@host' } });
    await expect(published.decideStaged('st-1', 'discard')).rejects.toMatchObject({
      code: 'already_decided',
      message: "backfill 'st-1': the staged versions were published already (by bob@host): to undo the publish, backfill rollback st-1",
    });
    await expect(discarded.approve('st-1', { reason: 'ok', signKey: 'k' })).rejects.toMatchObject(refusal);
    await expect(discarded.cancel('st-1')).rejects.toMatchObject(refusal);
    await expect(endedAs('COMPLETED', 'completed_with_failures').pause('f-2')).rejects.toMatchObject({ message: "backfill 'f-2' is not running (it ended completed with failures)" });
    await expect(endedAs('CANCELLED').setConcurrency('c-1', 2)).rejects.toMatchObject({ message: "backfill 'c-1' is not running (it ended cancelled)" });
  });

  it('a cancel of one the server terminated says what frees its datasets', async () => {
    await expect(endedAs('TERMINATED').cancel('t-1')).rejects.toMatchObject({
      code: 'not_running',
      message: expect.stringMatching(/^backfill 't-1' is not running \(it ended terminated\); a termination \(or a workflow timeout\) skips its cleanup.*'backfill resume t-1' then 'backfill cancel t-1'/),
    });
    expect(notRunningError('t-1', 'timed_out').message).toBe("backfill 't-1' is not running (it ended timed out)");
  });
});
