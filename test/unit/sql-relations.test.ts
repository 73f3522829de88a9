import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readRelations } from '../../core/sql-relations.ts';

/** The relations `sql` reads, as `name` or `qualifier.name`. */
const reads = (sql: string): string[] => readRelations(sql).map((r) => (r.qualifier === null ? r.name : `${r.qualifier}.${r.name}`));

describe('readRelations: FROM and JOIN', () => {
  const cases: Array<[string, string, string[]]> = [
    ['one table', 'SELECT * FROM orders_clean', ['orders_clean']],
    ['no table', 'SELECT 1 AS n', []],
    ['VALUES', "VALUES (1, 'a'), (2, 'b')", []],
    ['a trailing semicolon', 'SELECT * FROM orders;', ['orders']],
    ['upper and mixed case, folded', 'select * from Orders_Clean', ['orders_clean']],
    ['an alias with and without AS', 'SELECT o.id FROM orders AS o, customers c WHERE o.c = c.id', ['orders', 'customers']],
    ['a comma list', 'SELECT * FROM a, b, c', ['a', 'b', 'c']],
    ['every kind of join', 'SELECT * FROM a JOIN b ON a.x = b.x LEFT OUTER JOIN c USING (x) RIGHT JOIN d ON 1 = 1 FULL JOIN e ON 1 = 1 CROSS JOIN f NATURAL JOIN g INNER JOIN h ON 1 = 1', ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']],
    ["DuckDB's joins", 'SELECT * FROM a ASOF JOIN b ON a.t >= b.t POSITIONAL JOIN c ANTI JOIN d ON 1 = 1 SEMI JOIN e ON 1 = 1', ['a', 'b', 'c', 'd', 'e']],
    ['a comma after a join condition', 'SELECT * FROM a JOIN b ON a.x = b.x AND a.y IN (1, 2), c', ['a', 'b', 'c']],
    ['a column alias list', 'SELECT * FROM a AS t(x, y), b', ['a', 'b']],
    ['no relation in the select list, WHERE, GROUP BY or ORDER BY', 'SELECT a, b FROM t WHERE c = d GROUP BY a, b HAVING COUNT(*) > 1 ORDER BY a, b LIMIT 1', ['t']],
    ['a window clause', 'SELECT SUM(x) OVER w FROM t WINDOW w AS (PARTITION BY a ORDER BY b), v AS (ORDER BY c)', ['t']],
    ['UNION, INTERSECT and EXCEPT', 'SELECT a FROM x UNION ALL SELECT a FROM y INTERSECT SELECT a FROM z EXCEPT SELECT a FROM w', ['x', 'y', 'z', 'w']],
    ['a qualified name', 'SELECT * FROM main.orders JOIN "analytics"."orders" ON 1 = 1, db.s.t', ['main.orders', 'analytics.orders', 'db.s.t']],
    ['a qualified name with spaces', 'SELECT * FROM main . orders', ['main.orders']],
    ['a table function', 'SELECT * FROM generate_series(1, 3) AS g, json_each(:list) j, read_parquet(\'x.parquet\')', []],
    ['a qualified table function', 'SELECT * FROM pg_catalog.generate_series(1, 3)', []],
    ['ONLY', 'SELECT * FROM ONLY orders', ['orders']],
    ['TABLESAMPLE and INDEXED BY', 'SELECT * FROM a TABLESAMPLE SYSTEM (10), b INDEXED BY b_idx, c NOT INDEXED', ['a', 'b', 'c']],
    ['ROWS FROM', 'SELECT * FROM ROWS FROM (generate_series(1, 2), unnest(:a)) AS t', []],
    ["DuckDB's FROM first", 'FROM orders SELECT id, amount', ['orders']],
    ["DuckDB's FROM alone", 'FROM orders', ['orders']],
    ["DuckDB's file read", "SELECT * FROM 'orders.parquet'", []],
    ["SQLite's string for a name", "SELECT * FROM 'orders'", ['orders']],
  ];
  for (const [label, sql, expected] of cases) it(label, () => expect(reads(sql)).toEqual(expected));

  it('gives where each name is and whether it was quoted', () => {
    const sql = 'SELECT * FROM orders o JOIN "Customers" c ON 1 = 1';
    expect(readRelations(sql)).toEqual([
      { name: 'orders', qualifier: null, quoted: false, at: sql.indexOf('orders'), implicitRecursion: false, readBy: 'both' },
      { name: 'Customers', qualifier: null, quoted: true, at: sql.indexOf('Customers'), implicitRecursion: false, readBy: 'both' },
    ]);
  });

  it('lists a relation as often as it is read', () => {
    expect(reads('SELECT * FROM a JOIN a b ON 1 = 1 WHERE x IN (SELECT x FROM a)')).toEqual(['a', 'a', 'a']);
  });
});

describe('readRelations: subqueries', () => {
  const cases: Array<[string, string, string[]]> = [
    ['in FROM', 'SELECT * FROM (SELECT * FROM inner_t) AS s', ['inner_t']],
    ['nested in FROM', 'SELECT * FROM (SELECT * FROM (SELECT * FROM deep) a) b', ['deep']],
    ['in the select list', 'SELECT (SELECT MAX(x) FROM m) AS top, y FROM t', ['m', 't']],
    ['in WHERE: IN, EXISTS, a comparison', 'SELECT * FROM t WHERE a IN (SELECT a FROM u) AND EXISTS (SELECT 1 FROM v) AND b > (SELECT MIN(b) FROM w)', ['t', 'u', 'v', 'w']],
    ['in a function argument', 'SELECT COALESCE((SELECT 1 FROM u), 0) AS n', ['u']],
    ['LATERAL', 'SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.id = t.id) l JOIN LATERAL (SELECT 1 FROM v) m ON true', ['t', 'u', 'v']],
    ['a parenthesised join', 'SELECT * FROM (a JOIN b ON a.x = b.x) JOIN c ON 1 = 1', ['a', 'b', 'c']],
    ['a nested parenthesised join', 'SELECT * FROM ((a JOIN b ON 1 = 1) LEFT JOIN (SELECT * FROM c) s ON 1 = 1)', ['a', 'b', 'c']],
    ['a parenthesised name', 'SELECT * FROM (orders) o', ['orders']],
    ['a parenthesised compound', 'SELECT * FROM ((SELECT a FROM x) UNION (SELECT a FROM y)) s', ['x', 'y']],
    ['VALUES in FROM', 'SELECT * FROM (VALUES (1), (2)) AS v(n), t', ['t']],
    ['a parenthesised query', '(SELECT * FROM a) UNION ALL (SELECT * FROM b)', ['a', 'b']],
    ['in a CASE', 'SELECT CASE WHEN EXISTS (SELECT 1 FROM u) THEN 1 ELSE 0 END AS f FROM t', ['u', 't']],
    ['in a join condition', 'SELECT * FROM a JOIN b ON a.x IN (SELECT x FROM c), d', ['a', 'b', 'c', 'd']],
  ];
  for (const [label, sql, expected] of cases) it(label, () => expect(reads(sql)).toEqual(expected));
});

describe('readRelations: common table expressions', () => {
  const cases: Array<[string, string, string[]]> = [
    ['a CTE is no relation', 'WITH c AS (SELECT * FROM a) SELECT * FROM c', ['a']],
    ['with a column list', 'WITH c(x, y) AS (SELECT 1, 2 FROM a) SELECT * FROM c', ['a']],
    ['MATERIALIZED and NOT MATERIALIZED', 'WITH c AS MATERIALIZED (SELECT 1 FROM a), d AS NOT MATERIALIZED (SELECT 1 FROM b) SELECT * FROM c, d', ['a', 'b']],
    ['a later CTE reads an earlier one', 'WITH c AS (SELECT * FROM a), d AS (SELECT * FROM c JOIN b ON 1 = 1) SELECT * FROM d JOIN c ON 1 = 1', ['a', 'b']],
    ['an earlier CTE does not see a later one', 'WITH c AS (SELECT * FROM d), d AS (SELECT 1 AS x) SELECT * FROM c', ['d']],
    ['WITH RECURSIVE sees itself', 'WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5) SELECT n FROM s', []],
    ['a compound CTE without RECURSIVE reads the relation of its name', 'WITH daily AS (SELECT * FROM extra UNION ALL SELECT * FROM daily) SELECT * FROM daily', ['extra', 'daily']],
    ["SQLite's recursive CTE without the keyword reads the relation on PostgreSQL and DuckDB", 'WITH s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5) SELECT n FROM s', ['s']],
    ['WITH RECURSIVE sees later CTEs', 'WITH RECURSIVE c AS (SELECT * FROM d), d AS (SELECT 1 FROM a) SELECT * FROM c', ['a']],
    ['a CTE named like the relation it reads reads that relation', 'WITH orders AS (SELECT * FROM orders WHERE paid) SELECT * FROM orders', ['orders']],
    ['a quoted CTE name', 'WITH "c" AS (SELECT 1 FROM a) SELECT * FROM c', ['a']],
    ['a qualified name is never a CTE', 'WITH orders AS (SELECT 1) SELECT * FROM main.orders', ['main.orders']],
    ['a union after the CTEs', 'WITH c AS (SELECT 1 FROM a) SELECT * FROM c UNION SELECT * FROM c JOIN b ON 1 = 1', ['a', 'b']],
    ['a CTE in a subquery', 'SELECT * FROM (WITH c AS (SELECT 1 FROM a) SELECT * FROM c) s', ['a']],
    ["a subquery's CTE is out of scope outside it", 'SELECT * FROM (WITH c AS (SELECT 1 FROM a) SELECT * FROM c) s JOIN c ON 1 = 1', ['a', 'c']],
    ['a CTE is in scope in a subquery', 'WITH c AS (SELECT 1 FROM a) SELECT * FROM t WHERE EXISTS (SELECT 1 FROM c)', ['a', 't']],
    ["PostgreSQL's SEARCH and CYCLE", 'WITH RECURSIVE t(id) AS (SELECT id FROM a UNION ALL SELECT id FROM t) CYCLE id SET is_cycle USING path, u AS (SELECT 1 FROM b) SELECT * FROM t, u', ['a', 'b']],
    ['a CTE whose main query is VALUES', 'WITH c AS (SELECT 1 FROM a) VALUES (1)', ['a']],
    ['a CTE whose main query is TABLE', 'WITH c AS (SELECT 1 FROM a) TABLE c', ['a']],
  ];
  for (const [label, sql, expected] of cases) it(label, () => expect(reads(sql)).toEqual(expected));

  it('marks a read of its own name in a compound CTE without RECURSIVE, which SQLite alone takes for recursion', () => {
    const marked = (sql: string): string[] => readRelations(sql).filter((r) => r.implicitRecursion).map((r) => r.name);
    expect(marked('WITH daily AS (SELECT * FROM extra UNION ALL SELECT * FROM daily) SELECT * FROM daily')).toEqual(['daily']);
    expect(marked('WITH "Daily" AS (SELECT 1 UNION SELECT * FROM (SELECT * FROM daily) d) SELECT * FROM daily')).toEqual(['daily']);
    expect(marked('WITH orders AS (SELECT * FROM orders WHERE paid) SELECT * FROM orders')).toEqual([]);
    expect(marked('WITH c AS (SELECT 1 FROM a UNION SELECT 1 FROM b) SELECT * FROM c, a')).toEqual([]);
    expect(marked('WITH c AS (SELECT 1 UNION SELECT 1 FROM main.c) SELECT * FROM c')).toEqual([]);
  });
});

describe('readRelations: quoted identifiers', () => {
  const cases: Array<[string, string, string[]]> = [
    ['double quotes keep their case', 'SELECT * FROM "Orders"', ['Orders']],
    ['doubled double quotes', 'SELECT * FROM "a""b"', ['a"b']],
    ['a quoted keyword is a name', 'SELECT * FROM "from" JOIN "select" ON 1 = 1', ['from', 'select']],
    ['backticks', 'SELECT * FROM `orders` JOIN `a``b` ON 1 = 1', ['orders', 'a`b']],
    ["SQLite's brackets", 'SELECT * FROM [orders] JOIN [order lines] ON 1 = 1, [c]', ['orders', 'order lines', 'c']],
    ['brackets elsewhere are subscripts or lists', "SELECT a[1], [1, 2] AS l, x['FROM y'] FROM t", ['t']],
    ['a quoted name with a FROM inside', 'SELECT "FROM x" FROM t', ['t']],
  ];
  for (const [label, sql, expected] of cases) it(label, () => expect(reads(sql)).toEqual(expected));
});

describe('readRelations: literals and comments name nothing', () => {
  const cases: Array<[string, string, string[]]> = [
    ['a string', "SELECT 'x FROM a' AS s FROM t", ['t']],
    ['a doubled quote in a string', "SELECT 'it''s FROM a' AS s FROM t", ['t']],
    ['an escape string', "SELECT E'it\\'s FROM a' AS s FROM t", ['t']],
    ['a backslash in a plain string ends nothing', "SELECT 'a\\' AS s FROM t", ['t']],
    ['prefixed strings', "SELECT X'00', B'01', N'FROM a' FROM t", ['t']],
    ['dollar quotes', 'SELECT $$FROM a$$ AS s, $tag$ FROM b $ FROM c $tag$ AS u FROM t', ['t']],
    ['parameters', 'SELECT :partition AS p, $1 AS q, ? AS r, @x AS s, $name AS v FROM t WHERE d >= :start', ['t']],
    ['a line comment', 'SELECT 1 -- FROM a\nFROM t', ['t']],
    ['a line comment at the end', 'SELECT * FROM t -- JOIN a', ['t']],
    ['a block comment', 'SELECT /* FROM a */ * FROM /* b */ t', ['t']],
    ['a nested block comment', 'SELECT /* x /* FROM a */ y */ * FROM t', ['t']],
    ['a nested block comment ends at its first */ for SQLite', 'SELECT /* x /* FROM a */ FROM b */ * FROM t', ['b', 't']],
    ['a comment holding /*, which SQLite runs past and PostgreSQL never closes', '/* inputs: raw/*.csv */ SELECT * FROM b', ['b']],
    ['the reads of both comment readings, in the order they appear', 'SELECT * FROM a /* x /* */ JOIN b ON 1 = 1 */ JOIN c ON 1 = 1', ['a', 'b', 'c']],
    ['a comment between FROM and the name', 'SELECT * FROM -- the orders\n  orders', ['orders']],
    ['an unclosed string hides the rest', "SELECT 'FROM a", []],
    ['an unclosed comment hides the rest', 'SELECT * FROM t /* FROM a', ['t']],
    ['a check template', 'SELECT * FROM {{this}} t WHERE id NOT IN (SELECT id FROM {{ previous }})', []],
    ['a check template beside a relation', 'SELECT * FROM {{this}} t, orders o WHERE t.id = o.id', ['orders']],
    ['numbers', 'SELECT 1.5e3, 0x1f, 2 FROM t', ['t']],
    ['non-ASCII names', 'SELECT * FROM größen JOIN "données" ON 1 = 1', ['größen', 'données']],
  ];
  for (const [label, sql, expected] of cases) it(label, () => expect(reads(sql)).toEqual(expected));
});

describe('readRelations: which reading of the comments finds a read', () => {
  /** `name:readBy` of each read. */
  const readBy = (sql: string): string[] => readRelations(sql).map((r) => `${r.name}:${r.readBy}`);
  const cases: Array<[string, string, string[]]> = [
    ['no block comment: both', 'SELECT * FROM a -- /* FROM x\nJOIN b ON 1 = 1', ['a:both', 'b:both']],
    ['comments that hold no /*: both', 'SELECT * FROM /* x */ a /* FROM y */ JOIN b ON 1 = 1', ['a:both', 'b:both']],
    ['a properly nested comment with nothing after its inner */: both', 'SELECT /* x /* y */ */ * FROM t', ['t:both']],
    ['after the first */ of a comment holding /*: SQLite only', 'SELECT * FROM t /* x /* y */ JOIN b ON 1 = 1 */', ['t:both', 'b:flat']],
    ['an unclosed nested comment: SQLite only', '/* inputs: raw/*.csv */ SELECT * FROM b', ['b:flat']],
    ["a quote SQLite's flat reading opens inside the comment: PostgreSQL only", "/* /* */ ' */ SELECT * FROM b -- '", ['b:nested']],
  ];
  for (const [label, sql, expected] of cases) it(label, () => expect(readBy(sql)).toEqual(expected));

  it('marks a read found by one reading only, and never a read of text without /*', () => {
    const piece = fc.constantFrom('/*', '*/', ' FROM a ', ' JOIN b ON 1 = 1 ', "'", ' x ', '--', '\n');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const sql = `SELECT * FROM t ${pieces.join('')}`;
        const found = readRelations(sql);
        if (!sql.includes('/*')) expect(found.every((r) => r.readBy === 'both'), sql).toBe(true);
        // The first read comes before any comment: both readings find it.
        expect(found[0], sql).toMatchObject({ name: 't', readBy: 'both' });
        for (const r of found) expect(['both', 'nested', 'flat'], sql).toContain(r.readBy);
      }),
      { numRuns: 500 },
    );
  });
});

describe('readRelations: FROM that is not a FROM clause', () => {
  const cases: Array<[string, string, string[]]> = [
    ['EXTRACT', 'SELECT EXTRACT(year FROM ordered_at) AS y FROM t', ['t']],
    ['SUBSTRING', 'SELECT SUBSTRING(name FROM 2 FOR 3) FROM t', ['t']],
    ['TRIM', "SELECT TRIM(BOTH 'x' FROM name), TRIM(LEADING FROM name) FROM t", ['t']],
    ['OVERLAY', "SELECT OVERLAY(name PLACING 'x' FROM 2) FROM t", ['t']],
    ['IS DISTINCT FROM', 'SELECT * FROM t WHERE a IS DISTINCT FROM orders AND b IS NOT DISTINCT FROM c', ['t']],
    ['POSITION', "SELECT POSITION('a' IN orders) FROM t", ['t']],
    ['a subquery inside EXTRACT', 'SELECT EXTRACT(year FROM (SELECT MAX(d) FROM u)) FROM t', ['u', 't']],
  ];
  for (const [label, sql, expected] of cases) it(label, () => expect(reads(sql)).toEqual(expected));
});

describe('readRelations: other ways to name a relation', () => {
  const cases: Array<[string, string, string[]]> = [
    ['TABLE', 'TABLE orders', ['orders']],
    ['TABLE in a union and a subquery', 'SELECT * FROM a UNION ALL TABLE b UNION (TABLE c)', ['a', 'b', 'c']],
    ["SQLite's IN table", 'SELECT * FROM t WHERE id IN ids AND id NOT IN main.gone', ['t', 'ids', 'main.gone']],
    ['IN a list is no relation', 'SELECT * FROM t WHERE id IN (1, 2) AND x IN (SELECT x FROM u)', ['t', 'u']],
    ["DuckDB's list comprehension", 'SELECT [x * 2 FOR x IN tags] AS doubled FROM t', ['t']],
  ];
  for (const [label, sql, expected] of cases) it(label, () => expect(reads(sql)).toEqual(expected));
});

describe('readRelations: the SQL of the repository', () => {
  it("finds the shop example's reads", () => {
    expect(
      reads(`SELECT order_id, customer_id, ordered_at, country, status,
             CASE currency
               WHEN 'USD' THEN (amount_cents * 92 + 50) / 100
               ELSE amount_cents
             END AS amount_eur_cents
      FROM orders_raw
      WHERE status <> 'test'`),
    ).toEqual(['orders_raw']);
    expect(reads('SELECT :start_date AS day, country, COUNT(DISTINCT customer_id) AS customers FROM orders_clean WHERE status = \'paid\' GROUP BY country')).toEqual(['orders_clean']);
  });

  it('finds nothing in any string literal, quoted name or comment, whatever it holds', () => {
    const text = fc.string({ unit: fc.constantFrom('F', 'R', 'O', 'M', 'a', ' ', '(', ')', "'", '"', '`', '[', ']', '$', '-', '/', '*', '\n', '\\', 'é') });
    fc.assert(
      fc.property(text, (s) => {
        const inside = [
          `'${s.replaceAll("'", "''")}'`,
          `"${s.replaceAll('"', '""')}"`,
          `/* ${s.replaceAll('*/', '* /').replaceAll('/*', '/ *')} */`,
          `-- ${s.replaceAll('\n', ' ')}\n`,
          `$q$${s.replaceAll('$q$', '')}$q$`,
        ];
        for (const piece of inside) expect(reads(`SELECT ${piece} AS c FROM t`), piece).toEqual(['t']);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws, whatever the text', () => {
    fc.assert(fc.property(fc.string(), (s) => Array.isArray(readRelations(s))), { numRuns: 500 });
    for (const sql of ['', ')', '((', 'FROM', 'WITH', 'WITH x', 'WITH x AS', 'WITH x AS (', "'", '"', '`', '[', '$$', '$a$', '/*', '--', 'FROM .', 'FROM a.', 'JOIN (', 'TABLE', 'IN']) {
      expect(() => readRelations(sql), sql).not.toThrow();
    }
  });
});
