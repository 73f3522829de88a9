/**
 * What a workflow passes `emitLineage` at each transition, made from what it has then: the
 * backfill's input and carry, the time, and a node's progress. Pure and free of zod, so that
 * workflow code can import it.
 */
import type { EmitLineageInput, LineageNodeInput } from './lineage-input.ts';
import { terminalEventType } from './openlineage.ts';

/** What every event of one backfill carries: `BackfillInput` and the carry's run key and start. */
export type LineageBackfill = {
  backfillId: string;
  runKey: string;
  startedAt: number;
  spec: { name: string; description?: string; nodes: LineageNodeInput[] };
  range: { from?: number; to?: number };
};

/** Counts and failures of a node, as `NodeProgress` has them. */
export type LineageNodeProgress = { total: number; done: number; failed: number; blocked: number; pending: number; running: number; failures: ReadonlyArray<{ message: string; type?: string; partitions: number }> };

function common(backfill: LineageBackfill, eventTime: number) {
  const { name, description } = backfill.spec;
  return { eventTime, backfillId: backfill.backfillId, runKey: backfill.runKey, startedAt: backfill.startedAt, spec: description === undefined ? { name } : { name, description }, range: backfill.range };
}

/** The backfill's START. */
export function backfillStarted(backfill: LineageBackfill, eventTime: number): EmitLineageInput {
  return { ...common(backfill, eventTime), eventType: 'START', run: { kind: 'backfill', nodes: backfill.spec.nodes } };
}

/**
 * The backfill's end: COMPLETE when it completed, FAIL when it failed or completed with
 * failed partitions, ABORT when it was cancelled. `why`: the failure's message (failed).
 */
export function backfillEnded(
  backfill: LineageBackfill,
  eventTime: number,
  end: { state: 'completed' | 'completed_with_failures' | 'failed' | 'cancelled'; failedPartitions?: number; why?: string },
): EmitLineageInput {
  const eventType = terminalEventType(end.state);
  const error =
    end.state === 'completed_with_failures'
      ? `${end.failedPartitions ?? 'some'} partition(s) failed`
      : end.state === 'failed'
        ? (end.why ?? 'the backfill failed')
        : end.state === 'cancelled'
          ? (end.why ?? 'the backfill was cancelled')
          : undefined;
  return { ...common(backfill, eventTime), eventType, run: { kind: 'backfill', nodes: backfill.spec.nodes }, ...(error === undefined ? {} : { error }) };
}

/** A node's run's START (when its workflow is first started). */
export function nodeStarted(backfill: LineageBackfill, node: LineageNodeInput, eventTime: number): EmitLineageInput {
  return { ...common(backfill, eventTime), eventType: 'START', run: { kind: 'node', node } };
}

/** Whether a node's run is over: nothing of it pending or running (every partition done, failed or blocked). */
export function nodeSettled(progress: LineageNodeProgress): boolean {
  return progress.pending === 0 && progress.running === 0 && progress.done + progress.failed + progress.blocked >= progress.total;
}

/** How the backfill stood when a node's run ends, besides the node's progress. */
export type NodeEnd = {
  /** The backfill was cancelled (or its staged versions discarded) first. */
  cancelled?: boolean;
  /** Why the backfill stopped: a cancel's note (a discard's), or its failure's message. */
  why?: string;
  /** Nothing the node wrote was published (a canary stopped by a failure in its slice). */
  unpublished?: boolean;
};

/**
 * A node's run's end: COMPLETE when every partition is done (and published), FAIL when some
 * failed or are blocked by upstream failures, ABORT when the backfill was cancelled first
 * (`why` says how, when it was not an operator's cancel: a staged backfill's discard), or
 * stopped (`why`: its failure) before every partition of the node was done and published,
 * none of them failed.
 */
export function nodeEnded(backfill: LineageBackfill, node: LineageNodeInput, eventTime: number, progress: LineageNodeProgress, end: NodeEnd = {}): EmitLineageInput {
  const failures = progress.failures.map((f) => ({ message: f.message, partitions: f.partitions, ...(f.type === undefined ? {} : { type: f.type }) }));
  const base = { ...common(backfill, eventTime), run: { kind: 'node' as const, node, ...(failures.length > 0 ? { failures } : {}) } };
  const done = `${progress.done} of ${progress.total} partitions done`;
  if (end.cancelled) return { ...base, eventType: 'ABORT', error: end.why ?? `cancelled with ${done}` };
  if (progress.failed === 0 && progress.blocked === 0) {
    if (progress.done >= progress.total && !end.unpublished) return { ...base, eventType: 'COMPLETE' };
    const stopped = `stopped with ${done}${end.unpublished ? ' (none published)' : ''}`;
    return { ...base, eventType: 'ABORT', error: end.why === undefined ? stopped : `${stopped}: ${end.why}` };
  }
  const first = progress.failures[0];
  const parts = [
    progress.failed > 0 ? `${progress.failed} of ${progress.total} partitions failed` : '',
    progress.blocked > 0 ? `${progress.blocked} blocked by failed upstream partitions` : '',
  ].filter(Boolean);
  return { ...base, eventType: 'FAIL', error: `${parts.join(', ')}${first ? `; first failure: ${first.message}` : ''}` };
}
