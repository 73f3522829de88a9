/**
 * `running` as a node workflow counts it holds every partition of its batches in flight, from the
 * moment it schedules their activity: a partition whose activity no worker has taken yet (all its
 * workers gone, or every slot busy) counted as running. Temporal's pending activities of the node
 * workflow say which are only scheduled and which a worker started, so `status` tells the
 * partitions of the scheduled ones apart as `queued` (and leaves them out of `running`). A batch
 * scheduled again after its worker was lost (its heartbeat timed out) is queued again.
 */
import type { NodePartitions } from '../core/partitions.ts';
import type { NodeProgress, Progress } from '../core/protocol.ts';
import { nodeWorkflowId } from '../core/workflow-ids.ts';
import { mapLimit } from './map-limit.ts';
import { PENDING_ACTIVITY_STATE_SCHEDULED } from './status-wire.ts';

/** The activity that runs a node's partitions (activities/run-partitions.ts). */
const RUN_PARTITIONS = 'runPartitions';
/** Node workflows described at once. */
const DESCRIBES_AT_ONCE = 8;

/** A pending activity of a node workflow, as `describe` gives it (the SDK's client, or the light status's decoding): what is read of it. */
export type NodeActivity = {
  activityId?: string | null;
  activityType?: { name?: string | null } | null;
  state?: number | null;
};

/**
 * Partitions of a node's activities that no worker has started. Their ids are `<node>/<key>`, or
 * `<node>/<first>..<last>` for a batch: one partition, or those from first to last (`partitions`:
 * the node's keys; without them, or when the ends are not its keys, a batch counts one). A batch
 * need not hold every partition between its ends: the caller caps the sum at the node's `running`.
 */
export function queuedPartitions(nodeId: string, pending: readonly NodeActivity[], partitions?: NodePartitions): number {
  let queued = 0;
  for (const activity of pending) {
    if (activity.activityType?.name !== RUN_PARTITIONS || activity.state !== PENDING_ACTIVITY_STATE_SCHEDULED) continue;
    queued += batchSize(nodeId, activity.activityId ?? '', partitions);
  }
  return queued;
}

function batchSize(nodeId: string, activityId: string, partitions: NodePartitions | undefined): number {
  const keys = activityId.startsWith(`${nodeId}/`) ? activityId.slice(nodeId.length + 1) : '';
  if (!partitions || partitions.indexOf(keys) >= 0) return 1;
  // A key may hold '..' itself (a static key): the split whose both ends are keys.
  for (let at = keys.indexOf('..'); at >= 0; at = keys.indexOf('..', at + 1)) {
    const first = partitions.indexOf(keys.slice(0, at));
    const last = partitions.indexOf(keys.slice(at + 2));
    if (first >= 0 && last >= first) return last - first + 1;
  }
  return 1;
}

/** The progress with each node's queued partitions (`queuedByNode`; a node not in it, none) out of `running`, as `queued`; overall too. */
export function withQueued<P extends Progress>(progress: P, queuedByNode: ReadonlyMap<string, number>): P {
  const nodes: NodeProgress[] = progress.nodes.map((n) => {
    const queued = Math.min(n.running, queuedByNode.get(n.id) ?? 0);
    return { ...n, running: n.running - queued, queued };
  });
  const queued = nodes.reduce((sum, n) => sum + (n.queued ?? 0), 0);
  return { ...progress, nodes, running: progress.running - queued, queued };
}

/** What `queuedOf` reads: a node workflow's pending activities (undefined when it cannot be described), and the node's keys (for batches). */
export type QueuedReads = {
  pendingActivities(workflowId: string): Promise<readonly NodeActivity[] | undefined>;
  partitions(nodeId: string): Promise<NodePartitions | undefined>;
};

/**
 * Each node's queued partitions, of the nodes with partitions in flight (`progress`): one describe
 * of each node workflow. A node that cannot be described is left as it reported.
 */
export async function queuedOf(backfillId: string, progress: Progress, reads: QueuedReads): Promise<Map<string, number>> {
  const busy = progress.nodes.filter((n) => n.running > 0);
  const counts = await mapLimit(busy, DESCRIBES_AT_ONCE, async (n) => {
    const pending = await reads.pendingActivities(nodeWorkflowId(backfillId, n.id)).catch(() => undefined);
    if (!pending) return null;
    const batched = pending.some((a) => a.state === PENDING_ACTIVITY_STATE_SCHEDULED && (a.activityId ?? '').includes('..'));
    const partitions = batched ? await reads.partitions(n.id).catch(() => undefined) : undefined;
    return [n.id, queuedPartitions(n.id, pending, partitions)] as const;
  });
  return new Map(counts.filter((c): c is readonly [string, number] => c !== null));
}
