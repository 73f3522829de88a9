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
import { UNKNOWN_IDENTITY, type AuditEntry } from '../core/audit.ts';
import { rollbackWorkflowId } from '../core/rollback.ts';
import { discardWorkflowId } from '../core/staged.ts';
import { backfillWorkflowId } from '../workflows/definitions.ts';
import type { BackfillClient } from './backfill-client.ts';
import { visibilityLiteral } from './visibility.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payload = temporal.api.common.v1.IPayload;

/** An audit entry of the history, with the run it was recorded in. */
export type AuditRecord = AuditEntry & { workflowId: string; runId: string };

/** The audit entries a history holds (its memo upserts), in order; a cancellation request completes the unannounced cancel. */
export function auditOfHistory(events: readonly HistoryEvent[], decode: (payload: Payload) => unknown): AuditEntry[] {
  const entries: AuditEntry[] = [];
  let cancelRequest: { identity: string; cause: string } | null = null;
  for (const event of events) {
    const payload = event.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.audit;
    if (payload) {
      const entry = decode(payload) as AuditEntry | null;
      if (entry && typeof entry === 'object' && typeof entry.action === 'string') entries.push(entry);
    }
    const cancel = event.workflowExecutionCancelRequestedEventAttributes;
    if (cancel) cancelRequest = { identity: cancel.identity ?? '', cause: cancel.cause ?? '' };
    // A termination ends the run where it stands: the workflow cannot record it, the server does.
    const terminated = event.workflowExecutionTerminatedEventAttributes;
    if (terminated) {
      entries.push({
        seq: (entries[entries.length - 1]?.seq ?? 0) + 1,
        at: optionalTsToMs(event.eventTime) ?? 0,
        action: 'terminate',
        identity: terminated.identity ? `${terminated.identity} (from the termination)` : UNKNOWN_IDENTITY,
        verified: false,
        reason: terminated.reason || null,
        outcome: 'applied',
        details: {},
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

/** Every run of a workflow id, oldest first. */
async function runsOf(client: BackfillClient, workflowId: string): Promise<Array<{ runId: string; startMs: number }>> {
  const runs: Array<{ runId: string; startMs: number }> = [];
  for await (const execution of client.client.workflow.list({ query: `WorkflowId = ${visibilityLiteral(workflowId)}` })) {
    runs.push({ runId: execution.runId, startMs: execution.startTime.getTime() });
  }
  return runs.sort((a, b) => a.startMs - b.startMs);
}

/** The whole audit trail of a backfill: its runs' entries, then its rollbacks' and the discard of what it staged before it ended, in time order. */
export async function auditTrail(client: BackfillClient, backfillId: string): Promise<AuditRecord[]> {
  await client.describe(backfillId);
  const decode = (payload: Payload) => client.client.options.loadedDataConverter.payloadConverter.fromPayload(payload);
  const records: AuditRecord[] = [];
  for (const workflowId of [backfillWorkflowId(backfillId), rollbackWorkflowId(backfillId), discardWorkflowId(backfillId)]) {
    let runs = await runsOf(client, workflowId);
    // Visibility lags a little behind a run that just started: the current run is always there.
    if (workflowId === backfillWorkflowId(backfillId) && runs.length === 0) runs = [{ runId: (await client.describe(backfillId)).runId, startMs: 0 }];
    for (const run of runs) {
      const history = await client.client.workflow.getHandle(workflowId, run.runId).fetchHistory();
      for (const entry of auditOfHistory(history.events ?? [], decode)) records.push({ ...entry, workflowId, runId: run.runId });
    }
  }
  return numberedInTimeOrder(records);
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

