/** Dependency graphs of nodes: cycle detection and a stable topological order. */
export type GraphNode = { id: string; upstream: readonly string[] };

/**
 * A dependency cycle as a list of ids that starts and ends with the same node
 * (`[a, b, c, a]`: a depends on b, b on c, c on a), or undefined when there is none.
 */
export function findCycle(nodes: readonly GraphNode[]): string[] | undefined {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    const seen = state.get(id);
    if (seen === 'done') return undefined;
    if (seen === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    for (const up of byId.get(id)?.upstream ?? []) {
      if (!byId.has(up)) continue;
      const cycle = visit(up);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const node of nodes) {
    const cycle = visit(node.id);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * Ids in dependency order (every node after all of its upstream nodes), keeping the
 * given order among nodes that do not depend on each other. Throws on a cycle.
 */
export function topologicalOrder(nodes: readonly GraphNode[]): string[] {
  const order: string[] = [];
  const placed = new Set<string>();
  const ids = new Set(nodes.map((n) => n.id));
  while (order.length < nodes.length) {
    const next = nodes.find((n) => !placed.has(n.id) && n.upstream.every((u) => placed.has(u) || !ids.has(u)));
    if (!next) throw new Error(`dependency cycle among ${nodes.filter((n) => !placed.has(n.id)).map((n) => n.id).join(', ')}`);
    order.push(next.id);
    placed.add(next.id);
  }
  return order;
}

/** For each node, every node it depends on, directly or through others (cycles end the walk where they close). */
export function ancestorsOf(nodes: readonly GraphNode[]): Map<string, Set<string>> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const ancestors = new Map<string, Set<string>>();
  const visit = (id: string): Set<string> => {
    const known = ancestors.get(id);
    if (known) return known;
    const found = new Set<string>();
    // Set before the walk, so that a cycle ends at the node it started from.
    ancestors.set(id, found);
    for (const up of byId.get(id)?.upstream ?? []) {
      found.add(up);
      for (const further of visit(up)) found.add(further);
    }
    return found;
  };
  for (const node of nodes) visit(node.id);
  return ancestors;
}
