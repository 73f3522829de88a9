/**
 * What a transform's rows may hold, checked before the publish on every warehouse alike. A
 * value no warehouse can store would otherwise fail the publish with a TypeError or an engine's
 * error, retried in vain as each attempt repeats it, or be stored as something else.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { PARTITION_FAILURES } from '../core/protocol.ts';
import { RESERVED_COLUMN_RULE, isReservedColumn } from './warehouse/sql.ts';

const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;

const STORABLE = 'a row value is a string, a number, a boolean, a bigint of 64 bits, a Date, null, or an object or array (stored as its JSON text)';

/** What is wrong with a row (null when it is a plain object). */
function rowProblem(row: unknown): string | null {
  if (row === null) return 'null';
  if (Array.isArray(row)) return 'an array';
  if (typeof row !== 'object') return typeof row;
  const proto: unknown = Object.getPrototypeOf(row);
  if (proto === Object.prototype || proto === null) return null;
  const name = (row as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object that is not a plain object';
}

/** What is wrong with a column's value, and how to fix it (null when it can be stored). */
function valueProblem(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return null;
    case 'bigint':
      return value < MIN_INT64 || value > MAX_INT64 ? `a bigint beyond 64 bits (${value}n), which not every warehouse can hold: store it as a string (String(value))` : null;
    case 'function':
    case 'symbol':
      return `a ${typeof value}: ${STORABLE}`;
  }
  if (value === null) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an Invalid Date: give a valid Date, or null' : null;
  if (value instanceof Map || value instanceof Set) return `a ${value instanceof Map ? 'Map' : 'Set'}, whose JSON text ({}) would lose its contents: convert it to a plain object or an array`;
  try {
    JSON.stringify(value);
    return null;
  } catch (error) {
    return `an object that does not convert to JSON text (${error instanceof Error ? error.message : String(error)}): ${STORABLE}, and an object or array must hold only what JSON can (a bigint inside one as a string)`;
  }
}

function invalid(transform: string, what: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`transform '${transform}' produced ${what}`, PARTITION_FAILURES.invalidOutput);
}

/**
 * Every row a transform produced (returned or inserted) is a plain object of storable values,
 * no column is named as backfill's own (`__`) or has an empty name, and no two of its columns differ only in case
 * (SQLite takes them for one column, PostgreSQL for two). Throws an `InvalidOutput` failure,
 * not retried, that names the row and column.
 */
export function assertRows(rows: readonly unknown[], transform: string): void {
  // The first row each column name appeared in, by name and by its lower case.
  const columns = new Set<string>();
  const folded = new Map<string, { name: string; row: number }>();
  for (const [index, row] of rows.entries()) {
    const problem = rowProblem(row);
    if (problem !== null) throw invalid(transform, `${problem} as row ${index}: every row must be a plain object with one key per column`);
    for (const [name, value] of Object.entries(row as Record<string, unknown>)) {
      const wrong = valueProblem(value);
      if (wrong !== null) throw invalid(transform, `${wrong} in column '${name}' of row ${index}`);
      if (columns.has(name)) continue;
      columns.add(name);
      if (isReservedColumn(name)) throw invalid(transform, `a column '${name}' (row ${index}): ${RESERVED_COLUMN_RULE}`);
      if (name === '') throw invalid(transform, `a column with an empty name (row ${index}): give every column a name of its own`);
      const lower = name.toLowerCase();
      const other = folded.get(lower);
      if (other) {
        throw invalid(transform, `columns '${other.name}' (row ${other.row}) and '${name}' (row ${index}), whose names differ only in case: SQLite takes them for one column, PostgreSQL for two; rename one`);
      }
      folded.set(lower, { name, row: index });
    }
  }
}
