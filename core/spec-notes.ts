/**
 * What `plan` and `start` note about a spec's SQL without refusing it: a table read whose name
 * is a node's with a typo (`nearNodeReads`), and columns each warehouse would name its own way
 * (`unnamedColumnNotes`).
 */
import type { ResolvedNode } from './spec.ts';
import { unnamedColumnNotes } from './sql-columns.ts';
import { nearNodeReads, type ReadProblem } from './sql-reads.ts';

export function sqlNotes(nodes: readonly ResolvedNode[]): ReadProblem[] {
  return [...nearNodeReads(nodes), ...unnamedColumnNotes(nodes)];
}
