/** The backfill's side of set-queue-rate and set-budget: the judging queries answer and change nothing; the updates apply and record. */
import { describe, expect, it } from 'vitest';
import { BackfillCoordinator } from '../../core/coordinator.ts';
import { addFailures } from '../../core/failures.ts';
import { Governance } from '../../core/governance.ts';
import { expandPlan } from '../../core/plan.ts';
import { parsePolicy } from '../../core/policy.ts';
import type { NodeStats } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec } from '../../core/spec.ts';

const spec = resolveSpec({
  name: 'q',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' },
  nodes: [{ id: 'a', transform: 'noop', taskQueue: 'warehouse' }],
});
const plan = expandPlan(spec, {});
const STATS: NodeStats = { running: 0, rate: null, concurrency: 4, throttles: 0, completed: 0, firstStartedAt: null, lastFinishedAt: null };

function governed(rules: Record<string, unknown> = { caps: { taskQueues: [{ match: 'warehouse', rate: 40 }] } }): BackfillCoordinator {
  const c = new BackfillCoordinator(plan, { rate: null, concurrency: null });
  const policy = parsePolicy({ version: 1, ...rules });
  const admission = Governance.admit({
    backfillId: 'q', policy, policyHash: 'sha256:p', policyPath: 'p.yaml', spec, partitions: plan.totalPartitions, limits: c.controlState(), overrides: {},
    planHash: 'sha256:plan', request: { identity: 'starter' }, startSignature: null, priority: { key: null, fairnessKey: null, fairnessWeight: null }, now: 0,
  });
  if (!admission.admitted) throw new Error(admission.message);
  c.govern(admission.governance);
  c.takeAudit();
  return c;
}

describe('judgeQueueRate (set-queue-rate, first round)', () => {
  it('answers whether the queue is its own and how the policy judges the rate, and records nothing', () => {
    const c = governed();
    expect(c.judgeQueueRate({ queue: 'warehouse', rate: 40 }, { identity: 'ops' })).toEqual({ mine: true, refused: null });
    expect(c.judgeQueueRate({ queue: 'other', rate: 1000 }, { identity: 'ops' })).toEqual({ mine: false, refused: null });
    expect(c.judgeQueueRate({ queue: 'warehouse', rate: 41 }, { identity: 'ops' })).toEqual({
      mine: true,
      refused: { code: 'policy_violation', message: expect.stringContaining('above its cap of 40/s'), path: expect.any(String) },
    });
    expect(c.takeAudit()).toEqual([]);
    // The second round records it.
    expect(c.noteQueueRate({ queue: 'warehouse', rate: 40 }, { identity: 'ops' })).toBe(true);
    expect(c.takeAudit()).toMatchObject([{ action: 'set-queue-rate', details: { queue: 'warehouse', rate: 40 } }]);
  });
});

describe('judgeChange (set-budget and retry-failed --spec, first round)', () => {
  it('judges a budget change as the update would, and changes and records nothing', () => {
    const c = governed();
    const before = c.controlState();
    expect(c.judgeChange({ action: 'set-budget', budget: 'retries', limit: 500 }, { identity: 'ops' }, 'q')).toEqual({ refused: null });
    // This policy defines no cost budget: the update would refuse it, and so does the judgement.
    expect(c.judgeChange({ action: 'set-budget', budget: 'cost', limit: 2e12 }, { identity: 'ops' }, 'q')).toEqual({
      refused: { code: 'invalid_argument', message: expect.stringContaining('no cost budget'), path: 'budget' },
    });
    expect(c.judgeChange({ action: 'set-budget', budget: 'retries', limit: 1.5 }, { identity: 'ops' }, 'q').refused).toMatchObject({ code: 'invalid_argument' });
    expect(c.takeAudit()).toEqual([]);
    expect(c.controlState()).toEqual(before);
    c.setBudget({ budget: 'retries', limit: 500 }, { identity: 'ops' });
    expect(c.takeAudit()).toMatchObject([{ action: 'set-budget', details: { budget: 'retries', limit: 500 } }]);
  });
});

describe('judgeChange (retry-failed --spec, first round)', () => {
  it('judges a retry as the update would (a policy that requires a reason for it), and changes nothing', () => {
    const c = governed({ reasons: { required: ['retry'] } });
    expect(c.judgeChange({ action: 'retry' }, { identity: 'ops' }, 'q').refused).toMatchObject({ code: 'policy_violation', message: expect.stringMatching(/reason/) });
    // Nothing failed yet: a retry would retry nothing, and is refused (it was applied, and recorded as a retry of 0).
    expect(c.judgeChange({ action: 'retry', node: 'a' }, { identity: 'ops', reason: 'the fix is in' }, 'q').refused).toMatchObject({
      code: 'invalid_argument',
      message: "node 'a' of backfill 'q' has no failed partitions: there is nothing to retry (no node of it has any)",
    });
    expect(c.judgeChange({ action: 'retry' }, { identity: 'ops', reason: 'the fix is in' }, 'q').refused).toMatchObject({ message: "backfill 'q' has no failed partitions: there is nothing to retry" });
    c.releaseInitial();
    c.takeInitial('a');
    c.onReport({ node: 'a', done: RangeSet.of([0, 1]).toJSON(), failures: addFailures([], 'boom', 'Error', RangeSet.of([1, 2])), stats: STATS });
    expect(c.judgeChange({ action: 'retry', node: 'a' }, { identity: 'ops', reason: 'the fix is in' }, 'q')).toEqual({ refused: null });
    expect(c.judgeChange({ action: 'retry' }, { identity: 'ops', reason: 'the fix is in' }, 'q')).toEqual({ refused: null });
    expect(c.judgeChange({ action: 'retry', node: 'nope' }, { identity: 'ops', reason: 'r' }, 'q').refused).toMatchObject({ code: 'unknown_node' });
    expect(c.judgeChange({ action: 'drop-tables' }, { identity: 'ops' }, 'q').refused).toMatchObject({ code: 'invalid_argument', path: 'action' });
    c.takeAudit();
    // The handler still applies what it is given (histories hold retries of nothing): only the validator refuses.
    expect(c.retryFailed(null, { identity: 'ops', reason: 'the fix is in' })).toBe(1);
    expect(c.retryFailed(null, { identity: 'ops', reason: 'the fix is in' })).toBe(0);
    expect(() => c.validateRetry('q', null, { identity: 'ops', reason: 'the fix is in' })).toThrow(/there is nothing to retry/);
  });
});
