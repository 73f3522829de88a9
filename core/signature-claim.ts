/**
 * A signed start's "once" recorded in the warehouse (patch signed-start-claimed): an admitted
 * signed start, resume or retry-failed claims its signed text there, beside the ledger, so that a
 * copy of its input is refused even when the server no longer lists the run that used it (the
 * workflow was deleted, reset to before its admission, or its namespace's retention passed).
 *
 * The key is the digest of the signed text alone: the text is canonical (parseSignedText takes
 * only the bytes it renders) and names the run it follows, its reason and its time, while the
 * armored signature is not (its base64 may be wrapped or spaced at will), so a copier could make
 * a new key of the same signature by reformatting it.
 */
import { signAgain, signedWhat, type SignatureCheck, type SignedSubject } from './approval.ts';
import { sha256Hex } from './hash.ts';

/** The warehouse's key of a signed text: `sha256:<hex>` of its bytes. */
export function signatureClaimKey(text: string): string {
  return `sha256:${sha256Hex(text)}`;
}

/** The run that claimed a signature first (the one that used it), as the warehouse recorded it. */
export type SignatureHolder = { workflowId: string; runId: string; claimedAt: string };

/**
 * What the claim answered: the holder (this run, or the one that used the signature before), or
 * that the warehouse keeps no claims (an adapter without `claimSignature`): the runs the server
 * lists judge alone then.
 */
export type ClaimOutcome = { claimed: true; holder: SignatureHolder; mine?: boolean } | { claimed: false; unsupported: string };

/**
 * A verified signed start (or resume, or retry-failed) whose claim the warehouse answered: admitted
 * when this run holds it (a claim made again by a retried activity or a replay finds itself),
 * refused `already_used`, naming the run that used it, otherwise. `mine`: whether the holder is the
 * run that asked, as the activity decided it (a reset run replays the answer under another run
 * id); an answer recorded without it is compared with `own`.
 */
export function checkClaimed(check: SignatureCheck, claim: { holder: SignatureHolder; mine?: boolean }, own: { workflowId: string; runId: string }): SignatureCheck {
  if (!check.ok) return check;
  const { holder } = claim;
  if (claim.mine ?? (holder.workflowId === own.workflowId && holder.runId === own.runId)) return check;
  const { subject } = check.verified;
  const where = holder.workflowId === own.workflowId ? `run ${holder.runId}` : `run ${holder.runId} of workflow ${holder.workflowId}`;
  return {
    ok: false,
    code: 'already_used',
    message:
      `the ${signedWhat(subject)} was used already by ${where} (recorded in the warehouse at ${holder.claimedAt}, which keeps it even when the server no longer lists that run): ` +
      `a signature starts one run, once; to run it again, sign again (${signAgain(subject)})`,
  };
}

/**
 * The check of a signed start whose claim the warehouse could not record (`cause`: why; the
 * warehouse down past the retries, no worker of the task queue, another warehouse): refused,
 * never admitted unclaimed.
 */
export function claimUnknownCheck(cause: string, subject: SignedSubject, taskQueue: string): SignatureCheck {
  return {
    ok: false,
    code: 'claim_unknown',
    message:
      `the workers of task queue '${taskQueue}' could not record in their warehouse that this ${signedWhat(subject)} was used (${cause}), so it is not known to be used once: nothing ran; ` +
      `make sure those workers run and reach the backfill's warehouse, then sign and send it again (${signAgain(subject)})`,
  };
}
