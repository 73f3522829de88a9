/**
 * A node's SQL (and its SQL checks) may read another node of the spec only as a direct
 * upstream. Inside a partition, `FROM <upstream>` shows just the upstream partitions it maps
 * to, at the versions it waited for and pinned (staged ones too), and the ledger records them
 * as its inputs; another dataset read by name shows its published partitions as they are when
 * the query runs. For a table outside the spec that is what the user wants. For a node of the
 * same backfill it is wrong data with no error: nothing makes the reader wait for the node, so
 * it reads whatever of it is published at that moment (an older version, part of the new one,
 * or nothing), a staged backfill never shows it its own staged versions, and lineage misses it.
 *
 * That holds of a node reached only through an upstream (`daily` depends on `clean`, which
 * depends on `raw`, and `daily` reads `raw`) too: the partitions of `raw` that `clean` waited
 * for are done, but `daily` sees all of `raw`'s published partitions rather than the ones it
 * maps to, of a staged run none of them, and records no input of `raw`. So it is refused as
 * well; the fix (one more entry in dependsOn) costs no parallelism, since `daily` waits for
 * those partitions of `raw` already.
 */
import { readRelations } from './sql-relations.ts';
import type { ResolvedNode } from './spec.ts';

export type ReadProblem = { path: Array<string | number>; message: string };

/** For each node, every node it depends on, directly or through others. */
function ancestorsOf(nodes: readonly ResolvedNode[]): Map<string, Set<string>> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const ancestors = new Map<string, Set<string>>();
  const visit = (id: string): Set<string> => {
    const known = ancestors.get(id);
    if (known) return known;
    const found = new Set<string>();
    // Set before the walk: resolveSpec refuses cycles before it asks.
    ancestors.set(id, found);
    for (const dep of byId.get(id)?.dependsOn ?? []) {
      found.add(dep.node);
      for (const up of visit(dep.node)) found.add(up);
    }
    return found;
  };
  for (const node of nodes) visit(node.id);
  return ancestors;
}

/** The dependsOn entries a node would have with `read` added: what the message shows. */
function withRead(node: ResolvedNode, read: string): string {
  return `dependsOn: [${[...node.dependsOn.map((d) => d.node), read].join(', ')}]`;
}

function problemOf(node: ResolvedNode, read: string, what: string, ancestors: ReadonlyMap<string, Set<string>>): string {
  if (ancestors.get(read)?.has(node.id)) {
    return (
      `${what} reads ${read}, a node of this spec that depends on ${node.id} (so it cannot be in dependsOn: a cycle): it would read ` +
      `whatever of ${read} is published when it runs (an earlier backfill's, or nothing). Read the nodes ${read} is computed from instead, ` +
      `or move this SQL to a node that depends on ${read}`
    );
  }
  const via = node.dependsOn.find((d) => ancestors.get(d.node)?.has(read))?.node;
  const why =
    via !== undefined
      ? `depends on only through ${via}: it would read every partition of ${read} published when it runs, not the ones it maps to, ` +
        `none of a staged run, and its lineage would not record them`
      : `does not depend on: its partitions would not wait for ${read}'s and would read whatever of ${read} is published when they run (or nothing)`;
  return (
    `${what} reads ${read}, a node of this spec that ${node.id} ${why}. Add it to dependsOn (with the mapping of the partitions it reads), ` +
    `e.g. ${withRead(node, read)}, or { node: ${read}, mapping: all } to read all of its partitions`
  );
}

/** What a read of a CTE's own name in its compound body without RECURSIVE (SQLite's implicit recursion) means elsewhere. */
function implicitRecursion(read: string, what: string): string {
  return (
    `${what} reads ${read} in the body of a CTE of that name written without RECURSIVE, where PostgreSQL and DuckDB read the node ${read} ` +
    `(SQLite alone reads the CTE itself): if recursion was meant, write WITH RECURSIVE.`
  );
}

/**
 * The first place where a node's SQL, or one of its SQL checks, reads a node of the spec that
 * is not among its direct upstreams (undefined when none does). A node reading itself, a table
 * that is not a node, and qualified names (which the warehouses refuse when the SQL runs) are
 * not its concern. Names are compared without case, as SQLite and DuckDB compare them.
 */
export function undeclaredRead(nodes: readonly ResolvedNode[]): ReadProblem | undefined {
  const ids = new Set(nodes.map((n) => n.id));
  const ancestors = ancestorsOf(nodes);
  for (const [i, node] of nodes.entries()) {
    const direct = new Set(node.dependsOn.map((d) => d.node));
    const texts: Array<{ sql: string; path: Array<string | number>; what: string }> = [];
    if (node.sql !== undefined) texts.push({ sql: node.sql, path: ['nodes', i, 'sql'], what: `${node.id}'s SQL` });
    node.checks.forEach((check, c) => {
      if (check.type === 'sql') texts.push({ sql: check.sql, path: ['nodes', i, 'checks', c, 'sql'], what: `${node.id}'s check '${check.name}'` });
    });
    for (const { sql, path, what } of texts) {
      for (const relation of readRelations(sql)) {
        const read = relation.name.toLowerCase();
        if (relation.qualifier !== null || read === node.id || !ids.has(read) || direct.has(read)) continue;
        const problem = problemOf(node, read, what, ancestors);
        return { path, message: relation.implicitRecursion ? `${implicitRecursion(read, what)} As it stands, ${problem}` : problem };
      }
    }
  }
  return undefined;
}
