/**
 * Fix and go on: a backfill may run on with a new spec (a fixed transform, SQL, parameters,
 * checks or limits), but only one that describes the same partitions: the same nodes, the same
 * partitions of each, the same dependencies. Otherwise what is done would not mean the same.
 */
import { BackfillError } from './errors.ts';
import type { ResolvedNode, ResolvedSpec } from './spec.ts';

const stable = (value: unknown) => JSON.stringify(value);

/** What a partition computes and how it runs: the fields that may change. */
function runFields(node: ResolvedNode): unknown {
  const { id: _id, partitions: _partitions, dependsOn: _dependsOn, ...rest } = node;
  return rest;
}

/**
 * The ids of the nodes whose spec changed from `previous` to `next`; throws a BackfillError
 * naming the first difference that would change which partitions exist or what they need.
 */
export function changedNodes(previous: ResolvedSpec, next: ResolvedSpec): string[] {
  const before = new Map(previous.nodes.map((n) => [n.id, n]));
  const after = new Map(next.nodes.map((n) => [n.id, n]));
  const refuse = (what: string) => {
    throw new BackfillError('invalid_argument', `the new spec ${what}: a backfill goes on only with the same nodes, partitions and dependencies (start a new backfill for a different plan)`, 'spec');
  };
  for (const id of before.keys()) if (!after.has(id)) refuse(`has no node '${id}'`);
  for (const id of after.keys()) if (!before.has(id)) refuse(`adds node '${id}'`);
  const changed: string[] = [];
  for (const [id, old] of before) {
    const node = after.get(id)!;
    if (stable(old.partitions) !== stable(node.partitions)) refuse(`changes the partitions of '${id}' (${stable(old.partitions)} → ${stable(node.partitions)})`);
    if (stable(old.dependsOn) !== stable(node.dependsOn)) refuse(`changes what '${id}' depends on (${stable(old.dependsOn)} → ${stable(node.dependsOn)})`);
    if (stable(runFields(old)) !== stable(runFields(node))) changed.push(id);
  }
  return changed;
}
