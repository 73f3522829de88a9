/**
 * Which worker may judge a backfill again. A backfill is admitted under the policy of the
 * worker that judged its start (its hash is in the history and the governance state); a later
 * judgement of the same backfill by a worker's own file (a new run: `resume`, `retry-failed` of
 * one that ended; a rollback; a discard) is made only by a worker that has a policy. A worker
 * without one must not judge: it would admit, unjudged, what the others judge by the policy. A
 * worker with another policy judges by its own: the current rules (a policy changed on purpose,
 * a signer added) apply to what is asked now, and the history records which policy judged it.
 */

/** The failure type of a worker that declines such a judgement (retryable: another worker of the queue takes it). */
export const POLICY_MISMATCH = 'PolicyMismatch';

/**
 * The task queue of those judgements: the workflow task queue's own, polled by its workflow
 * workers only (never by an activity worker of that queue's name, which has no policy activities).
 */
export function policyTaskQueue(workflowQueue: string): string {
  return `${workflowQueue}.policy`;
}

/** The hash a later judgement of a backfill expects: the policy its last run was admitted under (null: no pin). */
export function pinnedPolicy(carried: { policy?: { hash?: unknown } } | undefined): string | null {
  const hash = carried?.policy?.hash;
  // A run admitted without a policy pins nothing: any worker judges it, one with a policy by its rules.
  return typeof hash === 'string' && hash !== '' ? hash : null;
}

/**
 * The pin of a rollback of a backfill whose history the server no longer keeps (the namespace's
 * retention): the policy it was admitted under is unknown, so it is judged as if pinned, by a
 * worker with a policy. Not a hash: no policy's hash is ever this.
 */
export const UNKNOWN_PIN = 'unknown (the backfill\'s history is gone)';

/**
 * The pin of a first judgement (a start; a rollback or discard of a backfill admitted without a
 * policy) that a worker without a policy passed on because other workflow workers of its queue
 * have one: any worker with a policy judges it. Not a hash: no policy's hash is ever this.
 */
export const ANY_POLICY = 'any (a worker without a policy passed it on)';

/**
 * What a workflow worker with a policy adds to the identity it polls the policy queue with, so
 * that a worker without one can tell, from the queue's pollers (`DescribeTaskQueue`), that the
 * deployment is governed and pass its judgements on rather than admit them unjudged.
 */
export const POLICY_HOLDER_MARK = '[policy]';

export function policyHolderIdentity(identity: string): string {
  return `${identity} ${POLICY_HOLDER_MARK}`;
}

/**
 * How lately a worker with a policy must have polled to count. The server lists a poller some
 * minutes after it stops; a worker that polls starts a long poll (up to about a minute) as each
 * ends, so one that runs is never older than that.
 */
export const POLICY_HOLDER_SEEN_MS = 120_000;

/**
 * Whether a workflow worker with a policy polled the policy queue lately: a poller with the mark,
 * seen within `POLICY_HOLDER_SEEN_MS` of `now` (one the server gives no time for counts).
 */
export function hasPolicyHolder(pollers: readonly { identity: string; lastAccessMs?: number | undefined }[], now: number): boolean {
  return pollers.some((p) => p.identity.endsWith(` ${POLICY_HOLDER_MARK}`) && (p.lastAccessMs === undefined || now - p.lastAccessMs <= POLICY_HOLDER_SEEN_MS));
}

/** The pin a control of an ended backfill (rollback, discard) gives in its input: a hash, or none. */
export function givenPin(admittedUnder: unknown): string | null {
  return typeof admittedUnder === 'string' && admittedUnder !== '' ? admittedUnder : null;
}

/**
 * Why this worker must not judge a backfill admitted under policy `pinned` (null: it may). `own`
 * is the hash of the worker's own policy (null: it has none): only a worker without a policy
 * declines, since it would judge by no rules at all.
 */
export function policyPinProblem(input: { backfillId: string; queue: string; pinned: string | null; own: string | null }): string | null {
  const { backfillId, queue, pinned, own } = input;
  if (pinned === null || own !== null) return null;
  if (pinned === ANY_POLICY) {
    return (
      `this worker of workflow task queue '${queue}' has no policy (neither --policy nor BACKFILL_POLICY), but other workers of the queue have one: ` +
      `it does not judge backfill '${backfillId}', and one of them will. Give this worker the same --policy file as the other workers of '${queue}' (or stop it)`
    );
  }
  if (pinned === UNKNOWN_PIN) {
    return (
      `this worker of workflow task queue '${queue}' has no policy (neither --policy nor BACKFILL_POLICY), and the server no longer keeps the history of backfill '${backfillId}', ` +
      `so whether a policy admitted it is unknown: it does not judge it, and a worker of the queue with a policy will. Give this worker the same --policy file as the other workers of '${queue}'; ` +
      `where no worker has a policy, give them one (a file of only 'version: 1' has no rules: it admits, deliberately)`
    );
  }
  return (
    `this worker of workflow task queue '${queue}' has no policy (neither --policy nor BACKFILL_POLICY), but backfill '${backfillId}' was admitted under policy ${pinned}: ` +
    `it does not judge it, and a worker of the queue with a policy will. Give this worker the same --policy file as the other workers of '${queue}' (or stop it)`
  );
}
