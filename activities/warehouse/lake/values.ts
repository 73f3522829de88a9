/**
 * DuckDB values and column types as the lake needs them: results as plain JavaScript (the
 * same shapes SQLite and PostgreSQL give), values in the canonical form checksums take, the
 * type a transform's value needs, and how two types widen.
 */
import { DOUBLE, DuckDBBlobValue, DuckDBDecimalValue, DuckDBTypeId, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import type { ValueKind } from '../../../warehouse.ts';

const INTEGERS = new Set([
  DuckDBTypeId.TINYINT,
  DuckDBTypeId.SMALLINT,
  DuckDBTypeId.INTEGER,
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT,
  DuckDBTypeId.UINTEGER,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.UHUGEINT,
  DuckDBTypeId.BIGNUM,
]);

/** How a column's values canonicalize for checksums. */
export function kindOf(type: DuckDBType): ValueKind {
  if (INTEGERS.has(type.typeId) || type.typeId === DuckDBTypeId.DECIMAL || type.typeId === DuckDBTypeId.FLOAT || type.typeId === DuckDBTypeId.DOUBLE) return 'number';
  if (type.typeId === DuckDBTypeId.BOOLEAN) return 'boolean';
  return 'text';
}

/**
 * Whether a column of `type` goes to the version files as text: Parquet keeps a time with a time
 * zone only in UTC (`05:00:01+02` would come back as `03:00:01+00`, which SQL does not take for
 * equal), so such a column, or one that holds such times, is written as DuckDB writes it as text
 * and read back cast to its type (`storedColumn`, and the lake's reads of files).
 */
export function keptAsText(type: string | undefined): boolean {
  return type !== undefined && /TIME WITH TIME ZONE|\bTIMETZ\b/i.test(type);
}

/** A value for a checksum: numbers exactly (a decimal as its text), text as text, the rest as DuckDB writes it. */
export function rawValue(value: DuckDBValue): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return value;
  if (value instanceof DuckDBBlobValue) return value.bytes;
  return value.toString();
}

/**
 * A value for a query's caller: whole numbers as numbers where they are exact (as text
 * beyond, like PostgreSQL's bigint), decimals as numbers, dates and times as DuckDB writes them.
 */
export function jsValue(value: DuckDBValue): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof DuckDBDecimalValue) {
    const n = value.toDouble();
    return Number.isFinite(n) && (value.scale > 0 || Number.isSafeInteger(n)) ? n : value.toString();
  }
  if (value instanceof DuckDBBlobValue) return value.bytes;
  return value.toString();
}

/** The column type for one value a transform returned (null: any type will do). */
export function typeOfValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? 'BIGINT' : 'DOUBLE';
  if (typeof value === 'bigint') return 'HUGEINT';
  if (typeof value === 'boolean') return 'BOOLEAN';
  return 'VARCHAR';
}

/** A value a transform returned, as the lake stores it. */
export function toStored(value: unknown): string | number | bigint | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return value;
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/** Types that hold every value of the types before them; anything else widens to VARCHAR. */
const LADDER = ['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'DOUBLE', 'VARCHAR'];

/** The narrowest type that holds the values of both. */
export function widerType(a: string, b: string): string {
  if (a === b) return a;
  const rank = (t: string) => (/^DECIMAL/.test(t) || t === 'FLOAT' ? LADDER.indexOf('DOUBLE') : LADDER.indexOf(t));
  const i = rank(a);
  const j = rank(b);
  if (i < 0 || j < 0) return 'VARCHAR';
  // A decimal widened with an integer keeps its digits as a double.
  if (i === j) return 'DOUBLE';
  return LADDER[Math.max(i, j)]!;
}

/**
 * A staged column as a version's Parquet file stores it. Parquet has no 128-bit integer, and
 * DuckDB writes a HUGEINT (a transform's bigint, SQL's SUM of integers) as a DOUBLE, which
 * rounds whole numbers beyond 2^53: a DECIMAL(38,0) keeps every digit, reads back exactly, and
 * is read with HUGEINT as DECIMAL(38,0). A time with a time zone goes as text (`keptAsText`).
 */
export function storedColumn(column: string, type: string | undefined): string {
  if (keptAsText(type)) return `CAST(${column} AS VARCHAR) AS ${column}`;
  return type === 'HUGEINT' || type === 'UHUGEINT' ? `CAST(${column} AS DECIMAL(38,0)) AS ${column}` : column;
}

/** A cast for a bound parameter, so that a number read into a SELECT list keeps its type (as in SQLite). */
export function castFor(value: unknown): string {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? '::BIGINT' : '::DOUBLE';
  if (typeof value === 'bigint') return '::HUGEINT';
  if (typeof value === 'boolean') return '::BOOLEAN';
  if (typeof value === 'string') return '::VARCHAR';
  return '';
}

/** The name DuckDB gives a result column's type (`DECIMAL(3,1)`, `VARCHAR`), or null for a NULL literal. */
export function typeName(type: DuckDBType): string | null {
  if (type.typeId === DuckDBTypeId.SQLNULL) return null;
  return type.toString();
}

/**
 * The types to bind `values` with: DuckDB's client binds a whole number as BIGINT, which a
 * number beyond 2^63 (1e21) overflows, so those bind as the DOUBLE they are.
 */
export function bindTypes(values: readonly DuckDBValue[]): DuckDBType[] {
  // Sparse: a hole lets the client infer the type.
  const types: DuckDBType[] = [];
  values.forEach((v, i) => {
    if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) types[i] = DOUBLE;
  });
  return types;
}
