/**
 * What `plan` and `start` note about a spec without refusing it: a table read whose name is a
 * node's with a typo (`nearNodeReads`), columns each warehouse would name its own way
 * (`unnamedColumnNotes`), and a coarser node's partial first or last period
 * (`partialPeriodNotes`, which `plan` reads from its plan).
 */
import { partialPeriodNotes } from './partial-periods.ts';
import { NodePartitions } from './partitions.ts';
import type { PartitionRange, ResolvedNode } from './spec.ts';
import { unnamedColumnNotes } from './sql-columns.ts';
import { nearNodeReads, type ReadProblem } from './sql-reads.ts';

export function sqlNotes(nodes: readonly ResolvedNode[]): ReadProblem[] {
  return [...nearNodeReads(nodes), ...unnamedColumnNotes(nodes)];
}

/** Every note of the nodes, with their partitions in the range: what `plan` shows of its plan's nodes. */
export function specNotes(nodes: ReadonlyArray<{ spec: ResolvedNode; partitions: NodePartitions }>): string[] {
  return [...sqlNotes(nodes.map((n) => n.spec)).map((n) => n.message), ...partialPeriodNotes(nodes)];
}

/** Every note `start` prints for the spec in the range, as `plan` would (a range beyond the spec aside), without expanding a plan. */
export function startNotes(nodes: readonly ResolvedNode[], range: PartitionRange): string[] {
  return specNotes(nodes.map((spec) => ({ spec, partitions: NodePartitions.of(spec.partitions, range) })));
}
