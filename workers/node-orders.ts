/**
 * The `fetchNodeOrders` activity: a node workflow's settings and spec as its parent has them (the
 * parent's `nodeOrders` query, through the worker's connection). A node workflow asks when a
 * `nodeControl` signal brings settings or a spec, instead of taking them from the signal: anyone
 * who may signal workflows can send one by hand, and one that said `paused: false` released a node
 * held for an approval or a run window. It runs on the policy queue, which only workflow workers
 * poll (workflows/node.ts, patch orders-from-parent).
 */
import { Context } from '@temporalio/activity';
import { defaultPayloadConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import type { NodeOrders, NodeOrdersRequest } from '../core/protocol.ts';
import { QUERY_NAMES } from '../core/workflow-ids.ts';
import { queryWithin } from './query-within.ts';

/** Under the activity's start-to-close timeout (10 s, workflows/node.ts): past it the server has given up on the attempt. */
const ORDERS_QUERY_TIMEOUT_MS = 9_000;

export type NodeOrdersActivities = { fetchNodeOrders(request: NodeOrdersRequest): Promise<NodeOrders> };

export function createNodeOrdersActivities(connection: Pick<NativeConnection, 'workflowService' | 'withDeadline'>, namespace: string): NodeOrdersActivities {
  return {
    async fetchNodeOrders({ parentWorkflowId, node }) {
      // Ends on the activity's cancellation too: no workflow worker answers once this worker shuts down.
      const response = await queryWithin(
        connection,
        { namespace, execution: { workflowId: parentWorkflowId }, query: { queryType: QUERY_NAMES.nodeOrders, queryArgs: { payloads: [defaultPayloadConverter.toPayload(node)] } } },
        ORDERS_QUERY_TIMEOUT_MS,
        Context.current().cancelled,
      );
      const payload = response.queryResult?.payloads?.[0];
      if (!payload) throw new Error(`the backfill's workflow ${parentWorkflowId} gave no orders for node ${node}`);
      return defaultPayloadConverter.fromPayload<NodeOrders>(payload);
    },
  };
}
