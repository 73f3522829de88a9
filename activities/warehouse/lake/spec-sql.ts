/**
 * Spec SQL as DuckDB's own parser reads it (`json_serialize_sql`, which serializes SELECTs
 * only): exactly one statement, a query, and what it names — the relations (a name its own
 * WITH defines among them), the table functions and the functions.
 *
 * DuckDB reads files and URLs from SQL (`read_csv('/etc/passwd')`, `FROM 'x.parquet'`). The
 * engine's own settings keep it inside the lake (external access is off, only the lake's
 * directory is allowed, and the settings are locked); these rules keep spec SQL away from the
 * files too, which hold versions its partition must not read.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { SqlError, SqlRefusedError, notASelect, quoteLiteral } from '../../../warehouse.ts';

export type NamedRelation = { catalog: string; schema: string; name: string };

export type ParsedQuery = {
  relations: NamedRelation[];
  /** Table functions called, lowercased (`range`, `read_csv`). */
  tableFunctions: string[];
  /** Other functions called, lowercased. */
  functions: string[];
  /** Table references of a kind spec SQL may not use (`DESCRIBE`, `SUMMARIZE`). */
  otherSources: string[];
};

type Node = Record<string, unknown>;

const shown = (sql: string) => sql.trim().slice(0, 300);

function walk(value: unknown, found: ParsedQuery): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, found);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const node = value as Node;
  const type = node.type;
  if (type === 'BASE_TABLE' && node.class === undefined) {
    found.relations.push({ catalog: String(node.catalog_name ?? ''), schema: String(node.schema_name ?? ''), name: String(node.table_name ?? '') });
  } else if (type === 'TABLE_FUNCTION' && node.class === undefined) {
    const fn = node.function as Node | undefined;
    found.tableFunctions.push(String(fn?.function_name ?? '').toLowerCase());
  } else if (node.class === 'FUNCTION' || node.class === 'AGGREGATE' || node.class === 'WINDOW') {
    if (typeof node.function_name === 'string') found.functions.push(node.function_name.toLowerCase());
  } else if (type === 'SHOW_REF' || type === 'COLUMN_DATA') {
    found.otherSources.push(String(type));
  }
  for (const [key, child] of Object.entries(node)) if (key !== 'function' || type !== 'TABLE_FUNCTION') walk(child, found);
  // A table function's arguments are expressions: walked for the functions they call.
  if (type === 'TABLE_FUNCTION') walk((node.function as Node | undefined)?.children, found);
}

/**
 * What spec SQL names, by its text: a node's SQL is the same text for each of its partitions, and
 * a parse is a round trip to DuckDB. Refusals are not kept (they are thrown again on each try).
 */
const parsed = new Map<string, ParsedQuery>();
const PARSED_KEPT = 1000;

/** Parses one statement of spec SQL (its `:name` parameters already numbered): refused unless it is exactly one query. */
export async function parseQuery(connection: DuckDBConnection, text: string, original: string): Promise<ParsedQuery> {
  const known = parsed.get(text);
  if (known) return known;
  const found = await parseAnew(connection, text, original);
  if (parsed.size >= PARSED_KEPT) parsed.delete(parsed.keys().next().value!);
  parsed.set(text, found);
  return found;
}

async function parseAnew(connection: DuckDBConnection, text: string, original: string): Promise<ParsedQuery> {
  const reader = await connection.runAndReadAll(`SELECT json_serialize_sql(${quoteLiteral(text)}) AS tree`);
  const tree = JSON.parse(String(reader.getRows()[0]![0])) as { error?: boolean; error_type?: string; error_message?: string; statements?: Array<{ node: Node }> };
  if (tree.error) {
    // Only SELECTs serialize: anything else is "not implemented" here.
    if (tree.error_type === 'not implemented') throw new SqlRefusedError(notASelect(original));
    throw new SqlError(`${tree.error_type === 'parser' ? 'Parser Error: ' : ''}${tree.error_message ?? 'cannot parse'} in SQL: ${shown(original)}`);
  }
  const statements = tree.statements ?? [];
  if (statements.length !== 1) throw new SqlRefusedError(`spec SQL must be exactly one statement, and this is ${statements.length}: ${shown(original)}`);
  // The parser's verdict on the statement as a whole, beside the tree's: one statement, a SELECT.
  const extracted = await connection.extractStatements(text);
  if (extracted.count !== 1) throw new SqlRefusedError(`spec SQL must be exactly one statement: ${shown(original)}`);
  const found: ParsedQuery = { relations: [], tableFunctions: [], functions: [], otherSources: [] };
  walk(statements[0]!.node, found);
  return found;
}

/** Table functions that make rows from their arguments only. Every other one reads files, URLs, settings or the catalogue. */
export const ROW_FUNCTIONS = new Set(['range', 'generate_series', 'unnest']);

/** Functions that act outside the query: sequences, session variables, the random seed. */
export const ACTS_OUTSIDE = new Set(['nextval', 'currval', 'setseed', 'getvariable', 'set_variable']);

/**
 * The macros (DuckDB's built-in ones among them) whose body reads a relation or calls a table
 * function other than the row functions, or calls such a macro: `pg_get_viewdef` reads
 * `duckdb_views()`, `get_block_size` reads `pragma_database_size()`. Calling one by name is
 * calling what the rules refuse. Read once per connection from `duckdb_functions()`.
 */
const readingMacros = new WeakMap<DuckDBConnection, Promise<Set<string>>>();

export function macrosThatRead(connection: DuckDBConnection): Promise<Set<string>> {
  let found = readingMacros.get(connection);
  if (!found) {
    found = findMacrosThatRead(connection);
    found.catch(() => readingMacros.delete(connection));
    readingMacros.set(connection, found);
  }
  return found;
}

async function findMacrosThatRead(connection: DuckDBConnection): Promise<Set<string>> {
  const reader = await connection.runAndReadAll(
    `SELECT lower(function_name) AS name, function_type = 'macro' AS scalar, macro_definition AS body FROM duckdb_functions() WHERE function_type IN ('macro', 'table_macro') AND macro_definition IS NOT NULL`,
  );
  // In turn: one connection runs one statement at a time.
  const bodies: Array<{ name: string; found: ParsedQuery | null }> = [];
  for (const [name, scalar, body] of reader.getRows()) {
    bodies.push({ name: String(name), found: await serialized(connection, scalar === true ? `SELECT ${String(body)}` : String(body)) });
  }
  const reading = new Set<string>();
  for (const { name, found } of bodies) {
    // A body DuckDB cannot serialize is taken to read: nothing unseen gets through.
    if (found === null || found.relations.length > 0 || found.tableFunctions.some((fn) => !ROW_FUNCTIONS.has(fn))) reading.add(name);
  }
  // Macros that call those, to a fixed point.
  for (let grew = true; grew; ) {
    grew = false;
    for (const { name, found } of bodies) {
      if (!reading.has(name) && found?.functions.some((fn) => reading.has(fn))) grew = reading.add(name) !== undefined;
    }
  }
  return reading;
}

/** What a query names, or null when DuckDB cannot serialize it. */
async function serialized(connection: DuckDBConnection, sql: string): Promise<ParsedQuery | null> {
  const reader = await connection.runAndReadAll(`SELECT json_serialize_sql(${quoteLiteral(sql)}) AS tree`);
  const tree = JSON.parse(String(reader.getRows()[0]![0])) as { error?: boolean; statements?: Array<{ node: Node }> };
  if (tree.error || tree.statements?.length !== 1) return null;
  const found: ParsedQuery = { relations: [], tableFunctions: [], functions: [], otherSources: [] };
  walk(tree.statements[0]!.node, found);
  return found;
}

/** A relation name DuckDB would read as a file or a URL (`FROM 'orders.parquet'`, `FROM 's3://...'`). */
export function fileShaped(name: string): boolean {
  return /[./\\:*?]/.test(name);
}

export { shown };
