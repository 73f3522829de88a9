/**
 * Node workflows (`backfill/<id>/<node>`) terminated through Temporal (its CLI, the Web UI, any
 * client). The backfill's workflow starts a node workflow that closed without finishing again,
 * with what it held, and records nothing of why it closed; the terminated run's close event
 * holds who terminated it and why. Found through visibility (the node workflows carry the
 * backfill's `BackfillId`), one close event read per terminated run: nothing per partition.
 */
import { optionalTsToMs } from '@temporalio/common';
import proto from '@temporalio/proto';
import { terminatedBy } from '../core/audit.ts';
import { rollbackWorkflowId } from '../core/rollback.ts';
import { discardWorkflowId } from '../core/staged.ts';
import { backfillWorkflowId, nodeWorkflowId } from '../core/workflow-ids.ts';
import { BACKFILL_ID } from '../workflows/definitions.ts';
import type { AuditRecord } from './audit.ts';
import type { BackfillClient } from './backfill-client.ts';
import { visibilityLiteral } from './visibility.ts';

const CLOSE_EVENT = proto.temporal.api.enums.v1.HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT;

/** The terminations of the backfill's node workflows whose runs started at `sinceMs` or after, as audit records (numbered 0: the trail numbers them). */
export async function nodeTerminations(client: BackfillClient, backfillId: string, sinceMs = 0): Promise<AuditRecord[]> {
  const prefix = nodeWorkflowId(backfillId, '');
  // The backfill's own workflows read their terminations from their histories (client/audit.ts).
  const own = new Set([backfillWorkflowId(backfillId), rollbackWorkflowId(backfillId), discardWorkflowId(backfillId)]);
  const terminated: Array<{ workflowId: string; runId: string }> = [];
  const query = `${BACKFILL_ID.name} = ${visibilityLiteral(backfillId)} AND ExecutionStatus = 'Terminated'`;
  for await (const run of client.client.workflow.list({ query })) {
    if (run.workflowId.startsWith(prefix) && !own.has(run.workflowId) && run.startTime.getTime() >= sinceMs) terminated.push({ workflowId: run.workflowId, runId: run.runId });
  }
  return Promise.all(terminated.map((run) => terminationRecord(client, run, run.workflowId.slice(prefix.length))));
}

async function terminationRecord(client: BackfillClient, run: { workflowId: string; runId: string }, node: string): Promise<AuditRecord> {
  const [history, latest] = await Promise.all([
    client.client.workflowService.getWorkflowExecutionHistory({ namespace: client.client.options.namespace, execution: run, historyEventFilterType: CLOSE_EVENT }),
    client.client.workflow.getHandle(run.workflowId).describe(),
  ]);
  const close = history.history?.events?.find((e) => e.workflowExecutionTerminatedEventAttributes);
  const attributes = close?.workflowExecutionTerminatedEventAttributes;
  const at = optionalTsToMs(close?.eventTime) ?? 0;
  return {
    seq: 0,
    at,
    action: 'terminate',
    ...terminatedBy(attributes),
    outcome: 'applied',
    // Started again: a later run of the node's workflow (the restart, or its continuations) is there.
    details: { node, restarted: latest.runId !== run.runId && latest.startTime.getTime() >= at },
    workflowId: run.workflowId,
    runId: run.runId,
  };
}
