/**
 * The spec and the range of a start's input (`BackfillInput`), checked before the workflow expands
 * its plan: the client resolves them, but anyone who may start workflows can write them by hand
 * (`temporal workflow start`). A spec whose nodes are not a list failed every workflow task of the
 * start, for ever; a range whose bound is no instant failed the start only after it had leased
 * its datasets, saying a partition index was outside 0..NaN.
 */
import { z } from 'zod';
import { formatPath } from './errors.ts';
import { readResolvedSpec } from './spec-changes.ts';
import type { PartitionRange } from './spec.ts';
import { zodProblem } from './zod-errors.ts';

/** Epoch milliseconds, as `parseRange` gives them. */
const RangeSchema = z.strictObject({ from: z.number().finite().optional(), to: z.number().finite().optional() }) satisfies z.ZodType<PartitionRange>;

/** What is wrong with a start's spec or range (`spec.nodes must be array`), or null. */
export function startInputProblem(input: { spec?: unknown; range?: unknown }): string | null {
  const read = readResolvedSpec(input.spec);
  if (!('spec' in read)) return `${formatPath(['spec', ...read.path])} ${read.message}`;
  if (input.range === undefined) return null;
  const range = RangeSchema.safeParse(input.range, { reportInput: true });
  if (!range.success) {
    const problem = zodProblem(range.error);
    return `${formatPath(['range', ...problem.path])} ${problem.message}`;
  }
  return null;
}
