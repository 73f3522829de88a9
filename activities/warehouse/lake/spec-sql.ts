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

/** A relation name DuckDB would read as a file or a URL (`FROM 'orders.parquet'`, `FROM 's3://...'`). */
export function fileShaped(name: string): boolean {
  return /[./\\:*?]/.test(name);
}

export { shown };
