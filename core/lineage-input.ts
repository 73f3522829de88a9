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
/** A node as a workflow passes it (a `ResolvedNode` fits). */
export type LineageNodeInput = z.input<typeof LineageNodeSchema>;

/** What `emitLineage` did: it never fails a backfill, so a lost event is reported here and in the worker's log. */
export type EmitLineageResult = { events: number; sent: boolean; transport: string; error?: string };
