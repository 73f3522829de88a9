/**
 * The spec, range, limits and skip of a start's input (`BackfillInput`), as the workflow reads
 * them: the client makes them, but anyone who may start workflows can write them by hand
 * (`temporal workflow start`). A spec whose nodes are not a list, a rate that is a string, a
 * concurrency below 1 or a skip that is no range set failed every workflow task of the start, for
 * ever; a range whose bound is no instant failed the start only after it had leased its datasets,
 * saying a partition index was outside 0..NaN.
 */
import { z } from 'zod';
import { RangesTextSchema, resolvedSpecProblem } from './carry-shape.ts';
import { BackfillConcurrencySchema, RateSchema } from './limits.ts';
import type { PartitionRange } from './spec.ts';
import { shapeProblem } from './zod-errors.ts';

/** Epoch milliseconds, as `parseRange` gives them. */
const RangeSchema = z.strictObject({ from: z.number().finite().optional(), to: z.number().finite().optional() }) satisfies z.ZodType<PartitionRange>;
/** What `start --rate/--concurrency` and `--only-changed` send (by node, the partitions whose published versions stand). */
const ExtrasSchema = z.object({
  limits: z.strictObject({ rate: RateSchema.optional(), concurrency: BackfillConcurrencySchema.optional() }).optional(),
  skip: z.record(z.string(), RangesTextSchema).optional(),
});

/**
 * What is wrong with a start's spec (`spec.nodes must be array`), or null: the shape `resume
 * --spec` must have. Asked only of a spec the plan could not be expanded from: a spec an older
 * release resolved may lack settings added since, and still run.
 */
export function startSpecProblem(spec: unknown): string | null {
  return resolvedSpecProblem(spec, ['spec']);
}

/** What is wrong with a start's range, limits or skip (`limits.rate ...`), or null: shapes no release has changed. */
export function startInputProblem(input: { range?: unknown; limits?: unknown; skip?: unknown }): string | null {
  const range = input.range === undefined ? null : shapeProblem(RangeSchema, input.range, ['range']);
  return range ?? shapeProblem(ExtrasSchema, { limits: input.limits, skip: input.skip }, []);
}
