/**
 * How a rollback ended. The rollback workflow records only that it was asked ("rollback asked"),
 * as it starts; what it then did is its result (the summary's counts), or its failure, which the
 * history's closing event holds. A rollback that continued as new ends in its last run, whose
 * history has no "asked" entry: who asked comes from the run's input then.
 */
import type { temporal } from '@temporalio/proto';
import { optionalTsToMs } from '@temporalio/common';
import { UNKNOWN_IDENTITY, type AuditEntry } from '../core/audit.ts';
import type { RollbackInput, RollbackSummary } from '../core/rollback.ts';
import { failureDetails } from './audit-decisions.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payload = temporal.api.common.v1.IPayload;

/** The workflow type whose runs end in a rollback's outcome. */
const ROLLBACK_WORKFLOW = 'rollbackWorkflow';

/** The summary's counts an entry keeps (the lists stay in the summary, which `rollback` prints). */
const COUNTS = ['restored', 'removed', 'alreadyRestored', 'leftAlone', 'forced', 'undone'] as const;

export class RollbackOutcome {
  private asker: { identity: string; reason: string | null } | null = null;
  private rollback = false;

  constructor(private readonly decode: (payload: Payload) => unknown) {}

  /** Whether the history read so far is a rollback's. */
  get ofRollback(): boolean {
    return this.rollback;
  }

  /**
   * Takes in one event of the history, in order, with the entries read so far; returns the
   * entry of how the rollback ended, if this event ends it.
   */
  see(event: HistoryEvent, entries: readonly AuditEntry[]): Omit<AuditEntry, 'seq'> | null {
    const started = event.workflowExecutionStartedEventAttributes;
    if (started) {
      this.rollback = started.workflowType?.name === ROLLBACK_WORKFLOW;
      const input = this.rollback ? this.first(started.input?.payloads) : undefined;
      const audit = input && typeof input === 'object' ? (input as Partial<RollbackInput>).audit : undefined;
      if (audit && typeof audit === 'object') {
        this.asker = { identity: typeof audit.identity === 'string' && audit.identity !== '' ? audit.identity : UNKNOWN_IDENTITY, reason: typeof audit.reason === 'string' ? audit.reason : null };
      }
      return null;
    }
    if (!this.rollback) return null;
    const asked = [...entries].reverse().find((e) => e.action === 'rollback');
    // Refused by the policy: its entry says so already, and nothing ran.
    if (asked?.outcome === 'refused') return null;
    const who = {
      identity: asked?.identity ?? this.asker?.identity ?? UNKNOWN_IDENTITY,
      verified: asked?.verified ?? false,
      reason: asked?.reason ?? this.asker?.reason ?? null,
    };
    const at = optionalTsToMs(event.eventTime) ?? 0;
    const completed = event.workflowExecutionCompletedEventAttributes;
    if (completed) {
      const summary = this.first(completed.result?.payloads) as Partial<RollbackSummary> | undefined;
      if (!summary || typeof summary !== 'object') return null;
      const counts = Object.fromEntries(COUNTS.map((key) => [key, typeof summary[key] === 'number' ? summary[key] : 0]));
      return { at, action: 'rollback', ...who, outcome: 'applied', details: { ended: true, ...counts, ...(summary.notFound === true ? { notFound: true } : {}) } };
    }
    const failed = event.workflowExecutionFailedEventAttributes?.failure;
    const timedOut = event.workflowExecutionTimedOutEventAttributes;
    if (!failed && !timedOut) return null;
    return { at, action: 'rollback', ...who, outcome: 'failed', details: { ...failureDetails(failed, timedOut ? 'the run timed out' : 'no message'), ...(timedOut ? { timedOut: true } : {}) } };
  }

  private first(payloads: readonly Payload[] | null | undefined): unknown {
    const payload = payloads?.[0];
    if (!payload) return undefined;
    try {
      return this.decode(payload);
    } catch {
      return undefined;
    }
  }
}
