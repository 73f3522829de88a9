/**
 * The `fetchNodeOrders` activity: a node workflow's settings and spec as its parent has them (the
 * parent's `nodeOrders` query, through the worker's connection). A node workflow asks when a
 * `nodeControl` signal brings settings or a spec, instead of taking them from the signal: anyone
 * who may signal workflows can send one by hand, and one that said `paused: false` released a node
 * held for an approval or a run window. It runs on the policy queue, which only workflow workers
 * poll (workflows/node.ts, patch orders-from-parent).
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import type { NodeOrders, NodeOrdersRequest } from '../core/protocol.ts';
import { QUERY_NAMES } from '../core/workflow-ids.ts';

export type NodeOrdersActivities = { fetchNodeOrders(request: NodeOrdersRequest): Promise<NodeOrders> };

export function createNodeOrdersActivities(connection: Pick<NativeConnection, 'workflowService'>, namespace: string): NodeOrdersActivities {
  return {
    async fetchNodeOrders({ parentWorkflowId, node }) {
      const response = await connection.workflowService.queryWorkflow({
        namespace,
        execution: { workflowId: parentWorkflowId },
        query: { queryType: QUERY_NAMES.nodeOrders, queryArgs: { payloads: [defaultPayloadConverter.toPayload(node)] } },
      });
      const payload = response.queryResult?.payloads?.[0];
      if (!payload) throw new Error(`the backfill's workflow ${parentWorkflowId} gave no orders for node ${node}`);
      return defaultPayloadConverter.fromPayload<NodeOrders>(payload);
    },
  };
}
