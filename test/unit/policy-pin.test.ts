/**
 * A backfill admitted under a policy is judged again (a new run: resume, retry-failed; a
 * rollback) only by a worker with a policy: one without declines and says why; one with another
 * policy judges by its own (the rules in force now).
 */
import { describe, expect, it } from 'vitest';
import { judgementWait } from '../../client/activity-failing.ts';
import { ANY_POLICY, POLICY_HOLDER_SEEN_MS, POLICY_MISMATCH, UNKNOWN_PIN, hasPolicyHolder, pinnedPolicy, policyHolderIdentity, policyPinProblem } from '../../core/policy-pin.ts';

const base = { backfillId: 'orders-2024', queue: 'backfill' };

describe('policy pin', () => {
  it('the pin is the hash the carried governance was admitted under; no policy, or a hand-made non-string, pins nothing', () => {
    expect(pinnedPolicy({ policy: { hash: 'sha256:aa' } })).toBe('sha256:aa');
    expect(pinnedPolicy({ policy: { hash: null } })).toBeNull();
    expect(pinnedPolicy({ policy: { hash: 5 } })).toBeNull();
    expect(pinnedPolicy({ policy: { hash: '' } })).toBeNull();
    expect(pinnedPolicy({})).toBeNull();
    expect(pinnedPolicy(undefined)).toBeNull();
  });

  it('a worker with the pinned policy judges, and one with another (a policy changed on purpose); without a pin any worker does', () => {
    expect(policyPinProblem({ ...base, pinned: 'sha256:aa', own: 'sha256:aa' })).toBeNull();
    expect(policyPinProblem({ ...base, pinned: 'sha256:aa', own: 'sha256:bb' })).toBeNull();
    expect(policyPinProblem({ ...base, pinned: null, own: null })).toBeNull();
    expect(policyPinProblem({ ...base, pinned: null, own: 'sha256:aa' })).toBeNull();
  });

  it('a worker without a policy declines, naming the queue, the policy and the fix', () => {
    const none = policyPinProblem({ ...base, pinned: 'sha256:aa', own: null })!;
    expect(none).toMatch(/workflow task queue 'backfill' has no policy/);
    expect(none).toMatch(/backfill 'orders-2024' was admitted under policy sha256:aa/);
    expect(none).toMatch(/Give this worker the same --policy file/);
  });

  it('a backfill whose history is gone (pin unknown) is judged as pinned: a worker with any policy judges, one without declines and says why', () => {
    expect(policyPinProblem({ ...base, pinned: UNKNOWN_PIN, own: 'sha256:aa' })).toBeNull();
    const none = policyPinProblem({ ...base, pinned: UNKNOWN_PIN, own: null })!;
    expect(none).toMatch(/no longer keeps the history of backfill 'orders-2024', so whether a policy admitted it is unknown/);
    expect(none).toMatch(/Give this worker the same --policy file as the other workers of 'backfill'/);
    expect(none).toMatch(/where no worker has a policy, give them one/);
  });

  it('a first judgement a worker without a policy passed on is judged by any worker with one; one without declines and says why', () => {
    expect(policyPinProblem({ ...base, pinned: ANY_POLICY, own: 'sha256:aa' })).toBeNull();
    const none = policyPinProblem({ ...base, pinned: ANY_POLICY, own: null })!;
    expect(none).toMatch(/workflow task queue 'backfill' has no policy .*but other workers of the queue have one/);
    expect(none).toMatch(/does not judge backfill 'orders-2024'/);
    expect(none).toMatch(/Give this worker the same --policy file as the other workers of 'backfill'/);
  });

  it("a worker with a policy marks the identity it polls the policy queue with; only that mark, at the end, and lately, counts", () => {
    const now = Date.parse('2026-12-05T12:00:00Z');
    expect(hasPolicyHolder([{ identity: '12@host-a' }, { identity: policyHolderIdentity('13@host-b'), lastAccessMs: now - 5_000 }], now)).toBe(true);
    expect(hasPolicyHolder([{ identity: '12@host-a' }, { identity: '13@host-b' }], now)).toBe(false);
    expect(hasPolicyHolder([{ identity: '[policy] 12@host-a' }, { identity: '12@host-[policy]x' }], now)).toBe(false);
    expect(hasPolicyHolder([], now)).toBe(false);
    // The server lists a stopped worker for minutes: one not seen for longer than a long poll lasts does not count.
    expect(hasPolicyHolder([{ identity: policyHolderIdentity('13@host-b'), lastAccessMs: now - POLICY_HOLDER_SEEN_MS - 1 }], now)).toBe(false);
    expect(hasPolicyHolder([{ identity: policyHolderIdentity('13@host-b'), lastAccessMs: now - POLICY_HOLDER_SEEN_MS }], now)).toBe(true);
    expect(hasPolicyHolder([{ identity: policyHolderIdentity('13@host-b'), lastAccessMs: undefined }], now)).toBe(true);
  });

  it("status reads why a judgement waits from the pending activity's last failure, and only a PolicyMismatch", () => {
    const declined = { lastFailure: { message: 'this worker ... has no policy', applicationFailureInfo: { type: POLICY_MISMATCH } } };
    const other = { lastFailure: { message: 'boom', applicationFailureInfo: { type: 'Error' } } };
    expect(judgementWait([other, declined])).toBe('this worker ... has no policy');
    expect(judgementWait([other, { lastFailure: null }])).toBeUndefined();
    expect(judgementWait(undefined)).toBeUndefined();
  });
});
