/**
 * What a workflow hands the `emitLineage` activity at each transition of a backfill's run or a
 * node's run: the facts only the workflow knows (its times, its run key, the spec, the range,
 * the counts). What the warehouse knows (dataset names, columns, rows, check results) the
 * activity reads itself. The activity parses this on arrival; workflows import only the type.
 */
import { z } from 'zod';
import { GRAINS } from './calendar.ts';
import { LINEAGE_EVENT_TYPES } from './openlineage.ts';
import { CheckSchema } from './spec.ts';

const PartitionsSchema = z.union([
  z.object({ kind: z.literal('time'), grain: z.enum(GRAINS), start: z.number(), end: z.number() }),
  z.object({ kind: z.literal('static'), keys: z.array(z.string()) }),
]);

/** The part of a node's resolved spec lineage needs (a `ResolvedNode` fits as it is). */
export const LineageNodeSchema = z.looseObject({
  id: z.string().min(1),
  dependsOn: z.array(z.looseObject({ node: z.string().min(1) })),
  partitions: PartitionsSchema,
  checks: z.array(CheckSchema),
});

export const EmitLineageInputSchema = z.object({
  eventType: z.enum(LINEAGE_EVENT_TYPES),
  /** Workflow time of the transition (ms): a retried emit sends the same event. */
  eventTime: z.number().finite(),
  backfillId: z.string().min(1),
  /** The backfill's run key (`BackfillCarry.runKey`, `NodeInput.runKey`): with the node, it makes the run id. */
  runKey: z.string().min(1),
  /** When the backfill started (`BackfillCarry.startedAt`): the time part of every run id of this backfill. */
  startedAt: z.number().finite(),
  spec: z.object({ name: z.string().min(1), description: z.string().optional() }),
  /** The backfill's range (`BackfillInput.range`). */
  range: z.object({ from: z.number().optional(), to: z.number().optional() }),
  /**
   * The backfill's run (every node, each an output), or one node's run (the node; its
   * upstream nodes are its inputs).
   */
  run: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('backfill'), nodes: z.array(LineageNodeSchema).min(1) }),
    z.object({
      kind: z.literal('node'),
      node: LineageNodeSchema,
      /** The node's failure groups (`NodeProgress.failures`): the checks that blocked partitions are read from them. */
      failures: z.array(z.object({ message: z.string(), type: z.string().optional(), partitions: z.number().int().min(0) })).max(1000).optional(),
    }),
  ]),
  /** Why the run failed or was aborted (FAIL, ABORT), e.g. '3 partitions failed: <message>'. */
  error: z.string().optional(),
});

export type EmitLineageInput = z.input<typeof EmitLineageInputSchema>;
export type LineageNode = z.output<typeof LineageNodeSchema>;

/** What `emitLineage` did: it never fails a backfill, so a lost event is reported here and in the worker's log. */
export type EmitLineageResult = { events: number; sent: boolean; transport: string; error?: string };

// ----- what a workflow passes, from what it has -----

/** What every event of one backfill carries: `BackfillInput` and the carry's run key and start. */
export type LineageBackfill = {
  backfillId: string;
  runKey: string;
  startedAt: number;
  spec: { name: string; description?: string; nodes: LineageNodeInput[] };
  range: { from?: number; to?: number };
};
type LineageNodeInput = z.input<typeof LineageNodeSchema>;

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
  const eventType = end.state === 'completed' ? 'COMPLETE' : end.state === 'cancelled' ? 'ABORT' : 'FAIL';
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

/**
 * A node's run's end: COMPLETE when every partition is done, FAIL when some failed or are
 * blocked by upstream failures, ABORT when the backfill was cancelled first.
 */
export function nodeEnded(backfill: LineageBackfill, node: LineageNodeInput, eventTime: number, progress: LineageNodeProgress, cancelled = false): EmitLineageInput {
  const failures = progress.failures.map((f) => ({ message: f.message, partitions: f.partitions, ...(f.type === undefined ? {} : { type: f.type }) }));
  const base = { ...common(backfill, eventTime), run: { kind: 'node' as const, node, ...(failures.length > 0 ? { failures } : {}) } };
  if (cancelled) return { ...base, eventType: 'ABORT', error: `cancelled with ${progress.done} of ${progress.total} partitions done` };
  if (progress.failed === 0 && progress.blocked === 0) return { ...base, eventType: 'COMPLETE' };
  const first = progress.failures[0];
  const parts = [
    progress.failed > 0 ? `${progress.failed} of ${progress.total} partitions failed` : '',
    progress.blocked > 0 ? `${progress.blocked} blocked by failed upstream partitions` : '',
  ].filter(Boolean);
  return { ...base, eventType: 'FAIL', error: `${parts.join(', ')}${first ? `; first failure: ${first.message}` : ''}` };
}
