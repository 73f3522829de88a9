/**
 * A flood of approvals sent as signals (core/refused-approvals.ts, patch approval-floods-bounded):
 * refused ones are counted and recorded as refused signals, a copy of one refused for good is
 * refused without a check, and a valid approval after them still lets the backfill go. An
 * approval sent as an update is recorded as before.
 */
import { describe, expect, it } from 'vitest';
import type { SignatureCheck } from '../../core/approval.ts';
import { AUDIT_KEEP } from '../../core/audit.ts';
import type { BackfillCoordinator } from '../../core/coordinator.ts';
import { expandPlan } from '../../core/plan.ts';
import type { PolicyInput } from '../../core/policy.ts';
import { REFUSED_APPROVALS_REMEMBERED, RefusedApprovals, refusalLasts, refusedApprovalKey } from '../../core/refused-approvals.ts';
import { REFUSED_TEXT } from '../../core/refused-signals.ts';
import { resolveSpec } from '../../core/spec.ts';
import { governedCoordinator } from './governed-coordinator.ts';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const spec = resolveSpec({ name: 'g', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' }, nodes: [{ id: 'a', transform: 'noop' }] });
const plan = expandPlan(spec);
const key = (c: string) => `AAAAC3NzaC1lZDI1NTE5AAAAI${c.repeat(43)}`;
const policy = { version: 1, approval: { datasets: ['*'], allowedSigners: [`starter ssh-ed25519 ${key('C')}`, `approver ssh-ed25519 ${key('D')}`] } } satisfies PolicyInput;

function awaitingApproval(): BackfillCoordinator {
  const c = governedCoordinator(spec, plan, policy, { backfillId: 'g', now: () => NOW });
  c.takeAudit();
  expect(c.isAwaitingApproval).toBe(true);
  return c;
}

const request = (n: number | string) => ({ text: `approve g, take ${n}`, signature: `-----BEGIN SSH SIGNATURE-----\n${n}\n-----END SSH SIGNATURE-----`, reason: 'looks fine' });
const bad: SignatureCheck = { ok: false, code: 'bad_signature', message: 'the signature does not match the text it came with' };
const valid = (principal: string): SignatureCheck => ({
  ok: true,
  verified: { subject: { action: 'approve', backfillId: 'g', namespace: 'default', planHash: 'sha256:plan', reason: 'looks fine', signedAt: new Date(NOW).toISOString() }, principals: [principal], fingerprint: `SHA256:${principal}` },
});
const MALLORY = { identity: 'mallory@host' };

/** What the workflow does with a signalled approval: refused again at once if it was refused for good, else checked (`check`: what the activity answers) and judged. */
function signalled(c: BackfillCoordinator, n: number | string, check: SignatureCheck, counter: { checks: number }) {
  const r = request(n);
  const again = c.refuseRepeatedApproval(r, MALLORY);
  if (again !== null) return again;
  counter.checks++;
  return c.approve(check, r.reason, MALLORY, c.approvalKey(r));
}

describe('which refusals last for the run', () => {
  it('those of the text and signature themselves and of who started it; not those time or the workers may lift, nor a plan that changed meanwhile', () => {
    for (const code of ['bad_signature', 'malformed_signature', 'unknown_signer', 'wrong_namespace', 'other_backfill', 'other_plan', 'other_namespace', 'malformed_text']) expect(refusalLasts(code, true)).toBe(true);
    for (const code of ['key_not_valid', 'not_verified']) expect(refusalLasts(code, true)).toBe(false);
    expect(refusalLasts('self_approval', false)).toBe(true);
    for (const code of ['expired', 'from_the_future', 'other_plan', 'not_awaiting_approval']) expect(refusalLasts(code, false)).toBe(false);
  });

  it('are keyed by the exact text and signature and the plan they were checked against', () => {
    const r = request(1);
    const k = refusedApprovalKey(r, 'sha256:plan');
    expect(refusedApprovalKey({ ...r }, 'sha256:plan')).toBe(k);
    expect(refusedApprovalKey(r, 'sha256:other')).not.toBe(k);
    expect(refusedApprovalKey({ ...r, text: `${r.text} ` }, 'sha256:plan')).not.toBe(k);
    // A reformatted copy of a signature is another key: a refused mangled copy never stands for the good one.
    expect(refusedApprovalKey({ ...r, signature: r.signature.replace('\n', '\n ') }, 'sha256:plan')).not.toBe(k);
  });

  it(`the newest ${REFUSED_APPROVALS_REMEMBERED} are remembered`, () => {
    const memory = new RefusedApprovals();
    for (let i = 0; i <= REFUSED_APPROVALS_REMEMBERED; i++) memory.remember(`k${i}`, { code: 'bad_signature', message: `${i}` });
    expect(memory.size).toBe(REFUSED_APPROVALS_REMEMBERED);
    expect(memory.find('k0')).toBeNull();
    expect(memory.find(`k${REFUSED_APPROVALS_REMEMBERED}`)).toEqual({ code: 'bad_signature', message: `${REFUSED_APPROVALS_REMEMBERED}` });
    // Remembered again: the newest, so the next one pushes out k2, not k1.
    memory.remember('k1', { code: 'bad_signature', message: 'again' });
    memory.remember('k-next', { code: 'bad_signature', message: 'next' });
    expect(memory.find('k1')?.message).toBe('again');
    expect(memory.find('k2')).toBeNull();
  });
});

describe('a flood of signalled approvals', () => {
  it('is recorded on the refused signals\' schedule; copies of a refused one are not checked again; a valid approval then lets the backfill go', () => {
    const c = awaitingApproval();
    const counter = { checks: 0 };
    // 3 distinct bad ones, then 97 copies of them.
    for (let i = 0; i < 100; i++) expect(signalled(c, i % 3, bad, counter)).toMatchObject({ accepted: false, code: 'bad_signature' });
    expect(counter.checks).toBe(3);
    const written = c.takeAudit();
    expect(written.map((e) => e.details.refusedSignal)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 18, 26, 42, 74]);
    expect(written.every((e) => e.action === 'approve' && e.outcome === 'refused' && e.identity === 'mallory@host' && !e.verified && e.details.signal === 'approve')).toBe(true);
    expect(written.slice(0, 3).map((e) => e.details.repeated ?? false)).toEqual([false, false, false]);
    expect(written[3]!.details).toMatchObject({ code: 'bad_signature', repeated: true, why: expect.stringMatching(/refused before, so it was not checked again/) });
    expect(written.at(-1)!.details.unrecorded).toBe(74 - 17);

    expect(signalled(c, 'good', valid('approver'), counter)).toEqual({ accepted: true, approver: 'approver' });
    expect(c.isAwaitingApproval).toBe(false);
    expect(c.takeAudit()).toMatchObject([{ action: 'approve', outcome: 'applied', identity: 'approver', verified: true }]);
  });

  it("a refusal's message, which the sender's text fills, is cut short in its entry and in what is remembered", () => {
    const c = awaitingApproval();
    const long: SignatureCheck = { ok: false, code: 'other_backfill', message: `the signature is for the backfill '${'x'.repeat(10_000)}'` };
    const counter = { checks: 0 };
    signalled(c, 1, long, counter);
    const again = signalled(c, 1, long, counter);
    expect(counter.checks).toBe(1);
    expect(again.accepted ? '' : again.message.length).toBeLessThan(REFUSED_TEXT.why + 100);
    for (const entry of c.takeAudit()) expect(String(entry.details.why).length).toBeLessThanOrEqual(REFUSED_TEXT.why + 1);
  });

  it("keeps the approval's reason where no signature names the sender (an unknown signer's was recorded as null)", () => {
    const c = awaitingApproval();
    const unknown: SignatureCheck = { ok: false, code: 'unknown_signer', message: 'the key is not among the allowed signers' };
    c.approve(unknown, 'looks good to me', { identity: 'root@vm' });
    c.approve(unknown, 'looks good to me', { identity: 'root@vm' }, c.approvalKey(request('u')));
    expect(c.takeAudit().map((e) => [e.identity, e.reason, e.details.code])).toEqual([
      ['root@vm', 'looks good to me', 'unknown_signer'],
      ['root@vm', 'looks good to me', 'unknown_signer'],
    ]);
  });

  it("a refused signal's declared reason is cut as any refused signal's", () => {
    const c = awaitingApproval();
    const bad: SignatureCheck = { ok: false, code: 'bad_signature', message: 'the signature does not match the text' };
    c.approve(bad, 'r'.repeat(2000), { identity: 'mallory@example.com', reason: 'r'.repeat(2000) }, c.approvalKey({ text: 'same', signature: 'sig' }));
    const [entry] = c.takeAudit();
    expect(entry!.reason!.length).toBeLessThanOrEqual(REFUSED_TEXT.reason + 1);
  });

  it('a refusal that may be lifted is not remembered: the same approval is checked again', () => {
    const c = awaitingApproval();
    const counter = { checks: 0 };
    const notYet: SignatureCheck = { ok: false, code: 'key_not_valid', message: 'key not valid now' };
    const failed: SignatureCheck = { ok: false, code: 'not_verified', message: 'the activity failed' };
    signalled(c, 1, notYet, counter);
    signalled(c, 1, failed, counter);
    expect(signalled(c, 1, valid('approver'), counter)).toMatchObject({ accepted: true });
    expect(counter.checks).toBe(3);
  });

  it("a self-approval lasts (who started the backfill is fixed): its copies are not checked again, and are recorded by the sender's declared identity", () => {
    const c = awaitingApproval();
    const counter = { checks: 0 };
    expect(signalled(c, 'self', valid('starter'), counter)).toMatchObject({ accepted: false, code: 'self_approval' });
    expect(signalled(c, 'self', valid('starter'), counter)).toMatchObject({ accepted: false, code: 'self_approval' });
    expect(counter.checks).toBe(1);
    expect(c.takeAudit().map((e) => [e.identity, e.verified, e.details.refusedSignal])).toEqual([
      ['starter', true, 1],
      ['mallory@host', false, 2],
    ]);
  });

  it("keeps operators' actions in the state's trail: refused approvals are dropped first", () => {
    const c = awaitingApproval();
    c.setRate(5, null, { identity: 'ops', reason: 'the first action' });
    for (let i = 0; i < 10; i++) c.approve(bad, 'looks fine', MALLORY, c.approvalKey(request(i)));
    for (let i = 0; i < AUDIT_KEEP - 5; i++) c.setRate(10 + i, null, { identity: 'ops', reason: 'tuning' });
    const kept = c.governed!.audit.recent();
    expect(kept[0]).toMatchObject({ action: 'set-rate', outcome: 'applied', reason: 'the first action' });
    expect(kept.filter((e) => e.outcome === 'refused')).toHaveLength(4);
  });

  it('an approval sent as an update is recorded and checked as before: not counted as a refused signal, not remembered', () => {
    const c = awaitingApproval();
    const r = request(1);
    for (let i = 0; i < 2; i++) c.approve(bad, r.reason, MALLORY);
    expect(c.refuseRepeatedApproval(r, MALLORY)).toBeNull();
    const written = c.takeAudit();
    expect(written).toHaveLength(2);
    for (const e of written) expect(e.details).not.toHaveProperty('refusedSignal');
    expect(c.governed!.toJSON().audit).not.toHaveProperty('refusedSignals');
  });
});
