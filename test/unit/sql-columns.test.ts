/** Columns of a node's SQL that each warehouse would name its own way (core/sql-columns.ts), which plan and start note. */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { expandPlan, planSummary } from '../../core/plan.ts';
import { resolveSpec } from '../../core/spec.ts';
import { unnamedColumnNotes, unnamedColumns } from '../../core/sql-columns.ts';
import { sqlNotes } from '../../core/spec-notes.ts';

const texts = (sql: string) => unnamedColumns(sql).map((c) => `${c.position} ${c.text}`);

describe('unnamedColumns: the main query\'s columns without a name of their own', () => {
  it.each([
    ['SELECT a, b FROM t', 'plain columns'],
    ['SELECT t.a, s.t.b, "C", `d`, [e f] FROM t', 'qualified and quoted columns'],
    ['SELECT (a), ((t.b)) FROM t', 'parenthesised columns'],
    ['SELECT * FROM t', 'a star'],
    ['SELECT t.*, u.* FROM t JOIN u USING (id)', 'qualified stars'],
    ['SELECT * EXCLUDE (a), t.* REPLACE (b + 1 AS b) FROM t', "stars with DuckDB's modifiers"],
    ['SELECT count(*) AS n, sum(x) total, 1 AS one, \'x\' "label", DATE \'2024-01-01\' d FROM t', 'aliases with AS and without'],
    ['SELECT CASE WHEN a > 0 THEN 1 END AS sign, a + b AS ab, a::int AS ai FROM t', 'expressions with aliases'],
    ['SELECT DISTINCT a, b FROM t', 'after DISTINCT'],
    ['SELECT DISTINCT ON (a) a, b FROM t', 'after DISTINCT ON (...)'],
    ['SELECT ALL a FROM t', 'after ALL'],
    ['VALUES (1, 2)', 'VALUES, whose columns every engine names column1, column2'],
    ['TABLE t', 'TABLE'],
    ['SELECT a FROM t WHERE b = count(*) GROUP BY a HAVING sum(c) > 1 ORDER BY max(d)', 'expressions outside the select list'],
    ['SELECT a, (SELECT max(x) FROM u) AS m FROM (SELECT count(*) FROM v) s', 'unnamed columns of subqueries, which name no column of the dataset'],
    ['WITH c AS (SELECT count(*) FROM t) SELECT * FROM c', 'unnamed columns of a CTE'],
    ['SELECT a FROM t UNION ALL SELECT count(*) FROM u', 'a compound\'s later arms (the first names the columns)'],
    ['-- SELECT count(*)\nSELECT /* 1, */ a FROM t', 'comments'],
  ])('finds none in %j (%s)', (sql) => {
    expect(unnamedColumns(sql)).toEqual([]);
  });

  it.each([
    ['SELECT day, count(*) FROM t GROUP BY day', ['2 count(*)']],
    ['SELECT a * b, 2 * a, t.a * 2 FROM t', ['1 a * b', '2 2 * a', '3 t.a * 2']],
    ['SELECT a + b, CASE WHEN a > 0 THEN 1 END, CAST(a AS int), a::int FROM t', ['1 a + b', '2 CASE WHEN a > 0 THEN 1 END', '3 CAST(a AS int)', '4 a::int']],
    ["SELECT 1, 'x', NULL, true, -1, :partition FROM t", ['1 1', "2 'x'", '3 NULL', '4 true', '5 -1', '6 :partition']],
    ['SELECT a IS NULL, b IS NOT NULL, c ISNULL, d BETWEEN 1 AND e, NOT f, g IN (1, 2), h LIKE \'x%\' FROM t', ['1 a IS NULL', '2 b IS NOT NULL', '3 c ISNULL', '4 d BETWEEN 1 AND e', '5 NOT f', '6 g IN (1, 2)', "7 h LIKE 'x%'"]],
    ['SELECT sum(a) OVER w, sum(b) OVER (ORDER BY c), count(*) FILTER (WHERE d), e COLLATE nocase FROM t WINDOW w AS ()', ['1 sum(a) OVER w', '2 sum(b) OVER (ORDER BY c)', '3 count(*) FILTER (WHERE d)', '4 e COLLATE nocase']],
    ['WITH c(x) AS MATERIALIZED (SELECT 1), d AS (SELECT 2) SELECT x, count(*) FROM c', ['2 count(*)']],
    ['(SELECT a, max(b) FROM t) UNION (SELECT a, b FROM u)', ['2 max(b)']],
    ['WITH c AS (SELECT 1 AS x) (SELECT x + 1 FROM c) UNION ALL (SELECT 2 AS y)', ['1 x + 1']],
    ['SELECT DISTINCT ON (a) a, count(*)\n  FROM t', ['2 count(*)']],
    ['SELECT\n  sum(\n    amount\n  )\nFROM t', ['1 sum( amount )']],
  ])('finds them in %j', (sql, found) => {
    expect(texts(sql)).toEqual(found);
  });

  // The premise, on the engine at hand: SQLite names what is found here by its text, and what is not by its alias or column.
  it('agrees with SQLite: a column found unnamed is named by its text, one not found keeps the name written', () => {
    const db = new Database(':memory:');
    try {
      db.exec('CREATE TABLE t (a INTEGER, b INTEGER)');
      const named = db.prepare('SELECT a, t.b, (a), a + b AS ab, count(*) n FROM t').columns().map((c) => c.name);
      expect(named).toEqual(['a', 'b', 'a', 'ab', 'n']);
      expect(unnamedColumns('SELECT a, t.b, (a), a + b AS ab, count(*) n FROM t')).toEqual([]);
      const sql = 'SELECT count(*), a+b, CAST(a AS int), NULL FROM t';
      const names = db.prepare(sql).columns().map((c) => c.name);
      expect(names).toEqual(['count(*)', 'a+b', 'CAST(a AS int)', 'NULL']);
      expect(unnamedColumns(sql).map((c) => c.text)).toEqual(names);
    } finally {
      db.close();
    }
  });
});

describe('unnamedColumnNotes and sqlNotes: what plan and start note', () => {
  const spec = (nodes: unknown[]) => resolveSpec({ name: 'shop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes });

  it('notes a SQL node\'s unnamed columns, naming the node, the columns and the fix', () => {
    const nodes = spec([
      { id: 'orders_raw', transform: 'noop' },
      { id: 'daily', dependsOn: ['orders_raw'], sql: 'SELECT :partition AS day, count(*), sum(amount) FROM orders_raw' },
    ]).nodes;
    expect(unnamedColumnNotes(nodes)).toEqual([
      {
        path: ['nodes', 1, 'sql'],
        message:
          "daily's SQL leaves columns 2 (count(*)), 3 (sum(amount)) without a name, and each warehouse names such a column its own way " +
          '(SQLite by its text, PostgreSQL by its function or ?column?, DuckDB otherwise): the dataset\'s columns would depend on where it is written. ' +
          'Name each: count(*) AS <name>',
      },
    ]);
  });

  it('says nothing of SQL whose columns are all named, nor of a node that is not SQL', () => {
    const nodes = spec([
      { id: 'orders_raw', transform: 'noop', sql: 'SELECT count(*) FROM x' },
      { id: 'daily', dependsOn: ['orders_raw'], sql: 'SELECT :partition AS day, count(*) AS orders FROM orders_raw' },
    ]).nodes;
    expect(unnamedColumnNotes(nodes)).toEqual([]);
  });

  it('sqlNotes gives the typo notes and the unnamed columns together, and planSummary shows both', () => {
    const resolved = spec([
      { id: 'orders_raw', transform: 'noop' },
      { id: 'orders_clean', dependsOn: ['orders_raw'], sql: 'SELECT * FROM orders_rwa' },
      { id: 'daily', dependsOn: ['orders_clean'], sql: 'SELECT count(*) FROM orders_clean' },
    ]);
    const messages = sqlNotes(resolved.nodes).map((n) => n.message);
    expect(messages).toEqual([expect.stringMatching(/^orders_clean's SQL reads orders_rwa, which is no node/), expect.stringMatching(/^daily's SQL leaves column 1 \(count\(\*\)\) without a name/)]);
    expect(planSummary(expandPlan(resolved)).notes).toEqual(messages);
  });
});
