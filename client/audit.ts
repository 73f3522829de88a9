/**
 * `backfill audit <id>`: every operator action on a backfill, read from the histories of all its
 * runs (the workflow keeps only the newest entries in its state; each entry was also written to
 * its history as a memo upsert), and of its rollbacks. A cancellation that nobody announced with
 * `backfill cancel` is completed with what the server recorded of its request (the identity and
 * reason of the WorkflowExecutionCancelRequested event); a termination, which the workflow cannot
 * record, with what the server recorded of it (the WorkflowExecutionTerminated event).
 */
import type { temporal } from '@temporalio/proto';
import { optionalTsToMs } from '@temporalio/common';
import { WorkflowNotFoundError } from '@temporalio/client';
import { terminatedBy, type AuditEntry } from '../core/audit.ts';
import { rollbackWorkflowId } from '../core/rollback.ts';
import { discardWorkflowId } from '../core/staged.ts';
import { backfillWorkflowId } from '../workflows/definitions.ts';
import { DecisionFailures } from './audit-decisions.ts';
import { RollbackOutcome } from './audit-rollback.ts';
import { MessageSenders } from './audit-senders.ts';
import type { BackfillClient } from './backfill-client.ts';
import { nodeTerminations } from './node-terminations.ts';
import { visibilityLiteral } from './visibility.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payload = temporal.api.common.v1.IPayload;

/** An audit entry of the history, with the run it was recorded in. */
export type AuditRecord = AuditEntry & { workflowId: string; runId: string };

/**
 * The audit entries a history holds (its memo upserts), in order; a cancellation request
 * completes the unannounced cancel, a signal's or an update's sender a control that named no one
 * (client/audit-senders.ts), a decision's failed activity says that the decision failed
 * (client/audit-decisions.ts), and a rollback's closing event how it ended (client/audit-rollback.ts).
 */
export function auditOfHistory(events: readonly HistoryEvent[], decode: (payload: Payload) => unknown): AuditEntry[] {
  const entries: AuditEntry[] = [];
  const senders = new MessageSenders();
  const decisions = new DecisionFailures();
  const rollback = new RollbackOutcome(decode);
  const nextSeq = () => (entries[entries.length - 1]?.seq ?? 0) + 1;
  let cancelRequest: { identity: string; cause: string } | null = null;
  for (const event of events) {
    senders.see(event);
    const payload = event.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.audit;
    if (payload) {
      const entry = decode(payload) as AuditEntry | null;
      if (entry && typeof entry === 'object' && typeof entry.action === 'string') entries.push(senders.attribute(entry));
    }
    const failedDecision = decisions.see(event, entries);
    if (failedDecision) entries.push({ seq: nextSeq(), ...failedDecision });
    const rolledBack = rollback.see(event, entries);
    if (rolledBack) entries.push({ seq: nextSeq(), ...rolledBack });
    const cancel = event.workflowExecutionCancelRequestedEventAttributes;
    if (cancel) cancelRequest = { identity: cancel.identity ?? '', cause: cancel.cause ?? '' };
    // A termination ends the run where it stands: the workflow cannot record it, the server does.
    const terminated = event.workflowExecutionTerminatedEventAttributes;
    if (terminated) {
      entries.push({
        seq: nextSeq(),
        at: optionalTsToMs(event.eventTime) ?? 0,
        action: 'terminate',
        ...terminatedBy(terminated),
        outcome: 'applied',
        // A rollback's workflow ends where it stands too, but leases nothing: said apart.
        details: rollback.ofRollback ? { of: 'rollback' } : {},
      });
    }
  }
  if (cancelRequest) {
    const unannounced = [...entries].reverse().find((e) => e.action === 'cancel' && e.details.announced === false);
    if (unannounced) {
      unannounced.identity = cancelRequest.identity ? `${cancelRequest.identity} (from the cancellation request)` : unannounced.identity;
      if (cancelRequest.cause) unannounced.reason = cancelRequest.cause;
    }
  }
  return entries;
}

/** One run of a workflow, with how it stands (`COMPLETED`, `RUNNING`, ...) and the audit entries of its history. */
export type AuditRun = { runId: string; startMs: number; status: string; records: AuditRecord[] };

/**
 * The runs of `workflowId` that started at `sinceMs` or after, oldest first, each with its audit
 * entries: `audit` reads every run of a backfill's workflows, `status` the discards since its run
 * ended. Visibility lags a little behind a run that just started or ended: the latest run,
 * described, is always there, as it stands.
 */
export async function auditRuns(client: BackfillClient, workflowId: string, sinceMs = 0): Promise<AuditRun[]> {
  const decode = (payload: Payload) => client.client.options.loadedDataConverter.payloadConverter.fromPayload(payload);
  const listing = async () => {
    const found: Array<{ runId: string; startMs: number; status: string }> = [];
    for await (const e of client.client.workflow.list({ query: `WorkflowId = ${visibilityLiteral(workflowId)}` })) found.push({ runId: e.runId, startMs: e.startTime.getTime(), status: e.status.name });
    return found;
  };
  const [listed, latest] = await Promise.all([
    listing(),
    client.client.workflow
      .getHandle(workflowId)
      .describe()
      .catch((error: unknown) => (error instanceof WorkflowNotFoundError ? undefined : Promise.reject(error))),
  ]);
  const runs = new Map(listed.map((run) => [run.runId, run]));
  if (latest) runs.set(latest.runId, { runId: latest.runId, startMs: latest.startTime.getTime(), status: latest.status.name });
  const since = [...runs.values()].filter((r) => r.startMs >= sinceMs).sort((a, b) => a.startMs - b.startMs);
  return Promise.all(
    since.map(async (run) => {
      const history = await client.client.workflow.getHandle(workflowId, run.runId).fetchHistory();
      return { ...run, records: auditOfHistory(history.events ?? [], decode).map((entry) => ({ ...entry, workflowId, runId: run.runId })) };
    }),
  );
}

/**
 * The whole audit trail of a backfill: its runs' entries, then its rollbacks', the discard of
 * what it staged before it ended, and the terminations of its node workflows, in time order.
 */
export async function auditTrail(client: BackfillClient, backfillId: string): Promise<AuditRecord[]> {
  await client.describe(backfillId);
  const workflows = [backfillWorkflowId(backfillId), rollbackWorkflowId(backfillId), discardWorkflowId(backfillId)];
  const [runs, terminations] = await Promise.all([Promise.all(workflows.map((workflowId) => auditRuns(client, workflowId))), nodeTerminations(client, backfillId)]);
  return numberedInTimeOrder([...runs.flat().flatMap((run) => run.records), ...terminations]);
}

/**
 * Entries of one run are in order already; runs, rollbacks and discards interleave by time. A
 * rollback's or a discard's workflow counts its own entries from 1: numbered again in time
 * order, the trail's numbers run 1, 2, ... over the whole backfill, as AuditEntry.seq says
 * (`audit` and `report` number them alike).
 */
export function numberedInTimeOrder<R extends { at: number; seq: number }>(records: readonly R[]): R[] {
  return records
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.at - b.r.at || a.i - b.i)
    .map(({ r }, i) => ({ ...r, seq: i + 1 }));
}

