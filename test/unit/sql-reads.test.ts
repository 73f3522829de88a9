/** resolveSpec refuses spec SQL that reads a node of the spec it does not depend on (core/sql-reads.ts). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { resolveSpec } from '../../core/spec.ts';
import { nearNodeReads } from '../../core/sql-reads.ts';
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

  it('accepts tables that are not nodes, qualified names of tables that are not nodes, and names in literals, comments or CTEs', () => {
    for (const sql of [
      'SELECT * FROM orders_raw JOIN dim_country USING (country)',
      'SELECT * FROM orders_raw WHERE id NOT IN (SELECT id FROM orders_clean_2023)',
      'SELECT * FROM orders_raw JOIN analytics.dim_country USING (country) JOIN main.regions_2023 USING (region)',
      // A source table in a schema of the user's that shares a node's name (dbt's staging `orders` from `raw.orders`), PostgreSQL's
      // public too (the views may be in another schema, beside it: docs/deploying.md); a table of backfill's name in the user's schema.
      'SELECT * FROM orders_raw JOIN raw.orders_clean USING (id) JOIN "Analytics"."daily" USING (id) JOIN public.orders_clean USING (id)',
      'SELECT * FROM orders_raw JOIN audit.backfill_meta USING (id)',
      // Plain names backfill uses in its own schema only: a table of the user's may have them.
      'SELECT * FROM orders_raw JOIN ledger USING (id) JOIN partitions USING (id)',
      "SELECT 'FROM daily' AS note FROM orders_raw -- JOIN daily\n",
      'WITH daily AS (SELECT * FROM orders_raw) SELECT * FROM daily',
      'SELECT EXTRACT(year FROM daily) AS y FROM orders_raw',
    ]) {
      expect(() => resolveSpec(spec([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql }])), sql).not.toThrow();
    }
    // A WITH named like the node itself is no read of its dataset.
    expect(() => resolveSpec(spec([raw, { ...clean, sql: 'WITH orders_clean AS (SELECT * FROM orders_raw) SELECT * FROM orders_clean' }]))).not.toThrow();
  });

  it("accepts the shop example's spec", () => {
    const example = parse(readFileSync(join(import.meta.dirname, '../../examples/shop/backfill.yaml'), 'utf8')) as unknown;
    expect(resolveSpec(example).nodes).toHaveLength(6);
  });
});

describe('resolveSpec: SQL that names a dataset or backfill\'s tables otherwise than by a dataset\'s plain name', () => {
  const daily = (sql: string, dependsOn: unknown[] = ['orders_clean']) => ({ id: 'daily', dependsOn, sql });

  it('refuses a node named with a schema, even a direct upstream, naming the field, the node, the name and the fix', () => {
    const error = refusal([raw, clean, daily('SELECT COUNT(*) AS n FROM main.orders_clean')]);
    expect(error.path).toBe('nodes[2].sql');
    expect(error.message).toBe(
      "nodes[2].sql: daily's SQL reads main.orders_clean, the node orders_clean named with a schema, which the warehouses refuse inside a " +
        'partition: it would read every partition, not the ones this one maps to, and the ledger would not record them as its inputs (or there ' +
        'is no such table). Read it by its plain name, FROM orders_clean, which shows just the partitions this one maps to. If main.orders_clean ' +
        'is a table of yours other than the dataset orders_clean, rename the node, or read that table through a view of another name',
    );
  });

  it("refuses SQLite's and DuckDB's schemas, quoted or not, in any case, and with a catalog too; for a node not in dependsOn it shows the dependsOn to write", () => {
    for (const [sql, shown] of [
      ['SELECT * FROM main.orders_clean', 'main.orders_clean'],
      ['SELECT * FROM "main"."orders_clean"', 'main.orders_clean'],
      ['SELECT * FROM MAIN.ORDERS_CLEAN', 'main.orders_clean'],
      ['SELECT * FROM lake.main.orders_clean', 'lake.main.orders_clean'],
      ['SELECT * FROM orders_raw r JOIN temp.orders_clean c ON r.id = c.id', 'temp.orders_clean'],
    ] as const) {
      const error = refusal([raw, clean, daily(sql, ['orders_raw'])]);
      expect(error.message, sql).toContain(`daily's SQL reads ${shown}, the node orders_clean named with a schema`);
      expect(error.message, sql).toContain('Read it by its plain name, FROM orders_clean, with orders_clean in dependsOn (e.g. dependsOn: [orders_raw, orders_clean])');
    }
  });

  it("refuses a versions table, plain or qualified, of any node or dataset, and says which dataset's plain name to read", () => {
    for (const [sql, shown] of [
      ['SELECT * FROM orders_clean__versions', 'orders_clean__versions'],
      ['SELECT * FROM backfill.orders_clean__versions', 'backfill.orders_clean__versions'],
      ['SELECT * FROM "backfill"."orders_clean__versions"', 'backfill.orders_clean__versions'],
      ['SELECT * FROM main.orders_clean__versions', 'main.orders_clean__versions'],
    ] as const) {
      const error = refusal([raw, clean, daily(sql)]);
      expect(error.message, sql).toContain(`daily's SQL reads ${shown}, the versions table backfill keeps for orders_clean (every version of every partition), which the warehouses refuse`);
      expect(error.message, sql).toContain('Read it by its plain name, FROM orders_clean, which shows just the partitions this one maps to');
    }
    // Not a node's (a dbt-style stg_<source>__<entity> table of the user's, or another backfill's, which the warehouse refuses when it runs), or in a schema of the user's: plan lets it through.
    for (const sql of ['SELECT * FROM orders_clean JOIN stg_customers__versions USING (id)', 'SELECT * FROM orders_clean JOIN raw.orders_clean__versions USING (id)']) {
      expect(() => resolveSpec(spec([raw, clean, daily(sql)])), sql).not.toThrow();
    }
  });

  it("refuses backfill's own tables: SQLite's backfill_ledger and the others, anything in a schema named backfill", () => {
    for (const [sql, shown] of [
      ['SELECT * FROM backfill_ledger', 'backfill_ledger'],
      ['SELECT * FROM main.backfill_partitions', 'main.backfill_partitions'],
      ['SELECT * FROM temp.backfill_scope', 'temp.backfill_scope'],
      ['SELECT * FROM backfill.ledger', 'backfill.ledger'],
      ['SELECT * FROM "backfill".leases', 'backfill.leases'],
      ['SELECT * FROM backfill_signatures', 'backfill_signatures'],
      ['SELECT * FROM backfill.signatures', 'backfill.signatures'],
      ['SELECT * FROM backfill.orders_clean', 'backfill.orders_clean'],
    ] as const) {
      const error = refusal([raw, clean, daily(`SELECT * FROM orders_clean WHERE id IN (${sql})`)]);
      expect(error.message, sql).toContain(`daily's SQL reads ${shown}, one of backfill's own tables (the ledger, the published pointers, the leases, the signed starts, the versions), which the warehouses refuse`);
    }
  });

  it('refuses them in a SQL check too', () => {
    const check = { type: 'sql', name: 'all there', sql: 'SELECT * FROM {{this}} WHERE id NOT IN (SELECT id FROM main.orders_raw)' };
    const error = refusal([raw, { ...clean, checks: [check] }]);
    expect(error.path).toBe('nodes[1].checks[0].sql');
    expect(error.message).toContain("orders_clean's check 'all there' reads main.orders_raw, the node orders_raw named with a schema");
  });
});

describe('resolveSpec: SQL that reads its own dataset', () => {
  it('refuses a node whose SQL reads its own dataset, and says to build on earlier periods with a mapping', () => {
    const error = refusal([raw, { ...clean, sql: 'SELECT * FROM orders_raw WHERE id NOT IN (SELECT id FROM orders_clean)' }]);
    expect(error.path).toBe('nodes[1].sql');
    expect(error.message).toBe(
      "nodes[1].sql: orders_clean's SQL reads orders_clean, orders_clean's own dataset: a node cannot depend on itself, so that read is not " +
        'scoped to a partition or pinned, and shows whatever of orders_clean is published when it runs (an earlier backfill\'s versions and ' +
        "this one's so far; on a first backfill, no such table). To build on earlier periods, compute them from the upstream with a window " +
        'or lag mapping, e.g. dependsOn: [{ node: orders_raw, mapping: { lag: { from: -6, to: 0 } } }] (docs/concepts.md, "Mappings")',
    );
  });

  it('refuses it quoted, in another case, in the compound body of a CTE of its name without RECURSIVE, and with a schema', () => {
    for (const sql of ['SELECT * FROM "Orders_Clean"', 'SELECT * FROM ORDERS_CLEAN', 'WITH orders_clean AS (SELECT * FROM orders_raw UNION ALL SELECT * FROM orders_clean) SELECT * FROM orders_clean']) {
      expect(refusal([raw, { ...clean, sql }]).message, sql).toContain("orders_clean's own dataset: a node cannot depend on itself");
    }
    const qualified = refusal([raw, { ...clean, sql: 'SELECT * FROM main.orders_clean' }]);
    expect(qualified.message).toContain("orders_clean's SQL reads main.orders_clean, orders_clean's own dataset");
    expect(qualified.message).toContain('If main.orders_clean is a table of yours other than the dataset orders_clean, rename the node');
  });

  it('refuses a SQL check that reads its own node by name, and names {{this}} and {{previous}}', () => {
    const check = { type: 'sql', name: 'grew', sql: 'SELECT * FROM {{this}} WHERE (SELECT COUNT(*) FROM orders_clean) > 10' };
    const error = refusal([raw, { ...clean, checks: [check] }]);
    expect(error.path).toBe('nodes[1].checks[0].sql');
    expect(error.message).toMatch(/^nodes\[1\]\.checks\[0\]\.sql: orders_clean's check 'grew' reads orders_clean, orders_clean's own dataset: /);
    expect(error.message).toMatch(/Read \{\{this\}\} for the partition's new version, or \{\{previous\}\} for the published one it replaces$/);
  });
});

describe('resolveSpec: a read that one reading of the comments finds', () => {
  it('says it is found only as SQLite reads a comment holding /*, and how to avoid the ambiguity', () => {
    const sql = 'SELECT * FROM orders_raw /* was: /* old */ JOIN orders_clean USING (id) */';
    const error = refusal([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql }]);
    expect(error.message).toMatch(/^nodes\[2\]\.sql: daily's SQL reads orders_clean, a node of this spec that daily does not depend on: /);
    expect(error.message).toMatch(
      / \(This read is found only as SQLite reads the text, which ends a \/\* comment at its first \*\/ \(PostgreSQL and DuckDB nest comments and read it as commented out\); the spec does not say which warehouse runs it, so either reading counts\. Do not write \/\* inside a comment, or use -- comments, and both read it alike\.\)$/,
    );
    // Without the /* inside the comment, both readings agree: nothing is read.
    expect(() => resolveSpec(spec([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql: sql.replace('/* old */', '(old)') }]))).not.toThrow();
  });

  it('says it is found only as PostgreSQL and DuckDB read it', () => {
    const sql = "/* /* */ ' */ SELECT * FROM orders_clean -- '";
    const error = refusal([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql }]);
    expect(error.message).toContain('(This read is found only as PostgreSQL and DuckDB read the text, which nest /* comments');
  });

  it('adds nothing when both readings find the read', () => {
    const error = refusal([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql: '/* x /* y */ */ SELECT * FROM orders_clean' }]);
    expect(error.message).not.toContain('This read is found');
  });
});

describe('nearNodeReads: a table read whose name is a node\'s with a typo', () => {
  const notes = (nodes: unknown[]) => nearNodeReads(resolveSpec(spec(nodes)).nodes);

  it('notes a read one or two letters off a node, naming the node and whether it must go in dependsOn too', () => {
    expect(notes([raw, { ...clean, sql: 'SELECT * FROM orders_rwa' }])).toEqual([
      {
        path: ['nodes', 1, 'sql'],
        message:
          "orders_clean's SQL reads orders_rwa, which is no node of this spec: if you meant orders_raw, correct the name; as it is, it reads a table of that name outside the spec, and fails when a partition runs if there is none",
      },
    ]);
    const [daily] = notes([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql: 'SELECT COUNT(*) AS n FROM orders_clen', checks: [{ type: 'sql', name: 'none', sql: 'SELECT * FROM ordrs_raw WHERE 0' }] }]);
    expect(daily!.message).toContain('if you meant orders_clean (add it to dependsOn too), correct the name');
    expect(notes([raw, clean, { id: 'daily', dependsOn: ['orders_raw'], sql: 'SELECT * FROM orders_raw', checks: [{ type: 'sql', name: 'none', sql: 'SELECT * FROM ordrs_raw WHERE 0' }] }])).toEqual([
      expect.objectContaining({ path: ['nodes', 2, 'checks', 0, 'sql'], message: expect.stringMatching(/^daily's check 'none' reads ordrs_raw, which is no node of this spec: if you meant orders_raw, correct/) }),
    ]);
  });

  it('leaves alone the nodes themselves, qualified names, short names, and source tables whose names hold a node\'s or are held in one', () => {
    expect(notes([raw, clean])).toEqual([]);
    expect(notes([raw, { ...clean, sql: 'SELECT * FROM raw.orders_rwa' }])).toEqual([]);
    expect(notes([{ id: 'users', transform: 'noop' }, { id: 'daily', dependsOn: ['users'], sql: 'SELECT * FROM users JOIN usrs ON true' }])).toEqual([]);
    // `orders` beside `orders_raw` is a source table more often than not.
    expect(notes([raw, { id: 'daily', sql: 'SELECT * FROM orders' }, { id: 'more', sql: 'SELECT * FROM orders_raw_2024' }])).toEqual([]);
    // Three letters off: a table of its own.
    expect(notes([raw, { id: 'daily', sql: 'SELECT * FROM orders_xyz' }])).toEqual([]);
  });
});
