/** SQL text helpers shared by both warehouses: quoting, statements, scopes and named parameters. */
import { UNBOUND_PARAMETER_FIX } from '../../core/sql-parameters.ts';
import { emptyNameRefusal, emptyQuotedName, extraStatements, statementText, type Comments } from '../../core/sql-relations.ts';
import { InvalidOutputError, SqlError, SqlRefusedError } from './types.ts';

export { positionalParameters } from '../../core/sql-parameters.ts';

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;
export const quoteLiteral = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/** The table that holds every version of a dataset's partitions. */
export const versionsTable = (node: string): string => `${node}__versions`;

/** Internal columns of a versions table; user columns may not start with `__`. */
export const PARTITION_COLUMN = '__partition';
export const VERSION_COLUMN = '__version';

/** A column name a transform's output may not use: backfill's own columns start with `__`. */
export const isReservedColumn = (name: string): boolean => name.startsWith('__');

/** The rule a reserved column breaks, and its fix, as every refusal of one says it. */
export const RESERVED_COLUMN_RULE = `names starting with __ are reserved for backfill's own columns (${PARTITION_COLUMN}, ${VERSION_COLUMN}): rename it in the transform's output (in SQL, AS another name)`;

/** How a column the output may not hold is fixed, as every refusal of one says it. */
const ALIAS_FIX = "give one of them another name in the transform's output (in SQL, AS another_name)";

/**
 * Refuses, as `InvalidOutputError`, the output's columns no warehouse may hold alike: a reserved
 * name (`__`), an empty one, two of one name, or two whose names differ only in case (SQLite and
 * the lake take them for one column, PostgreSQL for two).
 */
export function assertUserColumns(names: Iterable<string>): void {
  const folded = new Map<string, string>();
  for (const name of names) {
    if (isReservedColumn(name)) throw new InvalidOutputError(`the output has a column '${name}': ${RESERVED_COLUMN_RULE}`);
    if (name.length === 0) throw new InvalidOutputError(`the output has a column with an empty name: give every column a name of its own (in SQL, AS name)`);
    const other = folded.get(name.toLowerCase());
    if (other === name) throw new InvalidOutputError(`the output has two columns named '${name}': ${ALIAS_FIX}`);
    if (other !== undefined) {
      throw new InvalidOutputError(
        `the output has columns '${other}' and '${name}', whose names differ only in case, which the warehouses do not treat alike ` +
          `(SQLite and the lake take them for one column, PostgreSQL for two): ${ALIAS_FIX}`,
      );
    }
    folded.set(name.toLowerCase(), name);
  }
}

/**
 * Refuses spec SQL with an empty quoted name before the engine reads it: as `InvalidOutputError`
 * where it names a selected column (`AS ""`), else as `SqlRefusedError`.
 */
export function assertNamedQuotes(sql: string): void {
  const found = emptyQuotedName(sql);
  if (found === undefined) return;
  const message = emptyNameRefusal(sql, found);
  throw found.alias ? new InvalidOutputError(message) : new SqlRefusedError(message);
}

/**
 * Refuses a column a new version brings whose name differs only in case from one the dataset
 * has already: PostgreSQL would make it a second column, SQLite and the lake refuse it as the
 * same one with an error of their own, and the engines would hold different data.
 */
export function assertNoCaseTwin(node: string, existing: Iterable<string>, wanted: Iterable<string>): void {
  const folded = new Map<string, string>();
  for (const name of existing) folded.set(name.toLowerCase(), name);
  for (const name of wanted) {
    const have = folded.get(name.toLowerCase());
    if (have === undefined || have === name) continue;
    throw new SqlError(
      `dataset '${node}': column '${name}' differs only in case from its column '${have}', which the warehouses do not treat alike ` +
        `(SQLite and the lake take them for one column, PostgreSQL for two): name it '${have}', or give it another name`,
    );
  }
}

/**
 * The one statement of spec SQL as it runs (`statementText`: without the semicolons and
 * comments a user may leave around it); more than one is refused, by the rule plan applies,
 * counted by the engine's own reading of block comments (SQLite's is `flat`).
 */
export function singleStatement(sql: string, comments: Comments = 'nested'): string {
  const extra = extraStatements(sql, comments);
  if (extra !== undefined) throw new SqlRefusedError(extra);
  return statementText(sql, comments);
}

/** The text after any leading whitespace and comments. */
export function withoutLeadingComments(sql: string): string {
  let text = sql;
  for (;;) {
    const next = text.replace(/^\s+/, '').replace(/^--[^\n]*(\n|$)/, '').replace(/^\/\*[\s\S]*?\*\//, '');
    if (next === text) return text;
    text = next;
  }
}

/** A statement of the kinds spec SQL may be: a SELECT, a WITH ... SELECT or VALUES (the engine's own verdict comes on top). */
export function startsAsQuery(sql: string): boolean {
  return /^(select|with|values)\b/i.test(withoutLeadingComments(sql));
}

export const notASelect = (sql: string) =>
  `spec SQL must be a SELECT (or WITH ... SELECT, or VALUES) that only reads, and one statement: ${sql.trim().slice(0, 200)}`;

/**
 * Spec SQL inside a partition that reaches backfill's tables otherwise than through a dataset
 * named plainly (a qualified name, a versions table, the ledger or the pointers, a view over a
 * dataset): an upstream read that way would show partitions its lineage does not record.
 */
export function outsideScope(what: string, spec: { sql: string; scope?: readonly ScopedRelation[] }): SqlRefusedError {
  const upstream = (spec.scope ?? []).map((r) => r.name);
  const example = upstream[0] ?? '<upstream>';
  return new SqlRefusedError(
    `spec SQL reads ${what} outside the partitions this one maps to: read an upstream dataset by its plain name only (FROM ${example}), ` +
      `which shows just the partitions this one maps to${upstream.length > 0 ? ` (upstreams here: ${upstream.join(', ')})` : ''}, ` +
      `and any other dataset by its plain name too: ${spec.sql.trim().slice(0, 200)}`,
  );
}

export type ScopedRelation = {
  /** The name the user's SQL reads (the upstream node). */
  name: string;
  /** The versions table, qualified as the dialect needs. */
  table: string;
  columns: readonly string[];
  /** The table holding the pinned (node, partition, version) rows. */
  scopeTable: string;
  /** A SELECT of exactly the pinned rows with `columns`, where the dialect reads them directly (`Session.pinnedRows`). */
  rows?: string;
};

/** A relation that backfill defines for the spec SQL it wraps (`{{this}}` and `{{previous}}` of a check). */
export type GivenRelation = { name: string; select: string; columns: readonly string[] };

/** The common table expressions that shadow the upstreams and define the given relations. */
function scopeCtes(relations: readonly ScopedRelation[], given: readonly GivenRelation[]): string[] {
  return [
    ...given.map((g) => `${quoteIdent(g.name)} AS (${g.select})`),
    ...relations.map((r) => {
      if (r.rows !== undefined) return `${quoteIdent(r.name)} AS (${r.rows})`;
      const columns = r.columns.length > 0 ? r.columns.map((c) => `v.${quoteIdent(c)}`).join(', ') : 'NULL AS __empty';
      return (
        `${quoteIdent(r.name)} AS (SELECT ${columns} FROM ${r.table} v JOIN ${r.scopeTable} s ` +
        `ON s.node = ${quoteLiteral(r.name)} AND s.partition = v.${PARTITION_COLUMN} AND s.version = v.${VERSION_COLUMN})`
      );
    }),
  ];
}

/**
 * Spec SQL as it runs: each upstream dataset shadowed by a common table expression that
 * holds only the pinned versions of the partitions in scope, and the given relations beside
 * them. CTE names take precedence over tables and views of the same name in SQLite and
 * PostgreSQL alike, also inside subqueries.
 */
export function scopedSelect(body: string, relations: readonly ScopedRelation[], given: readonly GivenRelation[] = []): string {
  if (relations.length === 0 && given.length === 0) return body;
  return `WITH ${scopeCtes(relations, given).join(',\n')}\nSELECT * FROM (\n${body}\n) AS __scoped`;
}

/**
 * The statement to read spec SQL's own column names from, prepared and never run (undefined:
 * `scopedSelect`'s will do). SQLite and DuckDB rename the columns of a subquery that share a
 * name (a, a:1; Amount, amount_1), so the names read through `scopedSelect`'s would hide two
 * columns of one name: here the CTEs lead the statement itself, where nothing is renamed. A
 * statement with a WITH of its own gets them in front of its own; one this cannot join with
 * (its CTEs named as an upstream) fails to prepare, and the caller reads `scopedSelect`'s.
 */
export function namingSelect(body: string, relations: readonly ScopedRelation[], given: readonly GivenRelation[] = []): string | undefined {
  if (relations.length === 0 && given.length === 0) return undefined;
  const ctes = scopeCtes(relations, given).join(',\n');
  const text = withoutLeadingComments(body);
  const own = /^with(\s+recursive)?\b/i.exec(text);
  if (own) return `WITH${own[1] ?? ''} ${ctes},\n${text.slice(own[0].length)}`;
  return /^(select|values)\b/i.test(text) ? `WITH ${ctes}\n${text}` : undefined;
}

/** The values for `names`, from `bindings`; a name with no binding is a SqlError naming the fix. */
export function bindPositional<T>(names: readonly string[], bindings: Readonly<Record<string, T>>): T[] {
  return names.map((name) => {
    if (!(name in bindings)) {
      throw new SqlError(`missing named parameter ':${name}': ${UNBOUND_PARAMETER_FIX}`);
    }
    return bindings[name]!;
  });
}
