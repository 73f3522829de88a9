/** The runs of one workflow id, as the server's visibility lists them, through the SDK's connection. */
import type { Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import type { EarlierRun } from '../core/approval.ts';
import { refusedAtAdmission } from '../core/go-on-from.ts';
import { visibilityLiteral } from './visibility.ts';

/** More runs than a signed start's check needs to read: a workflow id is started again by hand, rarely. */
const MAX_PAGES = 20;

const { WORKFLOW_EXECUTION_STATUS_FAILED: FAILED, WORKFLOW_EXECUTION_STATUS_RUNNING: RUNNING } = proto.temporal.api.enums.v1.WorkflowExecutionStatus;

const { EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: CHILD_STARTED, EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: RUN_FAILED } = proto.temporal.api.enums.v1.EventType;

type Listed = proto.temporal.api.workflow.v1.IWorkflowExecutionInfo;

/** Whether a listed run ended refused at admission (its memo says why: core/go-on-from.ts), which ran nothing. */
function refused(e: Listed): boolean {
  if (e.status !== FAILED) return false;
  const payload = e.memo?.fields?.governance;
  if (!payload) return false;
  try {
    return refusedAtAdmission({ status: { name: 'FAILED' }, memo: { governance: defaultPayloadConverter.fromPayload(payload) } });
  } catch {
    // A memo this worker cannot read: counted as admitted, which refuses rather than admits.
    return false;
  }
}

/**
 * Every run of `workflowId` (running or closed, any run of a continue-as-new chain), each one's
 * status as its description has it where the list shows it running. `connection`: the client's,
 * or a worker's NativeConnection.
 */
export async function runsOfWorkflowId(connection: Pick<Connection, 'workflowService'>, namespace: string, workflowId: string): Promise<EarlierRun[]> {
  const runs: EarlierRun[] = [];
  let nextPageToken: Uint8Array | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const response = await connection.workflowService.listWorkflowExecutions({ namespace, query: `WorkflowId = ${visibilityLiteral(workflowId)}`, pageSize: 100, ...(nextPageToken ? { nextPageToken } : {}) });
    for (const listed of response.executions ?? []) {
      const runId = listed.execution?.runId;
      if (!runId) continue;
      // The list may lag: a run it shows running (but this one, only one runs at a time) may have ended, refused, by now. Its description is current.
      const e = listed.status === RUNNING ? ((await connection.workflowService.describeWorkflowExecution({ namespace, execution: { workflowId, runId } })).workflowExecutionInfo ?? listed) : listed;
      runs.push({ runId, startedAt: optionalTsToMs(e.startTime) ?? 0, ...(refused(e) ? { refused: true } : {}) });
    }
    nextPageToken = response.nextPageToken && response.nextPageToken.length > 0 ? response.nextPageToken : undefined;
    if (nextPageToken === undefined) break;
  }
  return runs;
}

/**
 * Whether a run's history shows it ran nothing: it failed with the policy's refusal and started no
 * node workflow (they run every partition). The memo that marks a refused run can be set by
 * whoever starts the workflow (Temporal's CLI: --memo); the history is what the workflow did.
 */
export function ranNothing(events: readonly proto.temporal.api.history.v1.IHistoryEvent[]): boolean {
  if (events.some((e) => e.eventType === CHILD_STARTED)) return false;
  const last = events.at(-1);
  return last?.eventType === RUN_FAILED && last.workflowExecutionFailedEventAttributes?.failure?.applicationFailureInfo?.type === 'policy_violation';
}
