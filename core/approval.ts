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
import { shellWord } from './shell-word.ts';

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
  /**
   * A start, resume or retry-failed: the run of its backfill id it follows, so that it starts one
   * run, once (checkStartOnce, checkRunFollowed). A start's is the latest run the server had when
   * it was signed (`runId`), or `none` (FIRST_RUN) for the backfill's first run; a resume's or
   * retry-failed's, the run whose end state is its carry. Absent from the other actions, and from
   * a text signed by a client older than it (refused: sign again).
   */
  afterRun?: string;
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

const AFTER_RUN: Field = ['after-run', 'afterRun'];

/** The actions whose text names the run they follow (`after-run`). */
const followsRun = (action: string) => action === 'start' || goesOn(action);

/** The carry line a resume's and a retry-failed's text has (none for the other actions). */
const carryFields = (action: string): readonly Field[] => (goesOn(action) ? [['carry', 'carryHash']] : []);

/**
 * The lines of a text of `action`, in order: a resume's and a retry-failed's have `carry` after
 * `plan`; then a start's, a resume's and a retry-failed's, `after-run` (but one signed by an older
 * client, without it).
 */
function fieldsOf(action: string, afterRun: boolean): readonly Field[] {
  return [...BEFORE_CARRY, ...carryFields(action), ...(followsRun(action) && afterRun ? [AFTER_RUN] : []), ...AFTER_CARRY];
}

/** The exact text a signer signs. */
export function signedText(subject: SignedSubject): string {
  return `${HEADER}\n${fieldsOf(subject.action, subject.afterRun !== undefined).map(([label, key]) => `${label}: ${JSON.stringify(subject[key] ?? '')}`).join('\n')}\n`;
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
  const action = actionOf(lines[1] ?? '');
  const fields = fieldsOf(action, (lines[BEFORE_CARRY.length + carryFields(action).length + 1] ?? '').startsWith(`${AFTER_RUN[0]}: `));
  for (const [i, [label, key]] of fields.entries()) {
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

/** Why the `verifySignature` activity refuses a signature (activities/approval.ts). */
export const SIGNATURE_REFUSALS = [
  'malformed_signature',
  'unsupported_key',
  'wrong_namespace',
  'unknown_signer',
  'bad_signature',
  'namespace_not_allowed',
  'key_not_valid',
  'malformed_text',
  'other_action',
  'other_backfill',
  'other_namespace',
  'other_plan',
  'other_carry',
] as const;
export type SignatureRefusal = (typeof SIGNATURE_REFUSALS)[number];

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

/** The `after-run` of a start signed for the first run of its backfill id. */
export const FIRST_RUN = 'none';

/** The backfill id of a backfill workflow's id (`backfill/<id>`), or null when it is not one's. */
export function backfillIdOfWorkflow(workflowId: string): string | null {
  const prefix = 'backfill/';
  return workflowId.startsWith(prefix) && workflowId.length > prefix.length ? workflowId.slice(prefix.length) : null;
}

export const signedWhat = (subject: SignedSubject) => (subject.action === 'start' ? 'signed start' : `signed ${subject.action}`);

/** The command that signs `subject`'s action again. */
export function signAgain(subject: SignedSubject): string {
  // The refused run holds the backfill's id: a start of it again is a rerun.
  const id = shellWord(subject.backfillId);
  return subject.action === 'start' ? `backfill start <spec> --id ${id} --rerun --sign-key <your key>` : `backfill ${subject.action} ${id} --sign-key <your key>`;
}

/**
 * A verified signed start (or resume, or retry-failed) counts only for the backfill whose workflow
 * runs it: its input, which anyone who reads the history can copy, names the same backfill, but
 * the workflow id it is started under is the backfill's (`workflowId`). It also names the run it
 * follows: one signed by an older client does not, and is refused. `check` as it is otherwise.
 */
export function checkStartOnce(check: SignatureCheck, own: { workflowId: string }): SignatureCheck {
  if (!check.ok) return check;
  const { subject } = check.verified;
  const what = signedWhat(subject);
  const ownId = backfillIdOfWorkflow(own.workflowId);
  if (subject.backfillId !== ownId) {
    const mine = ownId === null ? `this workflow's id '${own.workflowId}' is not a backfill's (backfill/<id>)` : `this workflow is backfill '${ownId}'`;
    return {
      ok: false,
      code: 'other_backfill',
      message: `the ${what} is for backfill '${subject.backfillId}', but ${mine}: a signature admits only the backfill it was signed for; sign the start of this backfill (backfill start --id <its id> --sign-key <your key>)`,
    };
  }
  if (followsRun(subject.action) && subject.afterRun === undefined) {
    const verb = subject.action === 'start' ? 'start' : subject.action;
    return {
      ok: false,
      code: 'old_signature',
      message:
        `the ${what} was made by an older backfill client: its text does not name the run of backfill '${subject.backfillId}' it follows (after-run), so a copy of it could start the backfill again; ` +
        `nothing ran: sign the ${verb} again with this release's client (${signAgain(subject)})`,
    };
  }
  return check;
}

/**
 * A run of a backfill's workflow id the server lists: its run id, when it started (epoch
 * milliseconds), and whether it ended refused at admission (core/go-on-from.ts: it ran nothing).
 */
export type EarlierRun = { runId: string; startedAt: number; refused?: boolean };

/**
 * A verified signed start, resume or retry-failed is admitted once: it names the run it follows
 * (`after-run`), judged by the runs of its workflow id other than this one (`runs`: the server's
 * list of them, this run's `ownRunId` left out here). A copy started again under the same id, once
 * the signed run ended, finds that run after the one it was signed to follow. A start's must be
 * the latest of them (FIRST_RUN for none). A resume's or retry-failed's is the run whose end is its
 * carry, which may be older than the latest (the client goes on from the last run admitted): it
 * must be listed, and every run after it must have been refused at admission. A continued run is
 * not judged again. `check` as it is otherwise.
 */
export function checkRunFollowed(check: SignatureCheck, runs: readonly EarlierRun[], ownRunId: string): SignatureCheck {
  if (!check.ok) return check;
  if (goesOn(check.verified.subject.action)) return checkWentOnOnce(check, runs.filter((r) => r.runId !== ownRunId));
  if (check.verified.subject.action !== 'start') return check;
  const { subject } = check.verified;
  const latest = runs.filter((r) => r.runId !== ownRunId).reduce<EarlierRun | null>((a, r) => (a === null || r.startedAt > a.startedAt ? r : a), null);
  const follows = subject.afterRun ?? FIRST_RUN;
  if ((latest?.runId ?? FIRST_RUN) === follows) return check;
  const again = `a signature starts one run, once; to run it again, sign its start again (${signAgain(subject)})`;
  if (latest === null) {
    return {
      ok: false,
      code: 'other_run',
      message: `the signed start follows run ${follows} of backfill '${subject.backfillId}', but the server lists no earlier run of it: it was signed for another server or namespace's backfill of that id; ${again}`,
    };
  }
  const signedFor = follows === FIRST_RUN ? `the first run of backfill '${subject.backfillId}'` : `the run of backfill '${subject.backfillId}' after run ${follows}`;
  return {
    ok: false,
    code: 'already_used',
    message: `the signed start was made for ${signedFor}, but it already ran (run ${latest.runId}, started ${new Date(latest.startedAt).toISOString()}): ${again}`,
  };
}

/**
 * A resume's or retry-failed's after-run is listed among `others` (the other runs of its workflow
 * id), and no run after it was admitted: a run refused at admission ran nothing (the client goes
 * on from the run before it), so it does not use the signature up; one admitted does.
 */
function checkWentOnOnce(check: Extract<SignatureCheck, { ok: true }>, others: readonly EarlierRun[]): SignatureCheck {
  const { subject } = check.verified;
  const what = signedWhat(subject);
  const follows = subject.afterRun ?? FIRST_RUN;
  const again = `a signature starts one run, once; to go on again, sign the ${subject.action} again after the last run (${signAgain(subject)})`;
  const followed = others.find((r) => r.runId === follows);
  if (followed === undefined) {
    return {
      ok: false,
      code: 'other_run',
      message: `the ${what} goes on from run ${follows} of backfill '${subject.backfillId}', but the server lists no such run of it: it was signed for another server or namespace's backfill of that id; ${again}`,
    };
  }
  const used = others
    .filter((r) => r.runId !== follows && r.startedAt >= followed.startedAt && r.refused !== true)
    .reduce<EarlierRun | null>((a, r) => (a === null || r.startedAt < a.startedAt ? r : a), null);
  if (used === null) return check;
  return {
    ok: false,
    code: 'already_used',
    message: `the ${what} was made to go on from run ${follows} of backfill '${subject.backfillId}', but a run after it was admitted already (run ${used.runId}, started ${new Date(used.startedAt).toISOString()}): ${again}`,
  };
}

/**
 * The check of a signed start whose earlier runs the workers could not list (`cause`: why; no
 * visibility permission, or the server unavailable past the retries): refused, never admitted unjudged.
 */
export function runsUnknownCheck(cause: string, subject: SignedSubject): SignatureCheck {
  return {
    ok: false,
    code: 'runs_unknown',
    message:
      `the workflow workers could not list the earlier runs of this backfill's workflow id (${cause}), so it is not known that its ${signedWhat(subject)} is used once: nothing ran; ` +
      `give the workers' credentials visibility of the namespace (ListWorkflowExecutions) or wait for the server, then sign and send it again (${signAgain(subject)})`,
  };
}
