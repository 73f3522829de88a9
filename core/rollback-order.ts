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

/** A node the ledger holds versions of for a backfill, with the upstream nodes those versions read (their lineage). */
export type LedgerLineage = { node: string; upstream: string[] };

/**
 * The nodes a rollback walks when the histories of some runs (or of all) are gone: those the
 * readable runs name (`order`, downstream first, with their `taskQueues`) and every node the
 * ledger holds versions of. The ledger's lineage orders them (a node before the upstream nodes
 * it read); among nodes that do not depend on each other, the readable runs' order holds, and the
 * ledger's others go in an order fixed by their names. A node only the ledger knows has no task
 * queue here: its batches run on the rollback's own queue.
 */
export function withLedger(order: readonly string[], taskQueues: Readonly<Record<string, string>>, ledger: readonly LedgerLineage[]): RollbackNodes {
  const fromLedger: RunNode[] = [...ledger].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)).map((n) => ({ id: n.node, dependsOn: n.upstream.map((u) => ({ node: u })), taskQueue: '' }));
  // The readable runs as one run listed upstream first (rollbackNodes reverses it back), newest: its order wins.
  const fromHistory: RunNode[] = [...order].reverse().map((id) => ({ id, dependsOn: [], taskQueue: taskQueues[id] ?? '' }));
  const merged = rollbackNodes([fromLedger, fromHistory]);
  return { order: merged.order, taskQueues: Object.fromEntries(Object.entries(merged.taskQueues).filter(([, q]) => q !== '')) };
}
