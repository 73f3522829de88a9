/**
 * The nodes a rollback walks, and in what order. A backfill's id may run more than once
 * (`start --rerun`) with specs of other nodes, and its ledger keeps what every run published:
 * so the rollback walks every node of every run, not only those of the latest spec. Pure.
 */

/** What one run's spec says of a node, as far as a rollback needs it. */
export type RunNode = { id: string; dependsOn: ReadonlyArray<{ node: string }>; taskQueue: string };

export type RollbackNodes = {
  /** Every node of every run, downstream first. */
  order: string[];
  /** Each node's activity task queue, as the newest run that has it says. */
  taskQueues: Record<string, string>;
};

/**
 * `runs`: each run's nodes, oldest run first. The order is downstream first over the edges of
 * every run together; among nodes that do not depend on each other, the newest run's nodes
 * come as its spec lists them (reversed, as a rollback goes), then older runs' others. Runs
 * whose edges together make a cycle (a graph turned round between runs) are still ordered: the
 * cycle is broken at the node the newest spec lists first, so that no node is ever left out.
 */
export function rollbackNodes(runs: ReadonlyArray<readonly RunNode[]>): RollbackNodes {
  const upstream = new Map<string, Set<string>>();
  const taskQueues: Record<string, string> = {};
  // Newest run first: its spec's order wins among independent nodes.
  for (const nodes of [...runs].reverse()) {
    for (const node of nodes) {
      const ups = upstream.get(node.id) ?? new Set<string>();
      for (const dep of node.dependsOn) ups.add(dep.node);
      upstream.set(node.id, ups);
      taskQueues[node.id] ??= node.taskQueue;
    }
  }
  const ids = [...upstream.keys()];
  const placed = new Set<string>();
  const upstreamFirst: string[] = [];
  while (upstreamFirst.length < ids.length) {
    const ready = (id: string) => !placed.has(id) && [...upstream.get(id)!].every((u) => placed.has(u) || !upstream.has(u));
    const next = ids.find(ready) ?? ids.find((id) => !placed.has(id))!;
    upstreamFirst.push(next);
    placed.add(next);
  }
  return { order: upstreamFirst.reverse(), taskQueues };
}

/** `order`, then the nodes of `found` it lacks (sorted): a node the ledger names but no readable run does is still covered. */
export function withUnlisted(order: readonly string[], found: Iterable<string>): string[] {
  const known = new Set(order);
  return [...order, ...[...new Set(found)].filter((n) => !known.has(n)).sort()];
}
