/**
 * The spec hash of a node: what the ledger records to tell whether two versions of a
 * partition were made by the same definition (transform, SQL, params and checks). Checks are
 * hashed with their defaults filled in and objects with their keys sorted, so the same
 * definition gives the same hash however it was written.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/canonical.ts';
import { CheckSchema, type CheckInput } from '../core/spec.ts';

export type HashedDefinition = {
  transform: string;
  sql?: string | undefined;
  params: Record<string, unknown>;
  checks: readonly CheckInput[];
};

export function specHash(node: HashedDefinition): string {
  const definition = {
    transform: node.transform,
    sql: node.sql ?? null,
    params: node.params,
    checks: node.checks.map((check) => CheckSchema.parse(check)),
  };
  return createHash('sha256').update(canonicalJson(definition)).digest('hex').slice(0, 16);
}
