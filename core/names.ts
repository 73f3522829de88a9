/**
 * Which names a node (dataset) may have. A node id names a view and a versions table in the
 * warehouse, so it must be a plain identifier that collides with nothing the warehouse or
 * the database keeps for itself. The spec refuses bad ids before anything starts, and the
 * warehouse checks again before any DDL (a worker never trusts its input).
 */
export const NODE_ID = /^[a-z][a-z0-9_]*$/;
/** PostgreSQL identifiers are at most 63 bytes, and the versions table appends `__versions`. */
export const MAX_NODE_ID_LENGTH = 53;
const RESERVED_PREFIXES = ['backfill_', 'sqlite_', 'pg_'];

/** What is wrong with `id` as a dataset name, phrased to follow it, or undefined when it is fine. */
export function datasetNameProblem(id: string): string | undefined {
  if (!NODE_ID.test(id)) return 'must start with a lowercase letter and hold only lowercase letters, digits and _ (it names a table)';
  if (id.length > MAX_NODE_ID_LENGTH) return `is ${id.length} characters long: at most ${MAX_NODE_ID_LENGTH} (it names a table, and PostgreSQL names are at most 63 bytes)`;
  const prefix = RESERVED_PREFIXES.find((p) => id.startsWith(p));
  if (prefix) return `starts with '${prefix}', which is reserved for the warehouse's and the database's own tables: rename the node`;
  if (id.includes('__')) return "contains '__', which is reserved for backfill's internal tables (such as <node>__versions): rename the node";
  return undefined;
}

/** Workflow ids a node's workflow (`backfill/<id>/<node>`) must not take. */
const RESERVED_NODE_IDS: Record<string, string> = {
  rollback: "is reserved: a backfill's rollback workflow is backfill/<id>/rollback, the id this node's workflow would have; rename the node",
};

/** What is wrong with `id` as a node id (a dataset name that also names a workflow), or undefined when it is fine. */
export function nodeIdProblem(id: string): string | undefined {
  return datasetNameProblem(id) ?? RESERVED_NODE_IDS[id];
}
