/**
 * What a run's start is in the audit trail: a start, a resume, or the new run `retry-failed`
 * starts of an ended backfill (with the nodes a new spec changed). The client says so in the
 * start's input, which anyone may write with Temporal's CLI: what is not the client's shape, or
 * names a node the backfill does not have, is refused naming the field.
 */
import { describe, expect, it } from 'vitest';
import { describeChange } from '../../core/audit.ts';
import { BackfillError } from '../../core/errors.ts';
import { parseStartAction } from '../../core/start-action.ts';

const nodes = ['orders', 'daily', 'weekly'];

const refusal = (request: unknown): BackfillError => {
  try {
    parseStartAction(request as Parameters<typeof parseStartAction>[0], nodes);
  } catch (error) {
    expect(error).toBeInstanceOf(BackfillError);
    return error as BackfillError;
  }
  throw new Error(`expected ${JSON.stringify(request)} to be refused`);
};

describe('parseStartAction', () => {
  it('a start, a resume, and the new run of a retry-failed with the nodes its spec changed', () => {
    expect(parseStartAction({}, nodes)).toEqual({ action: 'start', details: {} });
    expect(parseStartAction({ action: 'start' }, nodes)).toEqual({ action: 'start', details: {} });
    expect(parseStartAction({ action: 'resume' }, nodes)).toEqual({ action: 'resume', details: {} });
    expect(parseStartAction({ action: 'resume', resumeRequest: { specChanged: ['daily'] } }, nodes)).toEqual({ action: 'resume', details: { specChanged: 'daily' } });
    expect(parseStartAction({ action: 'resume', resumeRequest: { retryFailed: {} } }, nodes)).toEqual({ action: 'retry-failed', details: {} });
    expect(parseStartAction({ action: 'resume', resumeRequest: { retryFailed: { node: 'daily' }, specChanged: ['daily', 'weekly', 'daily'] } }, nodes)).toEqual({
      action: 'retry-failed',
      details: { node: 'daily', specChanged: 'daily, weekly' },
    });
    // The limits the new run was given: which ones, for its entry to record the run's own.
    expect(parseStartAction({ action: 'resume', resumeRequest: { limits: { rate: 20 } } }, nodes)).toEqual({ action: 'resume', details: {}, limitsSet: ['rate'] });
    expect(parseStartAction({ action: 'resume', resumeRequest: { retryFailed: {}, limits: { rate: null, concurrency: 2 } } }, nodes)).toEqual({
      action: 'retry-failed',
      details: {},
      limitsSet: ['rate', 'concurrency'],
    });
    // A new spec that changed no node is still a new spec.
    expect(parseStartAction({ action: 'resume', resumeRequest: { retryFailed: {}, specChanged: [] } }, nodes)).toEqual({ action: 'retry-failed', details: { specChanged: '' } });
  });

  it('refuses what the client never sends, naming the field, so a hand-made start cannot write any action into the trail', () => {
    expect(refusal({ action: 'approve' })).toMatchObject({ code: 'invalid_argument', path: 'governance.action' });
    expect(refusal({ action: 'approve' }).message).toMatch(/governance\.action must be 'start' or 'resume'/);
    expect(refusal({ action: 'start', resumeRequest: { retryFailed: {} } }).message).toMatch(/governance\.resumeRequest is only for a new run of an ended backfill/);
    expect(refusal({ resumeRequest: { retryFailed: {} } }).path).toBe('governance.resumeRequest');
    expect(refusal({ action: 'resume', resumeRequest: { retryFailed: { node: 'nope' } } })).toMatchObject({ path: 'governance.resumeRequest.retryFailed.node' });
    expect(refusal({ action: 'resume', resumeRequest: { retryFailed: { node: 'nope' } } }).message).toMatch(/names node 'nope', which this backfill does not have/);
    expect(refusal({ action: 'resume', resumeRequest: { specChanged: ['orders', 'nope'] } }).path).toBe('governance.resumeRequest.specChanged');
    expect(refusal({ action: 'resume', resumeRequest: { specChanged: 'daily' } }).path).toBe('governance.resumeRequest.specChanged');
    expect(refusal({ action: 'resume', resumeRequest: { retryFailed: { node: 3 } } }).path).toBe('governance.resumeRequest.retryFailed.node');
    expect(refusal({ action: 'resume', resumeRequest: { retryFailed: true } }).path).toBe('governance.resumeRequest.retryFailed');
    expect(refusal({ action: 'resume', resumeRequest: { retried: 4 } }).message).toMatch(/unknown field\(s\) 'retried'/);
    expect(refusal({ action: 'resume', resumeRequest: { limits: { rate: 'fast' } } }).path).toBe('governance.resumeRequest.limits.rate');
    expect(refusal({ action: 'resume', resumeRequest: { limits: { budget: 3 } } }).path).toBe('governance.resumeRequest.limits');
  });
});

describe('how a new run of an ended backfill reads in the audit trail', () => {
  const applied = (action: 'start' | 'resume' | 'retry-failed', details: Record<string, string | number | boolean | null>) => describeChange({ action, outcome: 'applied', details });

  it('a retry-failed names the node and the nodes its new spec changed; a resume --spec the nodes it changed', () => {
    expect(applied('retry-failed', { resumed: true, partitions: 22, policyHash: null, node: 'daily', specChanged: 'daily' })).toBe(
      "failed partitions of node daily and those blocked behind them run again in a new run (of the backfill's 22 partitions, the published ones skipped), a new spec that changes daily",
    );
    expect(applied('retry-failed', { resumed: true, partitions: 1500 })).toBe("failed partitions and those blocked behind them run again in a new run (of the backfill's 1,500 partitions, the published ones skipped)");
    expect(applied('retry-failed', { resumed: true, partitions: 3, specChanged: '' })).toBe(
      "failed partitions and those blocked behind them run again in a new run (of the backfill's 3 partitions, the published ones skipped), a new spec that changes no node",
    );
    expect(applied('resume', { resumed: true, partitions: 12, specChanged: 'orders, daily', priority: 2 })).toBe("resumed: a new run over the backfill's 12 partitions (those published already skipped), a new spec that changes orders, daily, priority 2");
  });

  it("a resume control (of a paused backfill) says it un-paused: it is not a run's start", () => {
    expect(applied('resume', { paused: false, previous: true })).toBe('resumed: new partitions start again');
  });
});

describe('parseStartAction of a start without a carry', () => {
  // The audit trail said 'resumed', or 'failed partitions of node orders run again in a new run', of a first start.
  it('refuses a resume or a retry-failed: a new run of an ended backfill starts from its carry', () => {
    const requests: Parameters<typeof parseStartAction>[0][] = [{ action: 'resume' }, { action: 'resume', resumeRequest: { retryFailed: { node: 'orders' } } }, { action: 'resume', resumeRequest: { specChanged: ['daily'] } }];
    for (const request of requests) {
      expect(() => parseStartAction(request, nodes, { carried: false })).toThrow("the start's governance.action is 'resume', but the start has no carry");
      expect(parseStartAction(request, nodes, { carried: true }).action).not.toBe('start');
    }
    expect(parseStartAction({ action: 'start' }, nodes, { carried: false })).toEqual({ action: 'start', details: {} });
  });
});
