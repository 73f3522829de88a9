/**
 * A publish or a discard that failed for good. The workflow records the decision as it is taken
 * ("publish asked"), before the warehouse carries it out; when the warehouse's activity fails for
 * good (a dataset leased to another run, retries spent), the update fails and the backfill waits
 * for a decision again, but the workflow records nothing more. The history holds the failure:
 * the activity's failed (or timed out) event, with when, why and after how many attempts.
 */
import type { temporal } from '@temporalio/proto';
import { optionalTsToMs } from '@temporalio/common';
import type { AuditEntry } from '../core/audit.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The warehouse activities that carry out a decision, and the action whose entry each follows. */
const DECISION_ACTIVITIES: Readonly<Record<string, 'publish' | 'discard'>> = {
  publishStaged: 'publish',
  discardStaged: 'discard',
  discardEndedRun: 'discard',
};

/** The most characters of a failure's message an entry keeps. */
const MAX_WHY = 1000;

/**
 * A failed entry's `why` and `failureType`, from a failure in the history: its message and its
 * cause's (a timeout's own says only "activity StartToClose timeout"), cut at MAX_WHY; `none`
 * when neither says anything.
 */
export function failureDetails(failure: temporal.api.failure.v1.IFailure | null | undefined, none = 'no message'): { why: string; failureType?: string } {
  const message = [failure?.message, failure?.cause?.message].filter((m): m is string => typeof m === 'string' && m !== '').join(': ') || none;
  const type = failure?.applicationFailureInfo?.type ?? failure?.cause?.applicationFailureInfo?.type;
  return { why: message.length > MAX_WHY ? `${message.slice(0, MAX_WHY)}…` : message, ...(type ? { failureType: type } : {}) };
}

type Scheduled = { action: 'publish' | 'discard'; decision: AuditEntry | undefined; attempt: number };

export class DecisionFailures {
  private readonly scheduled = new Map<number, Scheduled>();

  /**
   * Takes in one event of the history, in order, with the entries read so far; returns the
   * entry of a decision whose activity failed for good, if this event says so.
   */
  see(event: HistoryEvent, entries: readonly AuditEntry[]): Omit<AuditEntry, 'seq'> | null {
    const scheduled = event.activityTaskScheduledEventAttributes;
    const action = DECISION_ACTIVITIES[scheduled?.activityType?.name ?? ''];
    if (scheduled && action !== undefined) {
      const decision = [...entries].reverse().find((e) => e.action === action && e.outcome === 'applied');
      this.scheduled.set(Number(event.eventId ?? 0), { action, decision, attempt: 1 });
      return null;
    }
    const started = event.activityTaskStartedEventAttributes;
    const under = started ? this.scheduled.get(Number(started.scheduledEventId ?? 0)) : undefined;
    if (under && started) under.attempt = started.attempt ?? under.attempt;
    const failed = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    const of = failed ? this.scheduled.get(Number(failed.scheduledEventId ?? 0)) : undefined;
    if (!failed || !of) return null;
    this.scheduled.delete(Number(failed.scheduledEventId ?? 0));
    const { why, failureType } = failureDetails(failed.failure);
    const d = of.decision?.details ?? {};
    return {
      at: optionalTsToMs(event.eventTime) ?? 0,
      action: of.action,
      identity: of.decision?.identity ?? 'unknown (the decision was not recorded)',
      verified: of.decision?.verified ?? false,
      reason: of.decision?.reason ?? null,
      outcome: 'failed',
      details: {
        why,
        attempts: of.attempt,
        ...(failureType ? { failureType } : {}),
        ...(event.activityTaskTimedOutEventAttributes ? { timedOut: true } : {}),
        ...(d.canary === true ? { canary: true } : {}),
        ...(typeof d.runKey === 'string' ? { runKey: d.runKey } : {}),
      },
    };
  }
}
