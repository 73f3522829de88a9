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

/**
 * Under the activity's start-to-close timeout (10 s, workflows/node.ts): past it the server has
 * given up on the attempt. A query waits for a workflow worker to answer it (30 s by default), and
 * none answers once this worker shuts down: without a deadline and the activity's cancellation, the
 * attempt outlived the worker's shutdown grace.
 */
const ORDERS_QUERY_TIMEOUT_MS = 9_000;

export type NodeOrdersActivities = { fetchNodeOrders(request: NodeOrdersRequest): Promise<NodeOrders> };

export function createNodeOrdersActivities(connection: Pick<NativeConnection, 'workflowService' | 'withDeadline'>, namespace: string): NodeOrdersActivities {
  return {
    async fetchNodeOrders({ parentWorkflowId, node }) {
      // The native connection takes a deadline (which it retries past) but not an abort signal: the
      // attempt ends on its cancellation or its own timer, and the call is left to its deadline.
      const query = connection.withDeadline(Date.now() + ORDERS_QUERY_TIMEOUT_MS, () =>
        connection.workflowService.queryWorkflow({
          namespace,
          execution: { workflowId: parentWorkflowId },
          query: { queryType: QUERY_NAMES.nodeOrders, queryArgs: { payloads: [defaultPayloadConverter.toPayload(node)] } },
        }),
      );
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the backfill's workflow ${parentWorkflowId} did not answer within ${ORDERS_QUERY_TIMEOUT_MS / 1000} s (is a worker of its task queue running?)`)), ORDERS_QUERY_TIMEOUT_MS);
      });
      const response = await Promise.race([query, Context.current().cancelled, timedOut]).finally(() => clearTimeout(timer));
      const payload = response.queryResult?.payloads?.[0];
      if (!payload) throw new Error(`the backfill's workflow ${parentWorkflowId} gave no orders for node ${node}`);
      return defaultPayloadConverter.fromPayload<NodeOrders>(payload);
    },
  };
}
