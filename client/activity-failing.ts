/**
 * What the backfill's own workflow's pending activities (as `describe` gives them) say of a step
 * that keeps failing and is retried: a policy load that workers decline (`judgementWait`), or
 * another step, such as asking the workers which warehouse they write to, leasing its datasets,
 * a publish (`activityFailing`). Its partitions wait on it with nothing else to show: `status`
 * names it, with its last error.
 */
import { POLICY_MISMATCH } from '../core/policy-pin.ts';

/** From this attempt on (two failures), a failing step is news: one failure may be a moment's. */
const FAILING_FROM_ATTEMPT = 3;

export type ActivityFailing = { activity: string; attempt: number; message: string };

/** A pending activity as `describe` gives it (the SDK's client, or the light status's decoding): what these read of it. */
export type PendingActivity = {
  activityType?: { name?: string | null } | null;
  attempt?: number | null;
  lastFailure?: { message?: string | null; applicationFailureInfo?: { type?: string | null } | null } | null;
};

/** Why the judgement of a run waits: the last PolicyMismatch of its pending policy load, if any. */
export function judgementWait(pending: readonly PendingActivity[] | null | undefined): string | undefined {
  const declined = pending?.find((a) => a.lastFailure?.applicationFailureInfo?.type === POLICY_MISMATCH);
  return declined?.lastFailure?.message ?? undefined;
}

/** The first of the workflow's pending activities that has failed twice or more; a policy's refusal to judge is `judgementWait`'s. */
export function activityFailing(pending: readonly PendingActivity[] | null | undefined): ActivityFailing | undefined {
  const failing = pending?.find(
    (a) => (a.attempt ?? 0) >= FAILING_FROM_ATTEMPT && a.lastFailure?.message && a.lastFailure.applicationFailureInfo?.type !== POLICY_MISMATCH,
  );
  if (!failing) return undefined;
  return { activity: failing.activityType?.name ?? 'an activity', attempt: failing.attempt ?? 0, message: failing.lastFailure!.message! };
}

/** `status`'s line for it: what fails, how often, why, and where to look. */
export function activityFailingText(failing: ActivityFailing): string {
  return (
    `its step ${failing.activity} has failed ${failing.attempt - 1} times and is being retried; what needs it waits: ${failing.message} ` +
    `(it runs on the workers: their log has each attempt)`
  );
}

/** What `status` adds of a running backfill's pending activities: why its judgement waits, and a step that keeps failing (both paths of `status` read them so). */
export function pendingNotes(pending: readonly PendingActivity[] | null | undefined): { judgement?: string; activityFailing?: ActivityFailing } {
  const judgement = judgementWait(pending);
  const failing = activityFailing(pending);
  return { ...(judgement !== undefined ? { judgement } : {}), ...(failing ? { activityFailing: failing } : {}) };
}
