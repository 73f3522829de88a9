/**
 * The upstream partitions one partition reads, as the ledger's lineage names them: a key
 * range of a time grain, the listed keys of a static node, or "all" of it. The node
 * workflow hands these to the partition activity; `--only-changed` recomputes what they
 * would pin now.
 */
import { mappingKind, upstreamRange, type UpstreamRange } from './mapping.ts';
import type { PlanEdge, PlanNode } from './plan.ts';
import type { PartitionInput } from './protocol.ts';

/** One input per dependency, always: the warehouse scopes `FROM <node>` only for the nodes named here. */
export function partitionInputs(node: PlanNode, index: number): PartitionInput[] {
  return node.upstream.map((edge) => edgeInput(edge, index));
}

/**
 * What partition `index` reads of one upstream node: every upstream partition it maps to,
 * within the backfill's range or not (see PlanEdge.full). When the mapping names none the
 * node has, the input lists no keys, so that `FROM <node>` shows nothing rather than the
 * whole dataset.
 */
function edgeInput(edge: PlanEdge, index: number): PartitionInput {
  const { node, full } = edge;
  const range = upstreamRange(edge.target, index, full, edge.mapping);
  if (range.hi <= range.lo) return { node, ...namedKeys(edge, index, range), keys: [] };
  const from = full.key(range.lo);
  const to = full.key(range.hi - 1);
  if (full.grain !== 'static') return { node, from, to };
  // Static keys do not sort by meaning: name them, or say "every partition" for mapping all
  // (only then: an identity on a node of one key names that key, not every key ever published).
  return mappingKind(edge.mapping) === 'all' ? { node, from, to, all: true } : { node, from, to, keys: full.keys(range.lo, range.hi) };
}

/** What a mapping names of a node that has none of it, for lineage: the periods, or the static key the node lacks. */
function namedKeys(edge: PlanEdge, index: number, range: UpstreamRange): { from: string; to: string } {
  if (edge.full.grain === 'static') {
    const key = edge.target.key(index);
    return { from: key, to: key };
  }
  return { from: edge.full.periodKey(range.namedLo), to: edge.full.periodKey(range.namedHi - 1) };
}
