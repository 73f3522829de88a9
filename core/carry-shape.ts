/**
 * The shape of a start's carry (`BackfillCarry`): what a backfill hands its next run, which
 * anyone who can start a workflow can write by hand. The coordinator and the session keep most
 * of its fields as they come and read them later, so a field of another type (limits that are a
 * string, a node's failures that are a number) failed a workflow task of the run, and then every
 * one after it, for ever. A run a client starts with a carry (a resume, a retry-failed) is checked
 * here first and refused; the fields with a reader of their own (readiness, staged, canary,
 * governance, announcedCancel) are checked by it.
 */
import { z } from 'zod';
import { SpendingSchema } from './budget.ts';
import { formatPath } from './errors.ts';
import { BackfillConcurrencySchema, LimitsSchema, RateSchema } from './limits.ts';
import { COST_METRICS } from './policy.ts';
import { RangeSet } from './ranges.ts';
import { readResolvedSpec } from './spec-changes.ts';
import { shapeProblem } from './zod-errors.ts';

const count = z.number().min(0);
const wholeCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A range set as it travels (`RangeSet.toJSON`). */
export const RangesTextSchema = z.string().refine(
  (text) => {
    try {
      RangeSet.fromJSON(text);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'is not a range set' },
);
const ranges = RangesTextSchema;
const byNode = <T extends z.ZodType>(value: T) => z.record(z.string(), value);

const CarryShapeSchema = z.object({
  runKey: z.string(),
  childrenRunning: z.boolean(),
  paused: z.boolean(),
  limits: LimitsSchema,
  overrides: byNode(z.object({ rate: RateSchema.optional(), concurrency: BackfillConcurrencySchema.optional() })),
  reports: byNode(
    z.object({
      running: count,
      rate: count.nullable(),
      concurrency: count,
      throttles: count,
      completed: count,
      firstStartedAt: count.nullable(),
      lastFinishedAt: count.nullable(),
      pausedMs: count.optional(),
      batchSize: count.optional(),
      latencyP95Ms: count.nullable().optional(),
    }),
  ),
  failures: byNode(z.array(z.object({ message: z.string(), type: z.string(), ranges }))),
  outbox: byNode(z.object({ ready: ranges, settingsDirty: z.boolean(), specDirty: z.boolean().optional() })),
  settings: byNode(
    z.object({
      seq: wholeCount,
      rate: count.nullable(),
      burst: count,
      concurrency: count,
      paused: z.boolean(),
      openUntil: count.optional(),
      stopBy: count.optional(),
      allowance: z.object({ metric: z.enum(COST_METRICS), until: count }).optional(),
    }),
  ),
  restarts: byNode(wholeCount),
  recheck: byNode(ranges).optional(),
  startedAt: count.nullable(),
  runs: wholeCount,
  spentTotals: byNode(SpendingSchema).optional(),
  held: z.array(z.tuple([count, count.nullable()])).optional(),
  before: z.object({ completed: count, workMs: count, lastFinishedAt: count }).optional(),
  lineage: z.object({ ended: z.array(z.string()) }).optional(),
  warehouse: z.object({ id: z.string(), location: z.string() }).optional(),
});

/**
 * The carry's fields that a reader of their own checks (the coordinator's `Readiness`,
 * `StagedGate`, `CanaryGate`, `Governance`, its announced cancel), and `spec`, which no run
 * reads but the client starts the next run with: `carrySpecProblem` checks it (the workflow, at a
 * start; the client, `resumedSpec`, before it starts a new run with an ended run's).
 */
const READ_ELSEWHERE: ReadonlySet<string> = new Set(['readiness', 'staged', 'canary', 'governance', 'announcedCancel', 'spec']);

/**
 * The fields of `carry` that neither `carryShapeProblem` nor a reader of their own checks: a
 * field a run hands on that a hand-made carry could set to anything. None, for every carry a run
 * makes (the model test holds every one to it): a new field goes into the schema above.
 */
export function uncheckedCarryFields(carry: object): string[] {
  return Object.keys(carry).filter((field) => !Object.hasOwn(CarryShapeSchema.shape, field) && !READ_ELSEWHERE.has(field));
}

/** What is wrong with the shape of `carry` (the field, then what), or null when every field this checks has its type. */
export function carryShapeProblem(carry: unknown): string | null {
  return shapeProblem(CarryShapeSchema, carry, ['carry']);
}

/**
 * What is wrong with a carry's `spec` (the resolved spec its run ran with, which the client
 * starts the next run with), or null: the shape a `resume --spec` must have (`readResolvedSpec`).
 * An older build's, or one written by hand, may be of another shape; started with, it failed the
 * new run's workflow tasks for ever, or the client with a TypeError.
 */
export function carrySpecProblem(spec: unknown): string | null {
  return resolvedSpecProblem(spec, ['carry', 'spec']);
}

/** What is wrong with a resolved spec found at `at` of an input (`readResolvedSpec`: the shape `resume --spec` must have), or null. */
export function resolvedSpecProblem(spec: unknown, at: readonly PropertyKey[]): string | null {
  const read = readResolvedSpec(spec);
  return 'spec' in read ? null : `${formatPath([...at, ...read.path])} ${read.message}`;
}
