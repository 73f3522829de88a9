/**
 * What an approval (or a signed start) says, as the text its signer signs, and the pure
 * decisions around it: the plan's hash, whether a verified approval may let a backfill go.
 *
 * The signed text is canonical: one field a line, in a fixed order, each value JSON-quoted,
 * so that a text parses to one subject and renders back to the same bytes. The signature
 * itself (SSHSIG, `ssh-keygen -Y sign -n backfill`) is checked in an activity
 * (activities/approval.ts); this module never sees a key.
 */
import { canonicalJson } from './canonical.ts';
import { sha256Hex } from './hash.ts';
import type { RangesJSON } from './ranges.ts';
import type { PartitionRange, ResolvedSpec } from './spec.ts';

/** The SSHSIG namespace of every backfill signature: a signature made for git (or anything else) does not count. */
export const SIGNATURE_NAMESPACE = 'backfill';

export const SIGNED_ACTIONS = ['approve', 'start', 'resume', 'retry-failed'] as const;
export type SignedAction = (typeof SIGNED_ACTIONS)[number];

/** The actions that start a new run of an ended backfill: their text names the carry it goes on from too. */
const GOES_ON = ['resume', 'retry-failed'] as const satisfies readonly SignedAction[];
const goesOn = (action: string) => (GOES_ON as readonly string[]).includes(action);

export type SignedSubject = {
  action: SignedAction;
  backfillId: string;
  /** The Temporal namespace the backfill runs in: an approval for staging is not one for production. */
  namespace: string;
  planHash: string;
  /**
   * A resume or retry-failed: `carryHash` of the carry the new run starts from (what the ended run
   * had done, and what runs again), so that the signature goes on from that end only. Absent from
   * the other actions.
   */
  carryHash?: string;
  reason: string;
  /** When it was signed (ISO 8601, UTC): an old signature cannot be replayed past the policy's maximum age. */
  signedAt: string;
};

const HEADER = 'backfill signature v1';
type Field = readonly [string, keyof SignedSubject];
const BEFORE_CARRY: readonly Field[] = [
  ['action', 'action'],
  ['backfill', 'backfillId'],
  ['namespace', 'namespace'],
  ['plan', 'planHash'],
];
const AFTER_CARRY: readonly Field[] = [
  ['reason', 'reason'],
  ['signed-at', 'signedAt'],
];

/** The lines of a text of `action`, in order: a resume's and a retry-failed's have `carry` after `plan`. */
function fieldsOf(action: string): readonly Field[] {
  return [...BEFORE_CARRY, ...(goesOn(action) ? ([['carry', 'carryHash']] as const) : []), ...AFTER_CARRY];
}

/** The exact text a signer signs. */
export function signedText(subject: SignedSubject): string {
  return `${HEADER}\n${fieldsOf(subject.action).map(([label, key]) => `${label}: ${JSON.stringify(subject[key] ?? '')}`).join('\n')}\n`;
}

/** The action an `action: "..."` line names, which decides the lines that follow (none when it names none). */
function actionOf(line: string): string {
  try {
    const value: unknown = JSON.parse(line.slice('action: '.length));
    return typeof value === 'string' ? value : '';
  } catch {
    return '';
  }
}

/** The subject of a signed text, or why it is not one (it must render back to itself). */
export function parseSignedText(text: string): SignedSubject | { error: string } {
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return { error: `does not start with '${HEADER}': sign the text backfill approve (or start, resume or retry-failed with --sign-key) prints` };
  const values: Partial<Record<keyof SignedSubject, string>> = {};
  for (const [i, [label, key]] of fieldsOf(actionOf(lines[1] ?? '')).entries()) {
    const line = lines[i + 1] ?? '';
    const prefix = `${label}: `;
    if (!line.startsWith(prefix)) return { error: `line ${i + 2} should be '${label}: "..."'` };
    let value: unknown;
    try {
      value = JSON.parse(line.slice(prefix.length));
    } catch {
      return { error: `line ${i + 2} (${label}) is not a quoted string` };
    }
    if (typeof value !== 'string') return { error: `line ${i + 2} (${label}) is not a quoted string` };
    values[key] = value;
  }
  if (!(SIGNED_ACTIONS as readonly string[]).includes(values.action!)) return { error: `action '${values.action}' is not one of ${SIGNED_ACTIONS.join(', ')}` };
  if (Number.isNaN(Date.parse(values.signedAt!))) return { error: `signed-at '${values.signedAt}' is not a time` };
  const subject = values as SignedSubject;
  if (signedText(subject) !== text) return { error: 'is not in canonical form (extra lines or spacing): sign the text exactly as printed' };
  return subject;
}

/**
 * `sha256:<hex>` over the carry a new run of an ended backfill starts from, in canonical JSON (a
 * field left undefined counts as absent, as it is once sent): a resume's signature covers it.
 */
export function carryHash(carry: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(carry))}`;
}

/** What decides what a backfill runs: approving a plan approves exactly this. */
export type PlanIdentity = {
  spec: ResolvedSpec;
  range: PartitionRange;
  /** Partitions skipped from the start (`--only-changed`), by node. */
  skip?: Record<string, RangesJSON>;
  /** Staged (published later) rather than published as it goes. */
  stage?: boolean;
  /** The start's `--canary` (a slice staged first), as the start input gives it; absent without one. */
  canary?: unknown;
};

/**
 * `sha256:<hex>` over the resolved spec, the range and what is skipped, staged or a canary, in
 * canonical JSON. Limits (rate, concurrency) are not in it: they change how fast, not what,
 * and the policy caps them at every change.
 */
export function planHash(plan: PlanIdentity): string {
  const identity = {
    v: 1,
    spec: plan.spec,
    range: { from: plan.range.from ?? null, to: plan.range.to ?? null },
    skip: plan.skip ?? {},
    stage: plan.stage === true,
    // Only when given, so that the hash of a start without a canary stays what it was.
    ...(plan.canary !== undefined && plan.canary !== null ? { canary: plan.canary } : {}),
  };
  return `sha256:${sha256Hex(canonicalJson(identity))}`;
}

/** A signature the approval activity verified: who signed (by the allowed signers) and what. */
export type VerifiedSignature = {
  subject: SignedSubject;
  /** The principals of the allowed-signers line whose key made it; the first names the signer. */
  principals: string[];
  /** `SHA256:…` of the signing key, as ssh-keygen -l prints it. */
  fingerprint: string;
};

/** What the signature check (the `verifySignature` activity) answered: the verified signature, or why not (a code and a message that names the fix). */
export type SignatureCheck = { ok: true; verified: VerifiedSignature } | { ok: false; code: string; message: string };

/**
 * The check of an approval the workers could not verify: the `verifySignature` activity failed
 * for good (`cause`: why), so it is refused like a bad signature, and the backfill goes on waiting.
 */
export function unverifiedCheck(cause: string): SignatureCheck {
  return {
    ok: false,
    code: 'not_verified',
    message:
      `the workflow workers could not verify its signature (the verifySignature activity failed: ${cause}): nothing was approved and the backfill still waits; ` +
      'see the workers\' logs, fix them, then send the approval again',
  };
}

export type ApprovalDecision = { accepted: true; approver: string } | { accepted: false; code: ApprovalRefusal; message: string };

export type ApprovalRefusal = 'self_approval' | 'expired' | 'from_the_future' | 'wrong_action';

/**
 * Whether a verified approval lets the backfill go. The activity has already checked the
 * signature, the key, the namespace and that the text names this backfill and plan; what
 * is left needs the workflow's knowledge: who started it, and the time.
 */
export function decideApproval(input: {
  approval: VerifiedSignature;
  /** The verified signed start, when the starter signed it. */
  start: VerifiedSignature | null;
  /** The identity the starter's client declared (Temporal's, unproven): a weaker check when the start is not signed. */
  starterIdentity?: string;
  now: number;
  maxAgeMs: number;
  /** Clock skew tolerated for a signature dated ahead of the workflow's clock. */
  skewMs?: number;
}): ApprovalDecision {
  const { approval, start, now, maxAgeMs } = input;
  const approver = approval.principals[0]!;
  if (approval.subject.action !== 'approve') {
    return { accepted: false, code: 'wrong_action', message: `the signature is for '${approval.subject.action}', not 'approve': sign with backfill approve` };
  }
  const age = signatureAgeProblem('approval', approval.subject.signedAt, { now, maxAgeMs, ...(input.skewMs !== undefined ? { skewMs: input.skewMs } : {}) });
  if (age) return { accepted: false, ...age };
  if (start) {
    const shared = approval.principals.filter((p) => start.principals.includes(p));
    if (approval.fingerprint === start.fingerprint || shared.length > 0) {
      return {
        accepted: false,
        code: 'self_approval',
        message: `${approver} started this backfill and cannot approve it too: another of the policy's allowed signers must approve it`,
      };
    }
  } else if (input.starterIdentity !== undefined && approval.principals.includes(input.starterIdentity)) {
    return {
      accepted: false,
      code: 'self_approval',
      message: `${approver} started this backfill (by its client identity) and cannot approve it too: another of the policy's allowed signers must approve it`,
    };
  }
  return { accepted: true, approver };
}

/** Clock skew tolerated, by default, for a signature dated ahead of the workflow's clock. */
const DEFAULT_SKEW_MS = 300_000;

/** Why a signature made at `signedAt` does not count now: too old for the policy, or dated ahead of the clock; null when it counts. */
function signatureAgeProblem(
  what: string,
  signedAt: string,
  clock: { now: number; maxAgeMs: number; skewMs?: number },
): { code: 'expired' | 'from_the_future'; message: string } | null {
  const at = Date.parse(signedAt);
  if (at > clock.now + (clock.skewMs ?? DEFAULT_SKEW_MS)) {
    return { code: 'from_the_future', message: `the ${what} is dated ${signedAt}, ahead of the backfill's clock: check the signer's clock and sign again` };
  }
  if (clock.now - at > clock.maxAgeMs) {
    return { code: 'expired', message: `the ${what} was signed at ${signedAt}, longer ago than the policy allows (approval.maxSignatureAge): sign it again` };
  }
  return null;
}

/**
 * A verified signed start (or resume, or retry-failed) counts only with the reason it signed (the
 * one its audit entry keeps, as an approval's), and while it is younger than the policy's
 * `approval.maxSignatureAge` (and not dated ahead of the clock): one copied from an old history
 * cannot start the backfill again, nor with a reason of the copier's. `check` as it is otherwise.
 */
export function checkSignedStart(check: SignatureCheck, request: { reason?: string }, clock: { now: number; maxAgeMs: number; skewMs?: number }): SignatureCheck {
  if (!check.ok) return check;
  const { subject } = check.verified;
  const what = subject.action === 'start' ? 'signed start' : `signed ${subject.action}`;
  const reason = (request.reason ?? '').trim();
  if (subject.reason !== reason) {
    return {
      ok: false,
      code: 'other_reason',
      message: `the ${what} signs the reason ${JSON.stringify(subject.reason)}, but its request gives ${JSON.stringify(reason)}: the audit trail keeps the reason that was signed; sign again with the reason you give`,
    };
  }
  const problem = signatureAgeProblem(what, subject.signedAt, clock);
  return problem ? { ok: false, ...problem } : check;
}
