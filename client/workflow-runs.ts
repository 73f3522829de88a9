/** The runs of one workflow id, as the server's visibility lists them, through the SDK's connection. */
import type { Connection } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import type { EarlierRun } from '../core/approval.ts';
import { visibilityLiteral } from './visibility.ts';

/** More runs than a signed start's check needs to read: a workflow id is started again by hand, rarely. */
const MAX_PAGES = 20;

/** Every run of `workflowId` (running or closed, any run of a continue-as-new chain). `connection`: the client's, or a worker's NativeConnection. */
export async function runsOfWorkflowId(connection: Pick<Connection, 'workflowService'>, namespace: string, workflowId: string): Promise<EarlierRun[]> {
  const runs: EarlierRun[] = [];
  let nextPageToken: Uint8Array | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const response = await connection.workflowService.listWorkflowExecutions({ namespace, query: `WorkflowId = ${visibilityLiteral(workflowId)}`, pageSize: 100, ...(nextPageToken ? { nextPageToken } : {}) });
    for (const e of response.executions ?? []) {
      if (e.execution?.runId) runs.push({ runId: e.execution.runId, startedAt: optionalTsToMs(e.startTime) ?? 0 });
    }
    nextPageToken = response.nextPageToken && response.nextPageToken.length > 0 ? response.nextPageToken : undefined;
    if (nextPageToken === undefined) break;
  }
  return runs;
}
