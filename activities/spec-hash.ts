/**
 * The spec hash of a node: what the ledger records to tell whether two versions of a
 * partition were made by the same definition (transform, SQL, params and checks). Checks are
 * hashed with their defaults filled in and objects with their keys sorted, so the same
 * definition gives the same hash however it was written.
 */
import { createHash } from 'node:crypto';
import { CheckSchema, type CheckInput } from '../core/spec.ts';

export type HashedDefinition = {
  transform: string;
  sql?: string | undefined;
  params: Record<string, unknown>;
  checks: readonly CheckInput[];
};

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return `${value}n`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, canonical(v)]));
  }
  return value;
}

/** JSON with object keys in sorted order: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}

export function specHash(node: HashedDefinition): string {
  const definition = {
    transform: node.transform,
    sql: node.sql ?? null,
    params: node.params,
    checks: node.checks.map((check) => CheckSchema.parse(check)),
  };
  return createHash('sha256').update(canonicalJson(definition)).digest('hex').slice(0, 16);
}
