/**
 * Refused control signals for the model test (model-world.ts): what anyone who can signal the
 * workflow (`temporal workflow signal`, any client) may send that the backfill must refuse, as
 * the signal handlers of workflows/backfill.ts receive it. Each payload is refused whatever the
 * backfill's state: a malformed one (wrong types, junk, values nested thousands deep, huge
 * strings, control characters), a reserved identity (`policy`, `canary.auto`), or a control
 * the model's policy refuses (a rate over its cap, a pause without the reason it wants, a budget
 * over its most, an approval of a backfill that waits for none), or an approval whose signature
 * check refuses it (CheckedApproval: what the `verifySignature` activity answers is made up here).
 */
import fc from 'fast-check';
import { SIGNATURE_REFUSALS, signedText, unverifiedCheck, type SignatureCheck, type SignedSubject } from '../../core/approval.ts';
import { CANARY_AUTO_IDENTITY, MAX_IDENTITY, MAX_REASON, POLICY_IDENTITY, REFUSED_SIGNALS_KEPT, type AuditEntry } from '../../core/audit.ts';
import type { ApprovalOutcome, BackfillCoordinator } from '../../core/coordinator.ts';
import type { ControlSignal } from '../../core/refused-signals.ts';

/** The model policy's cap on the backfill's rate, and the reason it wants for a pause (GovernanceCase.rules). */
export const RATE_CAP = 1000;
export const PAUSE_REASON_MIN = 5;

/** A burst of `count` refused signals (each picked from `seed` and its place), with a valid control after the first `valid` of them (null: none). */
export type RefusedSignalsAction = { kind: 'refusedSignals'; seed: number; count: number; valid: number | null };

export const refusedSignalsArbitrary: fc.Arbitrary<RefusedSignalsAction> = fc.record({
  seed: fc.nat(),
  // Mostly a few; sometimes enough to cross the first REFUSED_SIGNALS_KEPT and a few powers of two past them.
  count: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 2, arbitrary: fc.integer({ min: 5, max: 48 }) }),
  valid: fc.option(fc.nat(), { nil: null }),
}).map<RefusedSignalsAction>((r) => ({ kind: 'refusedSignals', seed: r.seed, count: r.count, valid: r.valid === null ? null : r.valid % (r.count + 1) }));

/** What the backfill knows that decides which refusals the model can count on. */
export type SignalContext = {
  governed: boolean;
  /** The policy caps the rate at RATE_CAP and wants a reason of PAUSE_REASON_MIN characters for a pause. */
  rules: boolean;
  budgets: { retries: boolean; cost: boolean };
  awaitingApproval: boolean;
};

/**
 * A signal to refuse: its arguments as the handler gets them, the identity its entry must show
 * (null: unknown), the codes it may be refused with, and (an approval that parses while the
 * backfill waits for one) what its signature check answers.
 */
export type RefusedSignalCase = { signal: ControlSignal; args: unknown[]; identity: string | null; codes: readonly string[]; what: string; approval?: CheckedApproval };

/** 6,000 levels deep: `JSON.parse` reads it, a recursive `JSON.stringify` overflows the stack on it. */
function nested(wrap: (inner: unknown) => unknown): unknown {
  let value: unknown = 0;
  for (let i = 0; i < 6000; i++) value = wrap(value);
  return value;
}
const DEEP_ARRAY = nested((inner) => [inner]);
const DEEP_OBJECT = nested((inner) => ({ a: inner }));
const CONTROL = '\u0000\u0001\u001b[2J\u001b]0;pwned\u0007\r\n';
/** The longest reason a control may give, nearly all of it characters JSON writes in six bytes. */
export const LONG_REASON = `ok ${'\u0001'.repeat(MAX_REASON - 3)}`;

/** Values no control takes where a rate, a concurrency, a budget change, a node or an approval goes (none is null: a node of null is the whole backfill). */
const JUNK_VALUES: readonly unknown[] = ['fast', '', {}, [], true, false, -1, 0, DEEP_ARRAY, DEEP_OBJECT, 'x'.repeat(100_000), CONTROL.repeat(5000), { rate: 5, budget: 'retries' }, ['n0'], { text: 7, signature: [] }];

/** A control's last argument, well-formed or not, and the identity a refused signal's entry keeps of it (declared, well-formed and not reserved; else null). */
const METAS: ReadonlyArray<{ meta: unknown; identity: string | null }> = [
  { meta: undefined, identity: null },
  // Reasons of control characters (six bytes each in JSON) make entries large enough to fill the trail's bytes.
  { meta: { identity: ' mallory@example.com ', reason: ` faster ${CONTROL.repeat(20)}` }, identity: 'mallory@example.com' },
  { meta: { identity: `${CONTROL}root`, reason: CONTROL.repeat(20) }, identity: `${CONTROL}root`.trim() },
  { meta: { identity: 'i'.repeat(MAX_IDENTITY + 1), reason: 'too long an identity' }, identity: null },
  { meta: { identity: 42, reason: {} }, identity: null },
  { meta: { reason: CONTROL.repeat(1000) }, identity: null },
  { meta: { identity: 'mallory@example.com', admin: true }, identity: 'mallory@example.com' },
  { meta: 'mallory', identity: null },
  { meta: DEEP_OBJECT, identity: null },
];

/** Last arguments every control refuses (`parseMeta`), and the identity a refused signal's entry keeps of each. */
const METAS_REFUSED: ReadonlyArray<{ meta: unknown; identity: string | null }> = [
  { meta: 'mallory', identity: null },
  { meta: ['bob'], identity: null },
  { meta: 7, identity: null },
  { meta: { identity: 42 }, identity: null },
  { meta: { identity: 'bob', reason: 'r'.repeat(MAX_REASON + 1) }, identity: 'bob' },
  { meta: { identity: 'i'.repeat(MAX_IDENTITY + 1) }, identity: null },
  { meta: { identity: 'mallory@example.com', admin: true }, identity: 'mallory@example.com' },
  { meta: DEEP_ARRAY, identity: null },
  { meta: { reason: CONTROL.repeat(1000) }, identity: null },
  // Its refusal names the unknown field, control characters and all.
  { meta: { [CONTROL.repeat(60)]: true, identity: 'eve' }, identity: 'eve' },
];

/** Identities no sender may declare, however written: the entry says the sender is unknown. */
const RESERVED = [POLICY_IDENTITY, ` ${POLICY_IDENTITY.toUpperCase()} `, CANARY_AUTO_IDENTITY, 'Canary.Auto\t'];

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length]!;

/**
 * The signals a backfill of `context` refuses in a way the model can count on: pause, resume and
 * approve only under a policy (a legacy run ignores what it never took); approvals three times as
 * often while it waits for one, so that their copies come again.
 */
function signalsOf(context: SignalContext): readonly ControlSignal[] {
  if (!context.governed) return ['setRate', 'setConcurrency', 'retryFailed', 'setBudget'];
  const governed: ControlSignal[] = ['pause', 'resume', 'setRate', 'setConcurrency', 'retryFailed', 'setBudget', 'approve'];
  return context.awaitingApproval ? [...governed, 'approve', 'approve'] : governed;
}

/** A well-formed approval's text (of no signature the model checks: refused before). */
const approvalText = () => signedText({ action: 'approve', backfillId: 'model', namespace: 'default', planHash: 'sha256:plan', reason: 'looked at it', signedAt: new Date(0).toISOString() });

/**
 * An approval the model signs (`copy`: which one; a copy of it is the same text and signature)
 * and what the `verifySignature` activity answers for it: refused (`code`), or verified and then
 * refused by the backfill itself (`signer`: whose key signed it). `lasting`: the model's own
 * account of which refusals cannot change in a run (core/refused-approvals.ts), whose copies the
 * run refuses again without a check.
 */
export type CheckedApproval = { copy: number; check: SignatureCheck; code: string; lasting: boolean; signer: string | null };

/** The model's clock at its start (model-world.ts): its steps move it on by minutes at most (the drain, which sends no signal, by days). */
export const MODEL_START = 1_000_000;
const HOUR = 3_600_000;

/** Refusals that time or the workers may lift: a copy is checked again. Every other lasts for the run. */
const LIFTED = ['key_not_valid', 'not_verified', 'expired', 'from_the_future'];

/** What the check of copy `copy % ANSWERS.length` answers: each refusal of the activity, its failure, and verified signatures the backfill refuses (its starter's, signed over an hour before or after the model's steps). */
const ANSWERS: ReadonlyArray<{ code: string; verified?: { signer: string; signedAt: number } }> = [
  ...SIGNATURE_REFUSALS.map((code) => ({ code })),
  { code: 'not_verified' },
  { code: 'self_approval', verified: { signer: 'starter', signedAt: MODEL_START } },
  { code: 'expired', verified: { signer: 'approver', signedAt: MODEL_START - 2 * HOUR } },
  { code: 'from_the_future', verified: { signer: 'approver', signedAt: MODEL_START + 2 * HOUR } },
];

/** Approvals the bursts share (every answer among them), a few a burst from any of them, so that copies come again in it and in later bursts, runs and resumes. */
const SHARED_COPIES = 20;
const COPIES_A_BURST = 5;

/** Senders' last arguments every control takes, and the identity an entry keeps of each. */
const APPROVAL_METAS: ReadonlyArray<{ meta: unknown; identity: string | null }> = [...METAS.slice(0, 3), { meta: { identity: 'ops@example.com', reason: LONG_REASON }, identity: 'ops@example.com' }];

/**
 * The approval signed as `copy`, sent with the `variant`th sender's meta: its text (a reason of
 * the longest sometimes) and signature, and the check's answer, whose message sometimes quotes a
 * long text of the sender's.
 */
function checkedApproval(copy: number, variant: number, awaiting: boolean): RefusedSignalCase {
  const answer = ANSWERS[copy % ANSWERS.length]!;
  const subject: SignedSubject = {
    action: 'approve',
    backfillId: 'model',
    namespace: 'default',
    planHash: 'sha256:plan',
    reason: copy % 3 === 2 ? LONG_REASON : 'looked at it',
    signedAt: new Date(answer.verified?.signedAt ?? MODEL_START).toISOString(),
  };
  const quoted = copy % 2 === 0 ? '' : `: the text names '${CONTROL.repeat(100)}'`;
  const check: SignatureCheck = answer.verified
    ? { ok: true, verified: { subject, principals: [answer.verified.signer], fingerprint: `SHA256:${answer.verified.signer}` } }
    : answer.code === 'not_verified'
      ? unverifiedCheck(`the model's activity timed out${quoted}`)
      : { ok: false, code: answer.code, message: `refused as ${answer.code}${quoted}` };
  const { meta, identity } = pick(APPROVAL_METAS, variant);
  return {
    signal: 'approve',
    args: [{ text: signedText(subject), signature: `model signature ${copy}` }, meta],
    identity,
    codes: [awaiting ? answer.code : 'approval_refused'],
    what: `an approval whose check answers ${answer.code} (copy ${copy})`,
    approval: { copy, check, code: answer.code, lasting: !LIFTED.includes(answer.code), signer: answer.verified?.signer ?? null },
  };
}

/** The `n`th refused signal of a burst from `seed`. */
export function refusedSignalCase(seed: number, n: number, context: SignalContext): RefusedSignalCase {
  const signals = signalsOf(context);
  const k = seed + n;
  const signal = pick(signals, k);
  const variant = Math.floor(k / signals.length);
  const kind = variant % 3;
  // Approvals whose signature is checked: while the backfill waits for one, in place of junk too. A burst in 50 sends fresh ones.
  if (signal === 'approve' && (kind === 2 || (kind === 0 && context.awaitingApproval))) {
    const copy = seed % 50 === 0 ? SHARED_COPIES + k : (k % COPIES_A_BURST) + (Math.floor(seed / 11) % (SHARED_COPIES - COPIES_A_BURST + 1));
    return checkedApproval(copy, variant, context.awaitingApproval);
  }
  if (kind === 2) {
    const policy = policyRefused(signal, variant, context);
    if (policy) return policy;
  }
  return kind === 1 ? reserved(signal, variant) : junk(signal, variant);
}

function junk(signal: ControlSignal, variant: number): RefusedSignalCase {
  const value = pick(JUNK_VALUES, variant);
  const codes = ['invalid_argument', 'unknown_node'];
  if (signal === 'pause' || signal === 'resume') {
    const { meta, identity } = pick(METAS_REFUSED, variant);
    return { signal, args: [meta], identity, codes, what: 'a malformed meta' };
  }
  const { meta, identity } = pick(METAS, Math.floor(variant / JUNK_VALUES.length));
  const args = signal === 'setRate' || signal === 'setConcurrency' ? [value, null, meta] : [value, meta];
  return { signal, args, identity, codes, what: 'a malformed value' };
}

function reserved(signal: ControlSignal, variant: number): RefusedSignalCase {
  const meta = { identity: pick(RESERVED, variant), ...(variant % 2 === 0 ? { reason: `I am the policy ${CONTROL.repeat(20)}` } : {}) };
  const valid: Record<ControlSignal, unknown[]> = {
    pause: [],
    resume: [],
    setRate: [5, null],
    setConcurrency: [2, null],
    retryFailed: [null],
    setBudget: [{ budget: 'retries', limit: 3 }],
    approve: [{ text: approvalText(), signature: 'ssh signature' }],
  };
  return { signal, args: [...valid[signal], meta], identity: null, codes: ['invalid_argument'], what: 'a reserved identity' };
}

/** A control the model's policy refuses (null when this backfill's has no rule that refuses it). */
function policyRefused(signal: ControlSignal, variant: number, context: SignalContext): RefusedSignalCase | null {
  if (!context.governed) return null;
  const ops = { identity: 'ops@example.com', reason: 'looked at it' };
  const violation = ['policy_violation'];
  switch (signal) {
    case 'setRate':
      return context.rules ? { signal, args: [RATE_CAP * 5, null, ops], identity: ops.identity, codes: violation, what: 'a rate over the cap' } : null;
    case 'pause': {
      if (!context.rules) return null;
      const meta = variant % 2 === 0 ? { identity: ops.identity, reason: 'x'.repeat(PAUSE_REASON_MIN - 1) } : { identity: ops.identity };
      return { signal, args: [meta], identity: ops.identity, codes: violation, what: 'a pause without its reason' };
    }
    case 'setBudget': {
      const budget = context.budgets.retries ? { budget: 'retries', limit: 5000 } : context.budgets.cost ? { budget: 'cost', limit: 10_000_000 } : null;
      return budget ? { signal, args: [budget, ops], identity: ops.identity, codes: violation, what: 'a budget over its most' } : null;
    }
    default:
      return null;
  }
}

/** How many signature checks (`verifySignature` activities) the approvals sent have run. */
export type Checks = { run: number };

/**
 * What the workflow's handler of `signal` calls (workflows/backfill.ts); a refusal throws a
 * BackfillError. An approval is checked (`answer`: what the check answers, counted in `checks`)
 * once it parses, unless the run refused the very same for good.
 */
export function sendSignal(parent: BackfillCoordinator, signal: ControlSignal, args: readonly unknown[], answer?: { check: SignatureCheck; checks: Checks }): unknown {
  switch (signal) {
    case 'pause':
      return parent.setPaused(true, args[0]);
    case 'resume':
      return parent.setPaused(false, args[0]);
    case 'setRate':
      return parent.setRate(args[0], args[1], args[2]);
    case 'setConcurrency':
      return parent.setConcurrency(args[0], args[1], args[2]);
    case 'retryFailed':
      return parent.retryFailed(args[0], args[1]);
    case 'setBudget':
      return parent.setBudget(args[0], args[1]);
    case 'approve':
      return signalledApproval(parent, args[0], args[1], answer);
  }
}

/** An approval signal as workflows/backfill.ts takes one (`approveSignalled`, `approve`): parsed, refused again at once if this run refused the very same for good, else checked and judged. */
function signalledApproval(parent: BackfillCoordinator, raw: unknown, meta: unknown, answer?: { check: SignatureCheck; checks: Checks }): ApprovalOutcome {
  const request = parent.parseApproval(raw, meta);
  const again = parent.refuseRepeatedApproval(request, meta);
  if (again !== null) return again;
  if (!answer) throw new Error(`the model sent an approval it has no check's answer for: ${request.text}`);
  const key = parent.approvalKey(request);
  answer.checks.run++;
  return parent.approve(answer.check, request.reason, meta, key);
}

/** Whether the `nth` refused signal of a backfill gets an entry: the first REFUSED_SIGNALS_KEPT, then those whose count past them is a power of two. */
export function keptOnSchedule(nth: number): boolean {
  const past = nth - REFUSED_SIGNALS_KEPT;
  return past <= 0 || (past & (past - 1)) === 0;
}

/** A refused signal's entry (core/refused-signals.ts), as `AuditTrail` tells it from an operator's. */
export const isRefusedSignalEntry = (entry: AuditEntry): boolean => entry.outcome === 'refused' && entry.details.refusedSignal !== undefined;

/** Whether `identity` reads as what the backfill did by itself. */
export const isReserved = (identity: string): boolean => [POLICY_IDENTITY, CANARY_AUTO_IDENTITY].includes(identity.trim().toLowerCase());
