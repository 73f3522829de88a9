import { describe, expect, it } from 'vitest';
import { FIRST_RUN, signedText, type SignatureCheck, type SignedSubject } from '../../core/approval.ts';
import { checkClaimed, claimUnknownCheck, signatureClaimKey } from '../../core/signature-claim.ts';
import { sha256Hex } from '../../core/hash.ts';

const subject = (overrides: Partial<SignedSubject> = {}): SignedSubject => ({
  action: 'start',
  backfillId: 'revenue-2024',
  namespace: 'default',
  planHash: 'sha256:plan',
  afterRun: FIRST_RUN,
  reason: 'finance restated Q1',
  signedAt: '2024-05-01T11:59:00.000Z',
  ...overrides,
});
const ok = (overrides: Partial<SignedSubject> = {}): Extract<SignatureCheck, { ok: true }> => ({
  ok: true,
  verified: { subject: subject(overrides), principals: ['alice@example.com'], fingerprint: 'SHA256:alice' },
});
const own = { workflowId: 'backfill/revenue-2024', runId: 'run-2' };

describe("a signed start's claim in the warehouse", () => {
  it('is keyed by the digest of the signed text alone (canonical), not by the armored signature (which may be re-wrapped)', () => {
    const text = signedText(subject());
    expect(signatureClaimKey(text)).toBe(`sha256:${sha256Hex(text)}`);
    expect(signatureClaimKey(signedText(subject({ afterRun: 'r1' })))).not.toBe(signatureClaimKey(text));
  });

  it('admits the run that holds the claim: a claim made again by a retried activity or a replay finds itself', () => {
    const check = ok();
    expect(checkClaimed(check, { holder: { ...own, claimedAt: '2024-05-01T12:00:00.000Z' } }, own)).toBe(check);
    expect(checkClaimed(check, { holder: { ...own, claimedAt: '2024-05-01T12:00:00.000Z' }, mine: true }, own)).toBe(check);
  });

  it('goes by whose the activity said the claim is, when it said: a reset run replays the answer under a run id of its own', () => {
    const check = ok();
    const recorded = { holder: { ...own, runId: 'run-before-the-reset', claimedAt: 't' }, mine: true };
    expect(checkClaimed(check, recorded, own)).toBe(check);
    expect(checkClaimed(check, { holder: { ...own, claimedAt: 't' }, mine: false }, own)).toMatchObject({ ok: false, code: 'already_used' });
  });

  it("refuses another run's copy, already_used, naming the run that used it and how to sign again", () => {
    expect(checkClaimed(ok(), { holder: { workflowId: own.workflowId, runId: 'run-1', claimedAt: '2024-05-01T12:00:00.000Z' } }, own)).toEqual({
      ok: false,
      code: 'already_used',
      message:
        'the signed start was used already by run run-1 (recorded in the warehouse at 2024-05-01T12:00:00.000Z, which keeps it even when the server no longer lists that run): ' +
        'a signature starts one run, once; to run it again, sign again (backfill start <spec> --id revenue-2024 --rerun --sign-key <your key>)',
    });
    // Under another workflow id (its own would have been refused other_backfill first), the workflow is named.
    expect(checkClaimed(ok({ action: 'resume', carryHash: 'sha256:c', afterRun: 'r0' }), { holder: { workflowId: 'backfill/x', runId: 'run-1', claimedAt: 't' } }, own)).toMatchObject({
      code: 'already_used',
      message: expect.stringMatching(/^the signed resume was used already by run run-1 of workflow backfill\/x .*\(backfill resume revenue-2024 --sign-key <your key>\)$/),
    });
  });

  it('leaves a refused check as it is', () => {
    const refused = { ok: false as const, code: 'expired', message: 'old' };
    expect(checkClaimed(refused, { holder: { ...own, runId: 'other', claimedAt: 't' } }, own)).toBe(refused);
  });

  it('refuses one whose claim could not be recorded (claim_unknown), naming the task queue, why, and how to send it again', () => {
    expect(claimUnknownCheck('activity ScheduleToClose timeout', subject({ action: 'retry-failed', carryHash: 'sha256:c' }), 'etl')).toEqual({
      ok: false,
      code: 'claim_unknown',
      message:
        "the workers of task queue 'etl' could not record in their warehouse that this signed retry-failed was used (activity ScheduleToClose timeout), so it is not known to be used once: nothing ran; " +
        "make sure those workers run and reach the backfill's warehouse, then sign and send it again (backfill retry-failed revenue-2024 --sign-key <your key>)",
    });
  });
});
