/**
 * What a partition's SQL error adds when the SQL names a table that is not there: a typo, or a
 * node it reads without depending on it. The engines' messages: SQLite's `no such table: x`,
 * PostgreSQL's `relation "x" does not exist`, DuckDB's `Table with name x does not exist`.
 */
const MISSING = [/no such table: ([\w.$]+)/, /relation "([^"]+)" does not exist/, /Table with name ([\w.$]+) does not exist/];

export function missingRelationHint(message: string, upstream: readonly string[]): string {
  const name = MISSING.map((pattern) => pattern.exec(message)?.[1]).find((found) => found !== undefined);
  // A dataset it depends on that is missing is another problem, which this hint would misname.
  if (name === undefined || upstream.includes(name)) return message;
  const reads = upstream.length > 0 ? `a dataset this node depends on (${[...new Set(upstream)].join(', ')})` : 'a dataset this node depends on (it depends on none)';
  return `${message}: '${name}' is neither ${reads} nor a table or view in the warehouse; correct the name, or add the node that produces it to dependsOn`;
}
