/**
 * The upstream partitions one partition reads, as the ledger's lineage names them: a key
 * range of a time grain, the listed keys of a static node, or "all" of it. The node
 * workflow hands these to the partition activity; `--only-changed` recomputes what they
 * would pin now.
 */
import type { PlanNode } from './plan.ts';
import type { PartitionInput } from './protocol.ts';

export function partitionInputs(node: PlanNode, index: number): PartitionInput[] {
  return node.upstream
    .filter((edge) => edge.hi[index]! > edge.lo[index]!)
    .map((edge) => {
      const lo = edge.lo[index]!;
      const hi = edge.hi[index]!;
      const range = { node: edge.node, from: edge.source.key(lo), to: edge.source.key(hi - 1) };
      if (edge.source.grain !== 'static') return range;
      // Static keys do not sort by meaning: name them, or say "every partition" for mapping all.
      return lo === 0 && hi === edge.source.size ? { ...range, all: true } : { ...range, keys: edge.source.keys(lo, hi) };
    });
}
