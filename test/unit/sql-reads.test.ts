/** resolveSpec refuses spec SQL that reads a node of the spec it does not depend on (core/sql-reads.ts). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { resolveSpec } from '../../core/spec.ts';
import { thrownBackfillError } from './backfill-error.ts';

const spec = (nodes: unknown[]) => ({ name: 'shop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-08' }, nodes });
const raw = { id: 'orders_raw', transform: 'noop' };
const clean = { id: 'orders_clean', dependsOn: ['orders_raw'], sql: 'SELECT * FROM orders_raw' };

function refusal(nodes: unknown[]) {
  const error = thrownBackfillError(() => resolveSpec(spec(nodes)));
  expect(error.code).toBe('invalid_spec');
  return error;
}

describe('resolveSpec: SQL that reads a node it does not depend on', () => {
  it('refuses a node whose SQL reads a node it does not list in dependsOn, naming both and the fix', () => {
    const error = refusal([raw, clean, { id: 'daily', sql: 'SELECT COUNT(*) AS n FROM orders_clean' }]);
    expect(error.path).toBe('nodes[2].sql');
    expect(error.message).toBe(
      "nodes[2].sql: daily's SQL reads orders_clean, a node of this spec that daily does not depend on: its partitions would not wait for " +
        "orders_clean's and would read whatever of orders_clean is published when they run (or nothing). Add it to dependsOn (with the mapping " +
        'of the partitions it reads), e.g. dependsOn: [orders_clean], or { node: orders_clean, mapping: all } to read all of its partitions',
    );
  });

  it('shows the dependsOn the node already has, with the node it reads added', () => {
    const error = refusal([raw, clean, { id: 'regions', transform: 'noop' }, { id: 'daily', dependsOn: ['regions'], sql: 'SELECT * FROM regions r JOIN orders_clean o ON o.region = r.id' }]);
    expect(error.path).toBe('nodes[3].sql');
    expect(error.message).toContain('e.g. dependsOn: [regions, orders_clean]');
  });

  it('refuses a read in a subquery, a join, a CTE, under any case or quoted', () => {
    for (const sql of [
      'SELECT * FROM orders_raw WHERE id IN (SELECT id FROM orders_clean)',
      'SELECT * FROM orders_raw r JOIN orders_clean c ON r.id = c.id',
      'WITH c AS (SELECT * FROM orders_clean) SELECT * FROM c',
      'SELECT * FROM ORDERS_CLEAN',
      'SELECT * FROM "orders_clean"',
      'SELECT * FROM "Orders_Clean"',
      // SQLite ends a comment at its first */, so it runs this read; PostgreSQL and DuckDB would refuse the unclosed comment.
      '/* inputs: raw/*.csv */ SELECT * FROM orders_clean',
    ]) {
      const error = refusal([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql }]);
      expect(error.message, sql).toMatch(/^nodes\[2\]\.sql: daily's SQL reads orders_clean, a node of this spec that daily does not depend on: /);
    }
  });

  it('refuses a compound CTE without RECURSIVE named like a node it does not depend on, and says to write WITH RECURSIVE if recursion was meant', () => {
    const sql = 'WITH orders_clean AS (SELECT * FROM orders_raw UNION ALL SELECT * FROM orders_clean WHERE false) SELECT * FROM orders_clean';
    const error = refusal([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql }]);
    expect(error.path).toBe('nodes[2].sql');
    expect(error.message).toBe(
      "nodes[2].sql: daily's SQL reads orders_clean in the body of a CTE of that name written without RECURSIVE, where PostgreSQL and DuckDB " +
        'read the node orders_clean (SQLite alone reads the CTE itself): if recursion was meant, write WITH RECURSIVE. As it stands, ' +
        "daily's SQL reads orders_clean, a node of this spec that daily does not depend on: its partitions would not wait for orders_clean's " +
        'and would read whatever of orders_clean is published when they run (or nothing). Add it to dependsOn (with the mapping of the ' +
        'partitions it reads), e.g. dependsOn: [orders_raw, orders_clean], or { node: orders_clean, mapping: all } to read all of its partitions',
    );
    // With the keyword, the name is the CTE's on every engine.
    expect(() => resolveSpec(spec([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql: sql.replace('WITH', 'WITH RECURSIVE') }]))).not.toThrow();
  });

  it("refuses a read of an upstream's upstream: it would see every published partition, none staged, and record none", () => {
    const error = refusal([raw, clean, { id: 'daily', dependsOn: ['orders_clean'], sql: 'SELECT * FROM orders_clean c JOIN orders_raw r ON r.id = c.id' }]);
    expect(error.message).toBe(
      "nodes[2].sql: daily's SQL reads orders_raw, a node of this spec that daily depends on only through orders_clean: it would read every " +
        'partition of orders_raw published when it runs, not the ones it maps to, none of a staged run, and its lineage would not record them. ' +
        'Add it to dependsOn (with the mapping of the partitions it reads), e.g. dependsOn: [orders_clean, orders_raw], or { node: orders_raw, mapping: all } to read all of its partitions',
    );
  });

  it('refuses a read of a downstream node, whose fix is not dependsOn', () => {
    const error = refusal([raw, { ...clean, sql: 'SELECT * FROM orders_raw WHERE id NOT IN (SELECT id FROM daily)' }, { id: 'daily', dependsOn: ['orders_clean'], sql: 'SELECT * FROM orders_clean' }]);
    expect(error.path).toBe('nodes[1].sql');
    expect(error.message).toMatch(/^nodes\[1\]\.sql: orders_clean's SQL reads daily, a node of this spec that depends on orders_clean \(so it cannot be in dependsOn: a cycle\)/);
    expect(error.message).toMatch(/move this SQL to a node that depends on daily$/);
  });

  it('refuses a SQL check that reads a node its node does not depend on', () => {
    const check = { type: 'sql', name: 'known customers', sql: 'SELECT * FROM {{this}} WHERE customer_id NOT IN (SELECT id FROM customers)' };
    const error = refusal([raw, { id: 'customers', transform: 'noop' }, { ...clean, checks: [{ type: 'row_count', min: 1 }, check] }]);
    expect(error.path).toBe('nodes[2].checks[1].sql');
    expect(error.message).toMatch(/^nodes\[2\]\.checks\[1\]\.sql: orders_clean's check 'known customers' reads customers, a node of this spec that orders_clean does not depend on/);
    expect(error.message).toContain('e.g. dependsOn: [orders_raw, customers]');
  });

  it('refuses the SQL of a node with a transform of its own too', () => {
    const error = refusal([raw, clean, { id: 'daily', transform: 'noop', sql: 'SELECT * FROM orders_clean' }]);
    expect(error.path).toBe('nodes[2].sql');
  });

  it('accepts reads of its upstreams, whatever the mapping', () => {
    expect(() =>
      resolveSpec(
        spec([
          raw,
          clean,
          { id: 'regions', transform: 'noop', partitions: { keys: ['eu', 'us'] } },
          {
            id: 'daily',
            dependsOn: ['orders_clean', { node: 'orders_raw', mapping: { lag: { from: -1, to: 0 } } }, { node: 'regions', mapping: 'all' }],
            sql: 'SELECT * FROM orders_clean c JOIN orders_raw r ON r.id = c.id JOIN regions USING (region)',
            checks: [{ type: 'sql', name: 'no strays', sql: 'SELECT * FROM {{this}} WHERE id NOT IN (SELECT id FROM orders_clean)' }],
          },
        ]),
      ),
    ).not.toThrow();
  });

  it('accepts tables that are not nodes, its own dataset, qualified names and names in literals, comments or CTEs', () => {
    for (const sql of [
      'SELECT * FROM orders_raw JOIN dim_country USING (country)',
      'SELECT * FROM orders_raw WHERE id NOT IN (SELECT id FROM orders_clean_2023)',
      "SELECT 'FROM daily' AS note FROM orders_raw -- JOIN daily\n",
      'WITH daily AS (SELECT * FROM orders_raw) SELECT * FROM daily',
      'SELECT EXTRACT(year FROM daily) AS y FROM orders_raw',
    ]) {
      expect(() => resolveSpec(spec([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql }])), sql).not.toThrow();
    }
    // A node reading its own published partitions is not a read of another node.
    expect(() => resolveSpec(spec([raw, { ...clean, sql: 'SELECT * FROM orders_raw WHERE id NOT IN (SELECT id FROM orders_clean)' }]))).not.toThrow();
    // main.orders_clean is refused when the SQL runs (a qualified name reaches every partition).
    expect(() => resolveSpec(spec([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql: 'SELECT * FROM main.orders_clean' }]))).not.toThrow();
  });

  it("accepts the shop example's spec", () => {
    const example = parse(readFileSync(join(import.meta.dirname, '../../examples/shop/backfill.yaml'), 'utf8')) as unknown;
    expect(resolveSpec(example).nodes).toHaveLength(6);
  });
});
