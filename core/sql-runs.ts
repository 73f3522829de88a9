/**
 * Spec SQL that cannot run, found before anything starts, by the rules the warehouses apply
 * when a partition runs it: more than one statement (`extraStatements`, which the warehouses'
 * `singleStatement` applies too), a statement that is no query (`UPDATE ...`, `SELEC ...`), an empty quoted name (`emptyQuotedName`, which a warehouse
 * applies to a transform's SQL), or a `:name` the partition does not bind (`unboundParameter`,
 * on the names `positionalParameters` finds, by which PostgreSQL and the lake bind them; SQLite
 * reads the same names). A node's SQL is checked when the
 * sql transform runs it (another transform may use its `sql` as it likes); an SQL check binds no
 * parameters at all.
 */
import { CHECK_PLACEHOLDERS, placeholders } from './check-placeholders.ts';
import { closestNames } from './closest.ts';
import type { ResolvedNode } from './spec.ts';
import { positionalParameters, unboundParameter } from './sql-parameters.ts';
import { editDistance } from './closest.ts';
import { emptyNameRefusal, emptyQuotedName, extraStatements, sqlItems, type SqlItem } from './sql-relations.ts';
import type { ReadProblem } from './sql-reads.ts';

/**
 * Words a query may start with on some engine: SELECT, WITH and VALUES everywhere, TABLE on
 * PostgreSQL, FROM first on DuckDB. A parenthesised query passes too (PostgreSQL and DuckDB run
 * it); what one engine alone refuses is its own refusal when the partition runs.
 */
const QUERY_STARTS = new Set(['select', 'with', 'values', 'table', 'from']);

/** What is wrong with SQL that does not start as a query (`UPDATE ...`, a typo of SELECT), else undefined. */
function notAQuery(sql: string, what: string): string | undefined {
  const first = sqlItems(sql).find((item: SqlItem) => !(item.kind === 'punct' && item.text === ';'));
  if (first === undefined || first.kind === 'group' || (first.kind === 'word' && QUERY_STARTS.has(first.lower))) return undefined;
  const word = sql.slice(first.at, first.end);
  const typo = first.kind === 'word' && editDistance(first.lower, 'select') <= 2 ? ' (SELECT misspelt?)' : '';
  return `${what} starts with ${word}${typo}, but spec SQL must be a query that only reads: a SELECT, WITH ... SELECT or VALUES (it runs inside the partition's read-only scope, where nothing else can)`;
}

/** The first SQL text of the nodes that cannot run as written (undefined when all can): where it is and why. */
export function unrunnableSql(nodes: readonly ResolvedNode[]): ReadProblem | undefined {
  for (const [i, node] of nodes.entries()) {
    if (node.transform === 'sql' && node.sql !== undefined) {
      const path = ['nodes', i, 'sql'];
      const extra = extraStatements(node.sql);
      if (extra !== undefined) return { path, message: extra };
      const write = notAQuery(node.sql, `${node.id}'s SQL`);
      if (write !== undefined) return { path, message: write };
      const empty = emptyQuotedName(node.sql);
      if (empty !== undefined) return { path, message: emptyNameRefusal(node.sql, empty) };
      const unbound = unboundParameter(node.sql, node.params);
      if (unbound !== undefined) return { path, message: `${node.id}'s SQL ${unbound.message}` };
      const [template] = placeholders(node.sql);
      if (template !== undefined) {
        return { path, message: `${node.id}'s SQL has ${template.text}, but a node's SQL is run as written, no template: bind values by :name (:partition, :start, :end, or the node's params)` };
      }
    }
    for (const [c, check] of node.checks.entries()) {
      if (check.type !== 'sql') continue;
      const path = ['nodes', i, 'checks', c, 'sql'];
      const extra = extraStatements(check.sql);
      if (extra !== undefined) return { path, message: extra };
      const write = notAQuery(check.sql, `${node.id}'s check '${check.name}'`);
      if (write !== undefined) return { path, message: write };
      const empty = emptyQuotedName(check.sql);
      if (empty !== undefined) return { path, message: emptyNameRefusal(check.sql, empty) };
      const unknown = placeholders(check.sql).find((p) => !(CHECK_PLACEHOLDERS as readonly string[]).includes(p.name));
      if (unknown !== undefined) {
        const [near] = closestNames(unknown.name, CHECK_PLACEHOLDERS, 1);
        return {
          path,
          message: `${node.id}'s check '${check.name}' has ${unknown.text}, which backfill does not fill in: a check reads {{this}} (the partition's new version) and {{previous}} (the published version it replaces)${near !== undefined ? `; did you mean {{${near}}}?` : ''}`,
        };
      }
      const [parameter] = positionalParameters(check.sql).names;
      if (parameter !== undefined) {
        return { path, message: `${node.id}'s check '${check.name}' uses the parameter ':${parameter}', but a check's SQL is given no parameters: write the value into the SQL` };
      }
    }
  }
  return undefined;
}
