/**
 * What a caller of Temporal's own CLI can send in place of the client, and what a change of spec
 * can slip past: a start's governance request that is not what the client sends, a resume --spec
 * that drops a node's rate under a dataset cap, an approval checked against a plan replaced meanwhile.
 */
import { describe, expect, it } from 'vitest';
import type { SignatureCheck } from '../../core/approval.ts';
import { ANNOUNCED_CANCEL_WINDOW_MS, BackfillCoordinator, resumeCarry } from '../../core/coordinator.ts';
import { Governance, startRequestViolations, startTextTooLong, type AdmissionInput } from '../../core/governance.ts';
import { MAX_IDENTITY, MAX_REASON } from '../../core/audit.ts';
import { expandPlan } from '../../core/plan.ts';
import { parsePolicy, type PolicyInput } from '../../core/policy.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const specInput = (rate: number | null): SpecInput => ({
  name: 'g',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
  nodes: [{ id: 'finance_x', transform: 'noop', ...(rate !== null ? { rate } : {}) }],
});
const spec = resolveSpec(specInput(5));

function admit(policy: PolicyInput, request: unknown, fields: Partial<AdmissionInput> = {}) {
  return Governance.admit({
    backfillId: 'q1', policy: parsePolicy(policy), policyHash: null, policyPath: null, spec, partitions: 10, limits: { rate: null, concurrency: null }, overrides: {},
    planHash: 'sha256:plan', request: request as AdmissionInput['request'], startSignature: null, priority: { key: null, fairnessKey: null, fairnessWeight: null }, now: NOW, ...fields,
  });
}

describe("a start's governance request, as Temporal's CLI can send it", () => {
  const BUDGETS: PolicyInput = { version: 1, budgets: { retries: { limit: 5, max: 10 }, cost: { metric: 'rows', limit: 100, max: 1000 } } };

  it('a budget of null, text or 0 is refused, never read as no cap', () => {
    for (const budgets of [{ retries: null, cost: null }, { cost: 'unbounded' }, { retries: 0 }, { retries: 2.5 }, { cost: Number.POSITIVE_INFINITY }, [], null]) {
      const verdict = admit(BUDGETS, { identity: 'ops', budgets });
      expect(verdict.admitted, JSON.stringify(budgets)).toBe(false);
      if (!verdict.admitted) expect(verdict.message).toMatch(/budget|budgets/);
    }
    // Left out, or within the policy's most: the policy's limit, or what was asked.
    const plain = admit(BUDGETS, { identity: 'ops' });
    expect(plain.admitted && plain.governance.budgets.status('retries')?.limit).toBe(5);
    const asked = admit(BUDGETS, { identity: 'ops', budgets: { retries: 8, cost: 500 } });
    expect(asked.admitted && [asked.governance.budgets.status('retries')?.limit, asked.governance.budgets.status('cost')?.limit]).toEqual([8, 500]);
  });

  it('a reason or identity that is not text is refused (it made every workflow task of the start fail)', () => {
    const reasons: PolicyInput = { version: 1, reasons: { required: ['start'] } };
    expect(() => admit(reasons, { reason: 12345678901 })).not.toThrow();
    expect(admit(reasons, { reason: 12345678901 })).toMatchObject({ admitted: false, message: expect.stringMatching(/reason must be text/) });
    expect(admit(reasons, { identity: { name: 'x' }, reason: 'a good reason' })).toMatchObject({ admitted: false, message: expect.stringMatching(/identity must be text/) });
    expect(admit(reasons, { reason: 'a good reason' }).admitted).toBe(true);
  });

  it('a signature that is not its text and signature is refused before it is checked', () => {
    expect(startRequestViolations({ signature: { text: 5 } })).toEqual([expect.objectContaining({ rule: 'start signature' })]);
    expect(startRequestViolations({ signature: { text: 't', signature: 's' } })).toEqual([]);
    expect(startRequestViolations('junk')).toEqual([expect.objectContaining({ rule: 'start request' })]);
    // A reason or an identity longer than a control's is refused under the patch start-request-bounded.
    const long = { reason: 'r'.repeat(MAX_REASON + 1), identity: 'i'.repeat(MAX_IDENTITY + 1) };
    expect(startTextTooLong(long)).toBe(true);
    expect(startTextTooLong({ reason: 'r'.repeat(MAX_REASON), identity: 'i'.repeat(MAX_IDENTITY) })).toBe(false);
    expect(startTextTooLong('junk')).toBe(false);
    expect(startRequestViolations(long)).toEqual([]);
    expect(startRequestViolations(long, { bounded: true }).map((v) => v.message)).toEqual([
      `the start's reason is longer than ${MAX_REASON} characters (${MAX_REASON + 1}): keep it short`,
      `the start's identity is longer than ${MAX_IDENTITY} characters (${MAX_IDENTITY + 1}): keep it short`,
    ]);
  });
});

describe('resume --spec under a dataset cap', () => {
  it("a node the new spec leaves without a rate meets the cap's rate, as at the start (set-rate unlimited is refused too)", () => {
    const plan = expandPlan(spec, {});
    const c = new BackfillCoordinator(plan, { rate: 200, concurrency: null });
    const verdict = admit({ version: 1, caps: { datasets: [{ match: 'finance_*', rate: 10 }] } }, { identity: 'ops' });
    if (!verdict.admitted) throw new Error(verdict.message);
    c.govern(verdict.governance, { limits: verdict.limits, nodeRates: verdict.nodeRates });
    expect(c.controlState().nodes).toEqual([expect.objectContaining({ id: 'finance_x', rate: 5 })]);
    expect(() => c.setRate(null, 'finance_x', { identity: 'ops' })).toThrow(/caps\.datasets\[0\]\.rate/);
    c.replaceSpec(resolveSpec(specInput(null)), spec, { identity: 'ops' });
    expect(c.controlState().nodes).toEqual([expect.objectContaining({ id: 'finance_x', rate: 10 })]);
  });
});

describe('an approval checked while a new spec came', () => {
  it('is refused: it approves the plan it was signed for, not the new one', () => {
    const policy: PolicyInput = { version: 1, approval: { datasets: ['finance_*'], allowedSigners: [`bob@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${'D'.repeat(43)}`] } };
    const verdict = admit(policy, { identity: 'alice' });
    if (!verdict.admitted) throw new Error(verdict.message);
    const { governance } = verdict;
    const signed: SignatureCheck = {
      ok: true,
      verified: {
        subject: { action: 'approve', backfillId: 'q1', namespace: 'default', planHash: 'sha256:plan', reason: 'reviewed', signedAt: new Date(NOW).toISOString() },
        principals: ['bob@example.com'],
        fingerprint: 'SHA256:bob',
      },
    };
    expect(governance.judgeApproval(signed, NOW)).toMatchObject({ accepted: true });
    governance.replacePlan('sha256:new-plan');
    expect(governance.awaitingApproval).toBe(true);
    expect(governance.judgeApproval(signed, NOW)).toMatchObject({ accepted: false, code: 'other_plan', message: expect.stringMatching(/sha256:new-plan/) });
  });
});

describe('set-concurrency under a task queue cap', () => {
  const twoNodes = (concurrency: number) =>
    resolveSpec({
      name: 'q',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
      nodes: [
        { id: 'a', transform: 'noop', taskQueue: 'wh', concurrency },
        { id: 'b', transform: 'noop', taskQueue: 'wh', concurrency },
      ],
    });
  function governedOn(queueSpec: ReturnType<typeof twoNodes>, backfillConcurrency: number | null): BackfillCoordinator {
    const c = new BackfillCoordinator(expandPlan(queueSpec, {}), { rate: null, concurrency: backfillConcurrency });
    const verdict = admit({ version: 1, caps: { taskQueues: [{ match: 'wh', concurrency: 4 }] } }, { identity: 'ops' }, { spec: queueSpec, limits: { rate: null, concurrency: backfillConcurrency } });
    if (!verdict.admitted) throw new Error(verdict.message);
    c.govern(verdict.governance, { limits: verdict.limits, nodeRates: verdict.nodeRates });
    return c;
  }

  it("judges the queue's nodes together, as the start was judged: a node's own value under the cap is not enough", () => {
    const c = governedOn(twoNodes(2), null);
    expect(() => c.setConcurrency(4, 'a', { identity: 'ops' })).toThrow(/caps\.taskQueues\[0\]\.concurrency: with this change up to 6 partitions/);
    expect(c.setConcurrency(1, 'a', { identity: 'ops' }).nodes.find((n) => n.id === 'a')?.concurrency).toBe(1);
    expect(c.setConcurrency(3, 'b', { identity: 'ops' }).nodes.find((n) => n.id === 'b')?.concurrency).toBe(3);
  });

  it('a backfill-wide concurrency that lifts the bound is refused; lowering is always allowed', () => {
    const c = governedOn(twoNodes(4), 4);
    expect(() => c.setConcurrency(null, undefined, { identity: 'ops' })).toThrow(/up to 8 partitions/);
    expect(() => c.setConcurrency(6, undefined, { identity: 'ops' })).toThrow(/up to 6 partitions/);
    expect(c.setConcurrency(3, undefined, { identity: 'ops' }).concurrency).toBe(3);
    expect(c.setConcurrency(2, 'a', { identity: 'ops' }).nodes.find((n) => n.id === 'a')?.concurrency).toBe(2);
  });
});

describe('backfill cancel: who and why are recorded when the cancellation comes', () => {
  const governed = (clock: { now: number }, policy: PolicyInput = { version: 1 }) => {
    const c = new BackfillCoordinator(expandPlan(spec, {}), { rate: null, concurrency: null }, undefined, { now: () => clock.now });
    const verdict = admit(policy, { identity: 'ops' });
    if (!verdict.admitted) throw new Error(verdict.message);
    c.govern(verdict.governance, { limits: verdict.limits, nodeRates: verdict.nodeRates });
    c.takeAudit();
    return c;
  };
  const cancels = (c: BackfillCoordinator) => c.takeAudit().filter((e) => e.action === 'cancel').map((e) => ({ identity: e.identity, reason: e.reason, details: e.details }));

  it("an announcement followed by its cancellation records the announcer's who and why, once", () => {
    const clock = { now: NOW };
    const c = governed(clock);
    c.announceCancel({ identity: 'alice@example.com', reason: 'wrong source' });
    expect(cancels(c)).toEqual([]);
    clock.now += 2_000;
    c.noteCancelCame();
    expect(cancels(c)).toEqual([{ identity: 'alice@example.com', reason: 'wrong source', details: { requested: true } }]);
  });

  it('an announcement no cancellation follows records nothing; a cancellation long after it is nobody\'s, not the announcer\'s', () => {
    const clock = { now: NOW };
    const c = governed(clock);
    c.announceCancel({ identity: 'alice@example.com', reason: 'wrong source' });
    clock.now += ANNOUNCED_CANCEL_WINDOW_MS + 1;
    expect(cancels(c)).toEqual([]);
    c.noteCancelCame();
    expect(cancels(c)).toEqual([{ identity: expect.stringMatching(/^unknown/), reason: null, details: { requested: true, announced: false } }]);
  });

  it('an announcement crosses a continue-as-new: the cancellation that comes in the next run is the announcer\'s; a resumed run starts without it', () => {
    const clock = { now: NOW };
    const c = governed(clock);
    c.announceCancel({ identity: 'alice@example.com', reason: 'wrong source' });
    const carry = c.toCarry();
    expect(carry.announcedCancel).toEqual({ meta: { identity: 'alice@example.com', reason: 'wrong source' }, at: NOW });
    const next = new BackfillCoordinator(expandPlan(spec, {}), { rate: null, concurrency: null }, carry, { now: () => clock.now });
    next.govern(Governance.fromJSON(carry.governance!));
    clock.now += 2_000;
    next.noteCancelCame();
    expect(cancels(next)).toEqual([{ identity: 'alice@example.com', reason: 'wrong source', details: { requested: true } }]);
    const full = { ...carry, runKey: 'r', childrenRunning: true, startedAt: NOW, runs: 1 };
    expect(resumeCarry(full)).not.toHaveProperty('announcedCancel');
    // A carry anyone may write: an announcement that does not parse is none.
    const forged = new BackfillCoordinator(expandPlan(spec, {}), { rate: null, concurrency: null }, { ...carry, announcedCancel: { meta: { identity: 7 }, at: NOW } as never }, { now: () => clock.now });
    expect(forged.toCarry()).not.toHaveProperty('announcedCancel');
  });

  it('a staged decision that landed while the cancel waited: one that ended the backfill leaves the cancel refused, with why; else a note', () => {
    const clock = { now: NOW };
    const c = governed(clock);
    c.announceCancel({ identity: 'alice@example.com', reason: 'wrong source' });
    c.noteCancelCame({ note: 'the staged versions were published before the cancel took effect', ended: true });
    const [refused] = c.takeAudit();
    expect(refused).toMatchObject({ action: 'cancel', outcome: 'refused', identity: 'alice@example.com', details: { requested: true, why: 'the staged versions were published before the cancel took effect' } });
    c.noteCancelCame({ note: "the canary's slice was published before the cancel took effect; the rest does not run", ended: false });
    expect(c.takeAudit()).toEqual([expect.objectContaining({ outcome: 'applied', details: { requested: true, note: "the canary's slice was published before the cancel took effect; the rest does not run" } })]);
  });

  it('an announcement the policy refuses (no reason) is refused and kept for nothing', () => {
    const clock = { now: NOW };
    const c = governed(clock, { version: 1, reasons: { required: ['cancel'] } });
    expect(() => c.announceCancel({ identity: 'bob@laptop' })).toThrow(/reason/);
    c.noteCancelCame();
    expect(cancels(c)).toEqual([expect.objectContaining({ identity: expect.stringMatching(/^unknown/), details: { requested: true, announced: false } })]);
  });
});
