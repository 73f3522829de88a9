/**
 * The names a client needs to find a backfill on the server: its workflows' ids and the names
 * of the queries `status` asks. workflows/definitions.ts defines the messages with these names;
 * they live here so that a client can use them without loading the Temporal SDK (`status`).
 */

/** The type of a backfill's parent workflow: its nodes', rollback's and discard's have ids under its own (backfill/<id>/...). */
export const BACKFILL_WORKFLOW_TYPE = 'backfillWorkflow';

/** The id of a backfill's parent workflow. */
export function backfillWorkflowId(backfillId: string): string {
  return `backfill/${backfillId}`;
}

/** The id of one node's workflow. */
export function nodeWorkflowId(backfillId: string, nodeId: string): string {
  return `backfill/${backfillId}/${nodeId}`;
}

/** The names of the backfill workflow's queries. */
export const QUERY_NAMES = { progress: 'progress', carry: 'carry', nodeOrders: 'nodeOrders' } as const;
