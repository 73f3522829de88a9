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

/** Every note `start` prints for the spec in the range, as `plan` would (a range beyond the spec aside). */
export function startNotes(nodes: readonly ResolvedNode[], range: PartitionRange): string[] {
  const inRange = nodes.map((spec) => ({ spec, partitions: NodePartitions.of(spec.partitions, range) }));
  return [...sqlNotes(nodes).map((n) => n.message), ...partialPeriodNotes(inRange)];
}
