/**
 * `Governance` (core/governance.ts): the policy's verdict on a start, the approvals it waits
 * for, the budgets it spends, and the checks and records of every control.
 */
import { describe, expect, it } from 'vitest';
import { unverifiedCheck, type SignatureCheck, type VerifiedSignature } from '../../core/approval.ts';
import { BackfillError } from '../../core/errors.ts';
import { Governance, type AdmissionInput } from '../../core/governance.ts';
import { parsePolicy, type PolicyInput } from '../../core/policy.ts';
import { resolveSpec } from '../../core/spec.ts';
import { thrownBackfillError } from './backfill-error.ts';

const key = (c: string) => `AAAAC3NzaC1lZDI1NTE5AAAAI${c.repeat(43)}`;
const NOW = Date.parse('2024-05-01T12:00:00Z');
const spec = resolveSpec({ name: 'g', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' }, nodes: [{ id: 'finance_orders', transform: 'noop' }] });

const POLICY: PolicyInput = {
  version: 1,
  caps: { backfill: { rate: 100 } },
  approval: { datasets: ['finance_*'], allowedSigners: [`alice@example.com ssh-ed25519 ${key('C')}`, `bob@example.com ssh-ed25519 ${key('D')}`] },
  budgets: { retries: { limit: 2, max: 10 } },
  reasons: { required: ['pause', 'set-budget'], minLength: 5 },
};

const input = (fields: Partial<AdmissionInput> = {}): AdmissionInput => ({
  backfillId: 'q1',
  policy: parsePolicy(POLICY),
  policyHash: 'sha256:policy',
  policyPath: '/etc/backfill.policy.yaml',
  spec,
  partitions: 10,
  limits: { rate: null, concurrency: null },
  overrides: {},
  planHash: 'sha256:plan',
  request: { identity: 'alice@example.com', reason: 'finance restated Q1' },
  startSignature: null,
  priority: { key: null, fairnessKey: null, fairnessWeight: null },
  now: NOW,
  ...fields,
});

const admitted = (fields: Partial<AdmissionInput> = {}) => {
  const verdict = Governance.admit(input(fields));
  if (!verdict.admitted) throw new Error(`refused: ${verdict.message}`);
  return verdict;
};

const signature = (principal: string, fields: Partial<VerifiedSignature['subject']> = {}): SignatureCheck => ({
  ok: true,
  verified: {
    subject: { action: 'approve', backfillId: 'q1', namespace: 'default', planHash: 'sha256:plan', reason: 'reviewed', signedAt: new Date(NOW).toISOString(), ...fields },
    principals: [principal],
    fingerprint: `SHA256:${principal}`,
  },
});

describe('Governance.admit', () => {
  it('refuses a start naming every rule it breaks', () => {
    const verdict = Governance.admit(
      input({
        limits: { rate: 500, concurrency: null },
        overrides: { finance_orders: { rate: 1000 } },
        priority: { key: null, fairnessKey: 'someone-else', fairnessWeight: 2 },
        startSignature: { ok: false, code: 'unknown_signer', message: 'not listed' },
      }),
    );
    expect(verdict.admitted).toBe(false);
    if (verdict.admitted) return;
    expect(verdict.violations.map((v) => v.rule)).toEqual(expect.arrayContaining(['start signature', 'caps.backfill.rate', 'fairness key']));
    expect(verdict.message).toMatch(/caps\.backfill\.rate/);
  });

  it("takes a fairness weight only with the backfill's id as its fairness key", () => {
    expect(admitted({ priority: { key: 1, fairnessKey: 'q1', fairnessWeight: 3 } }).governance.toJSON().priority).toEqual({ key: 1, fairnessWeight: 3 });
    expect(admitted({ priority: { key: 2, fairnessKey: null, fairnessWeight: null } }).governance.toJSON().priority).toEqual({ key: 2, fairnessWeight: null });
    expect(admitted({ priority: { key: null, fairnessKey: 'q1', fairnessWeight: null } }).admitted).toBe(true);
    for (const priority of [
      { key: null, fairnessKey: 'q2', fairnessWeight: 3 },
      { key: null, fairnessKey: null, fairnessWeight: 3 },
    ]) {
      const verdict = Governance.admit(input({ priority }));
      expect(verdict.admitted).toBe(false);
      if (!verdict.admitted) expect(verdict.violations.map((v) => v.rule)).toEqual(['fairness key']);
    }
  });

  it('admits one that waits for an approval, with the policy budgets, the cap as its rate and the starter as declared', () => {
    const { governance, limits } = admitted();
    expect(limits.rate).toBe(100);
    expect(governance.awaitingApproval).toBe(true);
    expect(governance.approvalReasons.join()).toMatch(/finance_orders, which always needs approval \(approval\.datasets\)/);
    expect(governance.starter).toEqual({ identity: 'alice@example.com', verified: false, signature: null });
    expect(governance.budgets.status('retries')).toMatchObject({ limit: 2, used: 0 });
    expect(governance.toJSON().policy.hash).toBe('sha256:policy');
  });

  it('takes a signed start\'s principal as the starter, proven', () => {
    const start = signature('alice@example.com', { action: 'start' });
    const { governance } = admitted({ startSignature: start, request: { identity: 'someone' } });
    expect(governance.starter).toMatchObject({ identity: 'alice@example.com', verified: true });
  });

  it('a resume goes on from what the ended run spent and its trail, but needs its own approval', () => {
    const first = admitted().governance;
    first.record('start', { identity: 'alice' }, NOW);
    const { governance } = admitted({ spent: { retries: 2, cost: null, costMetric: null }, audit: first.toJSON().audit });
    expect(governance.budgets.status('retries')).toMatchObject({ used: 2, reached: true });
    expect(governance.budgetHold).toMatch(/retries budget is spent/);
    expect(governance.audit.total).toBe(1);
    expect(governance.awaitingApproval).toBe(true);
  });
});

describe('approvals', () => {
  it('refuses a failed check with its code, self-approval by the declared starter, a stale one; accepts another signer once', () => {
    const { governance } = admitted();
    expect(governance.judgeApproval({ ok: false, code: 'unknown_signer', message: 'not listed' }, NOW)).toEqual({ accepted: false, code: 'unknown_signer', message: 'not listed' });
    expect(governance.judgeApproval(signature('alice@example.com'), NOW)).toMatchObject({ accepted: false, code: 'self_approval' });
    expect(governance.judgeApproval(signature('bob@example.com', { signedAt: new Date(NOW - 2 * 3_600_000).toISOString() }), NOW)).toMatchObject({ accepted: false, code: 'expired' });
    const decision = governance.judgeApproval(signature('bob@example.com'), NOW);
    expect(decision).toEqual({ accepted: true, approver: 'bob@example.com' });
    governance.approve('bob@example.com', NOW);
    expect(governance.awaitingApproval).toBe(false);
    expect(governance.judgeApproval(signature('bob@example.com'), NOW)).toMatchObject({ accepted: false, code: 'not_awaiting_approval', message: expect.stringMatching(/approved already by bob@example.com/) });
  });

  it('refuses an approval the workers could not verify, naming why and the fix; the backfill still waits', () => {
    const { governance } = admitted();
    const check = unverifiedCheck('Activity function verifySignature is not registered on this Worker');
    expect(governance.judgeApproval(check, NOW)).toEqual({
      accepted: false,
      code: 'not_verified',
      message: expect.stringMatching(/^the workflow workers could not verify its signature \(the verifySignature activity failed: Activity function verifySignature is not registered on this Worker\): nothing was approved and the backfill still waits; .*send the approval again$/),
    });
    expect(governance.awaitingApproval).toBe(true);
  });

  it('a new plan needs a new approval; the same plan does not', () => {
    const { governance } = admitted();
    governance.approve('bob@example.com', NOW);
    expect(governance.replacePlan('sha256:plan')).toBe(false);
    expect(governance.awaitingApproval).toBe(false);
    expect(governance.replacePlan('sha256:other')).toBe(true);
    expect(governance.awaitingApproval).toBe(true);
    expect(governance.planHash).toBe('sha256:other');
  });
});

describe('budgets, controls and the round trip', () => {
  it('a spent budget holds once (its pause is recorded once) until set-budget raises it', () => {
    const { governance } = admitted();
    const spent = (failedAttempts: number) => governance.spend({ failedAttempts, partitionSeconds: 0, rows: 0, reported: 0 });
    expect(spent(1)).toBeNull();
    expect(spent(1)).toMatch(/retries budget is spent: 2 of 2/);
    expect(spent(1)).toBeNull();
    expect(governance.budgetHold).not.toBeNull();
    governance.setBudget('retries', 5);
    expect(governance.budgetHold).toBeNull();
    expect(governance.budgets.status('retries')).toMatchObject({ used: 3, limit: 5 });
    expect(() => governance.setBudget('retries', -1)).toThrow(BackfillError);
  });

  it('checks controls against the policy: a required reason, a cap', () => {
    const { governance } = admitted();
    expect(thrownBackfillError(() => governance.check({ action: 'pause' }, spec))).toMatchObject({ code: 'policy_violation', message: expect.stringMatching(/pause needs a reason: add --reason/) });
    expect(thrownBackfillError(() => governance.check({ action: 'set-rate', rate: 500, reason: 'faster please' }, spec)).message).toMatch(/caps\.backfill\.rate/);
    expect(() => governance.check({ action: 'pause', reason: 'maintenance' }, spec)).not.toThrow();
    expect(() => governance.check({ action: 'resume' }, spec)).not.toThrow();
  });

  it('crosses continue-as-new whole (JSON)', () => {
    const { governance } = admitted();
    governance.record('pause', { identity: 'bob', reason: 'maintenance' }, NOW);
    governance.spend({ failedAttempts: 1, partitionSeconds: 0, rows: 0, reported: 0 });
    const again = Governance.fromJSON(JSON.parse(JSON.stringify(governance.toJSON())));
    expect(again.toJSON()).toEqual(governance.toJSON());
    expect(again.view(NOW, []).lastAction).toMatchObject({ action: 'pause', identity: 'bob', reason: 'maintenance' });
  });
});
