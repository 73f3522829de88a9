/**
 * The upstream partitions one partition reads, as the ledger's lineage names them: a key
 * range of a time grain, the listed keys of a static node, or "all" of it. The node
 * workflow hands these to the partition activity; `--only-changed` recomputes what they
 * would pin now.
 */
import { mappingKind, upstreamRange } from './mapping.ts';
import type { PlanEdge, PlanNode } from './plan.ts';
import type { PartitionInput } from './protocol.ts';

/** One input per dependency, always: the warehouse scopes `FROM <node>` only for the nodes named here. */
export function partitionInputs(node: PlanNode, index: number): PartitionInput[] {
  return node.upstream.map((edge) => edgeInput(edge, index));
}

/**
 * What partition `index` reads of one upstream node. Of a time node: every period its mapping
 * names, within the backfill's range or not (see PlanEdge.full), and also before or after the
 * node's own partitions: a rolling window on the spec's first day reads whatever of the days
 * before it an earlier backfill published (they are not waited for: see Readiness). Of a
 * static node: its key, or every key for mapping `all`; a key the node lacks lists no keys, so
 * that `FROM <node>` shows nothing rather than the whole dataset.
 */
function edgeInput(edge: PlanEdge, index: number): PartitionInput {
  const { node, full } = edge;
  const range = upstreamRange(edge.target, index, full, edge.mapping);
  if (full.grain !== 'static') return { node, from: full.periodKey(range.namedLo), to: full.periodKey(range.namedHi - 1) };
  // Static keys do not sort by meaning: name them, or say "every partition" for mapping all
  // (only then: an identity on a node of one key names that key, not every key ever published).
  if (mappingKind(edge.mapping) === 'all') return { node, from: full.key(0), to: full.key(full.size - 1), all: true };
  const key = edge.target.key(index);
  return { node, from: key, to: key, keys: full.keys(range.lo, range.hi) };
}
