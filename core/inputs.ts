/**
 * The upstream partitions one partition reads, as the ledger's lineage names them: a key
 * range of a time grain, the listed keys of a static node, or "all" of it. The node
 * workflow hands these to the partition activity; `--only-changed` recomputes what they
 * would pin now.
 */
import { mappingKind } from './mapping.ts';
import { mappedRange, type PlanNode } from './plan.ts';
import type { PartitionInput } from './protocol.ts';

export function partitionInputs(node: PlanNode, index: number): PartitionInput[] {
  const inputs: PartitionInput[] = [];
  for (const edge of node.upstream) {
    // Every upstream partition it maps to, within the backfill's range or not (see PlanEdge.full).
    const [lo, hi] = mappedRange(edge.target, index, edge.full, edge.mapping);
    if (hi <= lo) continue;
    const range = { node: edge.node, from: edge.full.key(lo), to: edge.full.key(hi - 1) };
    if (edge.full.grain !== 'static') inputs.push(range);
    // Static keys do not sort by meaning: name them, or say "every partition" for mapping all
    // (only then: an identity on a node of one key names that key, not every key ever published).
    else inputs.push(mappingKind(edge.mapping) === 'all' ? { ...range, all: true } : { ...range, keys: edge.full.keys(lo, hi) });
  }
  return inputs;
}
