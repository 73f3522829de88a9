/** PostgreSQL column types: what a value needs, what a result column has, and how types widen. */
import type { ValueKind } from '../checksum.ts';
import { widerOn } from '../widen.ts';

const NUMERIC_OIDS = new Set([20, 21, 23, 26, 700, 701, 1700]);
const BOOLEAN_OID = 16;
/** The type of an unresolved literal or parameter (`SELECT $1`): stored as text. */
export const UNKNOWN_OID = 705;

/** How a result column's raw text is brought to canonical form for checksums. */
export function kindOf(oid: number): ValueKind {
  if (NUMERIC_OIDS.has(oid)) return 'number';
  if (oid === BOOLEAN_OID) return 'boolean';
  return 'text';
}

/** Types that hold every value of the types before them; anything else widens to text. */
const LADDER = ['smallint', 'integer', 'bigint', 'numeric', 'double precision', 'text'];

/** The narrower of two column types that holds the values of both. */
export function widerType(a: string, b: string): string {
  return widerOn(LADDER, a, b);
}

/** The column type for one value a transform returned (null: any type will do). */
export function typeOfValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isInteger(value) && Number.isSafeInteger(value) ? 'bigint' : 'double precision';
  if (typeof value === 'bigint') return 'numeric';
  if (typeof value === 'boolean') return 'boolean';
  return 'text';
}

/** A value a transform returned, as a query parameter. */
export function toParameter(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/** A cast for a bound parameter, so that a number read into a SELECT list stays a number (as in SQLite). */
export function castFor(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? '::bigint' : '::double precision';
  if (typeof value === 'bigint') return '::numeric';
  if (typeof value === 'boolean') return '::boolean';
  return '';
}
