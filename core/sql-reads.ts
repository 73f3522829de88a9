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
 *
 * A node's own dataset is refused too (it cannot depend on itself, so the read is of whatever
 * of it is published), and so is a dataset or backfill's tables named other than by a
 * dataset's plain name, which the warehouses' spec-SQL door refuses inside a partition: found
 * here, the refusal comes at plan rather than when the partition runs.
 */
import { editDistance } from './closest.ts';
import { ancestorsOf } from './graph.ts';
import { readRelations, type SqlRelation } from './sql-relations.ts';
import type { ResolvedNode } from './spec.ts';

export type ReadProblem = { path: Array<string | number>; message: string };

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
 * A node reading its own dataset by name. Nothing scopes or pins that read (a node cannot depend
 * on itself): it shows whatever of the dataset is published when the partition runs, an
 * earlier backfill's versions and this one's published so far, and on a first backfill there
 * is no such table yet. A check has {{this}} and {{previous}} for what it would mean.
 */
function selfRead(node: ResolvedNode, shown: string, what: string, inCheck: boolean): string {
  const reads =
    `${what} reads ${shown}, ${node.id}'s own dataset: a node cannot depend on itself, so that read is not scoped to a partition or pinned, ` +
    `and shows whatever of ${node.id} is published when it runs (an earlier backfill's versions and this one's so far; on a first backfill, no such table).`;
  if (inCheck) return `${reads} Read {{this}} for the partition's new version, or {{previous}} for the published one it replaces`;
  const example = node.dependsOn[0]?.node ?? '<upstream>';
  return (
    `${reads} To build on earlier periods, compute them from the upstream with a window or lag mapping, ` +
    `e.g. dependsOn: [{ node: ${example}, mapping: { lag: { from: -6, to: 0 } } }] (docs/concepts.md, "Mappings")`
  );
}

/** SQLite's names of backfill's own tables (PostgreSQL keeps them in a schema of their own, `backfill` by default). */
const OWN_TABLES = new Set(['ledger', 'partitions', 'rollbacks', 'meta', 'leases', 'signatures', 'scope'].map((t) => `backfill_${t}`));
const VERSIONS = '__versions';
/**
 * Where SQLite and DuckDB keep their datasets: a name in them is the dataset's. PostgreSQL keeps
 * the views in the connection's schema, which plan does not know (`public`, or `analytics` beside
 * source tables of the same names in `public`: docs/deploying.md), and refuses it when the
 * partition runs.
 */
const DATASET_SCHEMAS = new Set(['main', 'temp']);

/**
 * A name that reaches a dataset or backfill's tables other than by a dataset's plain name: the
 * warehouses refuse it inside a partition (or find no such table), and it would read every
 * partition, not the ones this one maps to: a node's versions table (`<node>__versions`: node
 * ids hold no `__`), backfill's own tables (`backfill_ledger`, anything in a schema named
 * `backfill`), a node named with a schema SQLite and DuckDB keep datasets in (`main.orders`,
 * `temp.orders`), each unqualified or in those schemas. Another schema (`raw.orders`,
 * `public.orders`, `audit.backfill_meta`, `raw.stg_app__versions`) passes: a source table that
 * shares a node's name is common, and PostgreSQL, whose views' schema only the warehouse knows,
 * refuses that schema's names when the partition runs.
 */
function outsideRead(node: ResolvedNode, relation: SqlRelation, what: string, inCheck: boolean, ids: ReadonlySet<string>, direct: ReadonlySet<string>): string | undefined {
  const name = relation.name.toLowerCase();
  const schema = relation.qualifier?.toLowerCase().split('.').at(-1);
  const shown = relation.qualifier === null ? relation.name : `${relation.qualifier}.${relation.name}`;
  const refused = 'which the warehouses refuse inside a partition: it would read every partition, not the ones this one maps to, and the ledger would not record them as its inputs';
  const plainly = (dataset: string): string =>
    dataset === node.id
      ? inCheck
        ? 'Read {{this}} for the partition\'s new version, or {{previous}} for the published one it replaces'
        : `A node cannot read its own dataset: build on earlier periods from its upstreams, with a window or lag mapping`
      : direct.has(dataset)
        ? `Read it by its plain name, FROM ${dataset}, which shows just the partitions this one maps to`
        : `Read it by its plain name, FROM ${dataset}, with ${dataset} in dependsOn (e.g. ${withRead(node, dataset)}), which shows just the partitions this one maps to`;
  const datasetSchema = schema === undefined || DATASET_SCHEMAS.has(schema);
  if (name.endsWith(VERSIONS) && ids.has(name.slice(0, -VERSIONS.length)) && (datasetSchema || schema === 'backfill')) {
    const dataset = name.slice(0, -VERSIONS.length);
    return `${what} reads ${shown}, the versions table backfill keeps for ${dataset} (every version of every partition), ${refused}. ${plainly(dataset)}`;
  }
  if ((OWN_TABLES.has(name) && datasetSchema) || schema === 'backfill') {
    return (
      `${what} reads ${shown}, one of backfill's own tables (the ledger, the published pointers, the leases, the signed starts, the versions), ${refused}. ` +
      `Spec SQL reads datasets by their plain names only (backfill's own records are shown by backfill status, lineage and report)`
    );
  }
  if (schema !== undefined && datasetSchema && ids.has(name)) {
    const other = `If ${shown} is a table of yours other than the dataset ${name}, rename the node, or read that table through a view of another name`;
    if (name === node.id) return `${selfRead(node, shown, what, inCheck)}. ${other}`;
    return (
      `${what} reads ${shown}, the node ${name} named with a schema, ${refused} (or there is no such table). ${plainly(name)}. ${other}`
    );
  }
  return undefined;
}

/** How the comments were read where a read is found by one reading only: the spec does not say which warehouse runs it. */
function reading(relation: SqlRelation): string {
  if (relation.readBy === 'both') return '';
  const found =
    relation.readBy === 'flat'
      ? 'only as SQLite reads the text, which ends a /* comment at its first */ (PostgreSQL and DuckDB nest comments and read it as commented out)'
      : 'only as PostgreSQL and DuckDB read the text, which nest /* comments (SQLite ends one at its first */ and reads it otherwise)';
  return ` (This read is found ${found}; the spec does not say which warehouse runs it, so either reading counts. Do not write /* inside a comment, or use -- comments, and both read it alike.)`;
}

/** The node's SQL and its SQL checks', each with its path in the spec and how a message names it (`i`: the node's index). */
function sqlTexts(node: ResolvedNode, i: number): Array<{ sql: string; path: Array<string | number>; what: string; inCheck: boolean }> {
  const texts: Array<{ sql: string; path: Array<string | number>; what: string; inCheck: boolean }> = [];
  if (node.sql !== undefined) texts.push({ sql: node.sql, path: ['nodes', i, 'sql'], what: `${node.id}'s SQL`, inCheck: false });
  node.checks.forEach((check, c) => {
    if (check.type === 'sql') texts.push({ sql: check.sql, path: ['nodes', i, 'checks', c, 'sql'], what: `${node.id}'s check '${check.name}'`, inCheck: true });
  });
  return texts;
}

/**
 * The first place where a node's SQL, or one of its SQL checks, reads what it may not (undefined
 * when none does): a node of the spec that is not among its direct upstreams, its own dataset
 * (its own WITH of that name is no read), or a dataset or backfill's tables by another name than
 * a dataset's plain one (`outsideRead`). A table that is not a node passes. Names are compared
 * without case, as SQLite and DuckDB compare them.
 */
export function undeclaredRead(nodes: readonly ResolvedNode[]): ReadProblem | undefined {
  const ids = new Set(nodes.map((n) => n.id));
  const ancestors = ancestorsOf(nodes.map((n) => ({ id: n.id, upstream: n.dependsOn.map((d) => d.node) })));
  for (const [i, node] of nodes.entries()) {
    const direct = new Set(node.dependsOn.map((d) => d.node));
    for (const { sql, path, what, inCheck } of sqlTexts(node, i)) {
      for (const relation of readRelations(sql)) {
        const read = relation.name.toLowerCase();
        let problem = outsideRead(node, relation, what, inCheck, ids, direct);
        if (problem === undefined && relation.qualifier === null && read === node.id) problem = selfRead(node, relation.name, what, inCheck);
        if (problem === undefined && relation.qualifier === null && ids.has(read) && !direct.has(read)) problem = problemOf(node, read, what, ancestors);
        if (problem === undefined) continue;
        const message = relation.implicitRecursion ? `${implicitRecursion(read, what)} As it stands, ${problem}` : problem;
        return { path, message: message + reading(relation) };
      }
    }
  }
  return undefined;
}

/** Names shorter than this are not taken for typos of a node's: too many tables are a letter or two off. */
const NEAR_MIN_LENGTH = 5;

/**
 * Reads of a table outside the spec whose name is a node's with a letter or two wrong
 * (`FROM orders_clen` beside the node `orders_clean`): a typo, most likely, which passes the
 * checks above (a table outside the spec is the user's to read) and fails only when a
 * partition runs, or, should a table of that name exist, reads it without a word. Said by
 * `plan`, not refused: the table may be meant. A name held in a node's, or holding one
 * (`orders` beside `orders_raw`), is a source table more often than not, and is not said.
 */
export function nearNodeReads(nodes: readonly ResolvedNode[]): ReadProblem[] {
  const ids = nodes.map((n) => n.id);
  const known = new Set(ids);
  const notes: ReadProblem[] = [];
  for (const [i, node] of nodes.entries()) {
    for (const { sql, path, what } of sqlTexts(node, i)) {
      const said = new Set<string>();
      for (const relation of readRelations(sql)) {
        const read = relation.name.toLowerCase();
        if (relation.qualifier !== null || known.has(read) || read.length < NEAR_MIN_LENGTH || said.has(read)) continue;
        const near = ids.filter((id) => id !== node.id && !id.includes(read) && !read.includes(id) && editDistance(read, id) <= 2);
        if (near.length === 0) continue;
        said.add(read);
        const meant = near.map((id) => (node.dependsOn.some((d) => d.node === id) ? id : `${id} (add it to dependsOn too)`)).join(' or ');
        notes.push({ path, message: `${what} reads ${relation.name}, which is no node of this spec: if you meant ${meant}, correct the name; as it is, it reads a table of that name outside the spec, and fails when a partition runs if there is none` });
      }
    }
  }
  return notes;
}
