/**
 * Approvals sent as signals (`temporal workflow signal`, any client) that the backfill refused
 * for a reason that cannot change while its run lasts: the signature is malformed or does not
 * match its text, its key is not among the policy's allowed signers, its text is for another
 * action, backfill, namespace, plan or end, or its signer started the backfill. Anyone who can
 * signal the workflow can send the same one again and again; each would cost a
 * `verifySignature` activity (its events in the history) for the same answer. The run
 * remembers the last REFUSED_APPROVALS_REMEMBERED of them and refuses such a copy without the
 * activity.
 *
 * Not remembered: a refusal that time or the workers may lift (`key_not_valid`, `expired`,
 * `from_the_future`, `not_verified`: the activity failed), and the plan a new spec brought while
 * the signature was checked (the judge's `other_plan`: the spec may come back to the signed
 * plan). The key is the exact text and signature with the plan they were checked against, so a
 * refusal is never taken for another plan's, nor for a reformatted copy of a good signature.
 *
 * Not carried across continue-as-new: a new run checks each such signature once more (at most
 * REFUSED_APPROVALS_REMEMBERED activities a run for copies of old ones), and a resume's carry,
 * which comes from a client, can never make the backfill refuse a signature it never checked.
 */
import { SIGNATURE_REFUSALS } from './approval.ts';
import { sha256Hex } from './hash.ts';

/** How many refused signatures a run remembers (the newest): each a digest and its refusal, cut short. */
export const REFUSED_APPROVALS_REMEMBERED = 64;

/**
 * The `verifySignature` activity's refusals that the same text and signature always get in a run
 * (its policy's signers are fixed): all but a key's valid-after/valid-before, which time lifts.
 */
const LASTING_CHECK_REFUSALS: ReadonlySet<string> = new Set(SIGNATURE_REFUSALS.filter((code) => code !== 'key_not_valid'));

/** The backfill's own refusals of a verified signature that cannot change in a run (who started it is fixed). */
const LASTING_DECISION_REFUSALS: ReadonlySet<string> = new Set(['self_approval', 'wrong_action']);

/** Whether a refusal lasts for the run: `checked`, the activity refused the signature; else the backfill refused a verified one. */
export function refusalLasts(code: string, checked: boolean): boolean {
  return (checked ? LASTING_CHECK_REFUSALS : LASTING_DECISION_REFUSALS).has(code);
}

/** The key of an approval checked against `planHash`: its exact text and signature, hashed. */
export function refusedApprovalKey(approval: { text: string; signature: string }, planHash: string): string {
  return sha256Hex(JSON.stringify([planHash, approval.text, approval.signature]));
}

export type RememberedRefusal = { code: string; message: string };

/** The newest refused approvals of a run, by key. */
export class RefusedApprovals {
  private readonly refused = new Map<string, RememberedRefusal>();

  remember(key: string, refusal: RememberedRefusal): void {
    this.refused.delete(key);
    this.refused.set(key, refusal);
    if (this.refused.size > REFUSED_APPROVALS_REMEMBERED) this.refused.delete(this.refused.keys().next().value!);
  }

  find(key: string): RememberedRefusal | null {
    return this.refused.get(key) ?? null;
  }

  get size(): number {
    return this.refused.size;
  }
}
