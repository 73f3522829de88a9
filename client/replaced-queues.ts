/**
 * The task queues a running backfill's nodes were moved to since its run started: a new spec sent
 * to it (`resume --spec`, `replaceSpec`) may change a node's taskQueue, which the run's input does
 * not tell. Each accepted update keeps its spec in the history.
 */
import type { temporal } from '@temporalio/proto';
import { replaceSpecUpdate } from '../workflows/definitions.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payload = temporal.api.common.v1.IPayload;

/** The task queues of the specs a run's history accepted (none: it kept its input's); null when one of them cannot be read. */
export function replacedSpecQueues(events: readonly HistoryEvent[], decode: (payload: Payload) => unknown): string[] | null {
  const queues = new Set<string>();
  for (const event of events) {
    const input = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
    if (input?.name !== replaceSpecUpdate.name) continue;
    const payload = input.args?.payloads?.[0];
    let nodes: unknown;
    try {
      nodes = payload ? (decode(payload) as { nodes?: unknown } | null)?.nodes : undefined;
    } catch {
      return null;
    }
    if (!Array.isArray(nodes)) return null;
    for (const node of nodes) {
      const queue = (node as { taskQueue?: unknown } | null)?.taskQueue;
      if (typeof queue !== 'string') return null;
      queues.add(queue);
    }
  }
  return [...queues];
}
