/** resolveSpec refuses spec SQL no partition could run: two statements, no query, or a parameter nothing binds (core/sql-runs.ts). */
import { describe, expect, it } from 'vitest';
import { resolveSpec } from '../../core/spec.ts';
import { positionalParameters, unboundParameter } from '../../core/sql-parameters.ts';
import { statementCount } from '../../core/sql-relations.ts';
import { singleStatement } from '../../activities/warehouse/sql.ts';
import { SqlRefusedError } from '../../activities/warehouse/types.ts';
import { thrownBackfillError } from './backfill-error.ts';

const spec = (nodes: unknown[]) => ({ name: 'meters', partitions: { grain: 'day', start: '2024-03-01', end: '2024-03-04' }, nodes });
const raw = { id: 'readings_raw', transform: 'noop' };
const node = (sql: string, extra: Record<string, unknown> = {}) => ({ id: 'readings', dependsOn: ['readings_raw'], sql, ...extra });

function refusal(nodes: unknown[]) {
  const error = thrownBackfillError(() => resolveSpec(spec(nodes)));
  expect(error.code).toBe('invalid_spec');
  return error;
}

describe('resolveSpec: SQL of more than one statement', () => {
  it('is refused at the node SQL, as every partition would refuse it', () => {
    const error = refusal([raw, node('SELECT * FROM readings_raw; DELETE FROM readings_raw')]);
    expect(error.path).toBe('nodes[1].sql');
    expect(error.message).toMatch(/^nodes\[1\]\.sql: spec SQL must be exactly one statement, and this is 2: keep the one SELECT/);
  });

  it('passes trailing semicolons and comments, and semicolons inside strings, quoted names and comments', () => {
    for (const sql of [
      'SELECT * FROM readings_raw;',
      'SELECT * FROM readings_raw;; -- done\n',
      "SELECT ';' AS s, \"a;b\" FROM readings_raw /* ; DELETE */",
      'SELECT $$;$$ AS s FROM readings_raw',
      // SQLite's quoted names, wherever they are.
      'SELECT 1 AS [a;b], value_milli AS `c;d` FROM readings_raw',
      'SELECT * FROM readings_raw; -- the one row',
      'SELECT * FROM readings_raw; /* note */',
      '; SELECT * FROM readings_raw',
    ]) {
      expect(() => resolveSpec(spec([raw, node(sql)])), sql).not.toThrow();
    }
  });

  it('is refused in an SQL check too', () => {
    const error = refusal([raw, node('SELECT * FROM readings_raw', { checks: [{ type: 'sql', name: 'none', sql: 'SELECT 1 FROM {{this}}; SELECT 2' }] })]);
    expect(error.path).toBe('nodes[1].checks[0].sql');
    expect(error.message).toMatch(/exactly one statement, and this is 2/);
  });

  it('leaves the sql of another transform alone, which uses it as it likes', () => {
    expect(() => resolveSpec(spec([raw, node('SELECT 1; SELECT :anything', { transform: 'noop' })]))).not.toThrow();
  });
});

describe('resolveSpec: SQL that is no query', () => {
  it('is refused at the node SQL, naming the word it starts with and a misspelt SELECT (it passed plan and failed every partition)', () => {
    const typo = refusal([raw, node('SELEC * FROM readings_raw')]);
    expect(typo.path).toBe('nodes[1].sql');
    expect(typo.message).toBe(
      "nodes[1].sql: readings's SQL starts with SELEC (SELECT misspelt?), but spec SQL must be a query that only reads: a SELECT, WITH ... SELECT or VALUES " +
        "(it runs inside the partition's read-only scope, where nothing else can)",
    );
    const write = refusal([raw, node('-- fix the readings\nUPDATE readings_raw SET value_milli = 0 RETURNING *')]);
    expect(write.message).toMatch(/^nodes\[1\]\.sql: readings's SQL starts with UPDATE, but spec SQL must be a query that only reads/);
  });

  it("is refused in an SQL check, naming the check as written (the warehouse's refusal named neither, and showed {{this}} as __this)", () => {
    const error = refusal([raw, node('SELECT * FROM readings_raw', { checks: [{ type: 'sql', name: 'complete day', sql: 'DELETE FROM {{this}} WHERE n <> 24' }] })]);
    expect(error.path).toBe('nodes[1].checks[0].sql');
    expect(error.message).toMatch(/^nodes\[1\]\.checks\[0\]\.sql: readings's check 'complete day' starts with DELETE, but spec SQL must be a query/);
  });

  it('passes every way a query may start on some engine, after comments and semicolons', () => {
    for (const sql of [
      'select * from readings_raw',
      '/* why */ -- and how\n WITH r AS (SELECT * FROM readings_raw) SELECT * FROM r',
      'VALUES (1)',
      'TABLE readings_raw',
      'FROM readings_raw SELECT *',
      '(SELECT * FROM readings_raw) UNION ALL (SELECT * FROM readings_raw)',
      '; SELECT * FROM readings_raw',
    ]) {
      expect(() => resolveSpec(spec([raw, node(sql)])), sql).not.toThrow();
    }
  });
});

describe('resolveSpec: SQL with an empty quoted name', () => {
  it('is refused at the node SQL and in an SQL check, as a selected column\'s name or anywhere, naming the fix', () => {
    const named = refusal([raw, node('SELECT value_milli AS "" FROM readings_raw')]);
    expect(named.path).toBe('nodes[1].sql');
    expect(named.message).toMatch(/^nodes\[1\]\.sql: spec SQL names a selected column "" \(a name of no characters\), .*: give every selected expression a name of its own \(AS name\)/);
    const check = refusal([raw, node('SELECT * FROM readings_raw', { checks: [{ type: 'sql', name: 'none', sql: 'SELECT `` FROM {{this}}' }] })]);
    expect(check.path).toBe('nodes[1].checks[0].sql');
    expect(check.message).toMatch(/spec SQL holds an empty quoted name \(""\)/);
  });

  it("passes an empty string, a quoted name that is not empty, an empty name in a comment, and PostgreSQL's int[]", () => {
    for (const sql of ["SELECT '' AS s, \"a\" FROM readings_raw", 'SELECT 1 AS n /* AS "" */ FROM readings_raw -- ""', 'SELECT CAST(NULL AS int[]) AS a FROM readings_raw']) {
      expect(() => resolveSpec(spec([raw, node(sql)])), sql).not.toThrow();
    }
  });
});

describe('statementCount', () => {
  it('counts the statements between semicolons, empty ones not', () => {
    expect(statementCount('SELECT 1')).toBe(1);
    expect(statementCount(' ; SELECT 1 ;; ')).toBe(1);
    expect(statementCount('SELECT 1; SELECT 2;')).toBe(2);
    expect(statementCount('-- only a comment')).toBe(0);
  });

  it('reads a [...] or `...` name as one token wherever it is', () => {
    expect(statementCount('SELECT 1 AS [a;b]')).toBe(1);
    expect(statementCount('SELECT 1 AS `a;b`')).toBe(1);
    expect(statementCount('SELECT x[1:2] FROM t; SELECT 2')).toBe(2);
  });

  it('counts two only where every reading of block comments finds two', () => {
    // PostgreSQL nests comments (all of it is one comment), SQLite ends it at the first */.
    expect(statementCount('SELECT 1 /* a /* b */ ; SELECT 2 */')).toBe(1);
  });
});

describe('the run time applies the same rule', () => {
  it('singleStatement refuses two statements with the message plan gives', () => {
    expect(() => singleStatement('SELECT 1; DELETE FROM t')).toThrow(SqlRefusedError);
    expect(() => singleStatement('SELECT 1; DELETE FROM t')).toThrow(/exactly one statement, and this is 2/);
  });

  it('singleStatement keeps the statement up to its last token: no semicolon or comment after it, no empty statement before it', () => {
    for (const comments of ['nested', 'flat'] as const) {
      expect(singleStatement('SELECT 1 ;\n', comments)).toBe('SELECT 1');
      expect(singleStatement('SELECT 1 AS a; -- the one row', comments)).toBe('SELECT 1 AS a');
      expect(singleStatement('SELECT 1 AS a; /* note */\n', comments)).toBe('SELECT 1 AS a');
      expect(singleStatement('SELECT 1 AS a -- the one row\n;;', comments)).toBe('SELECT 1 AS a');
      expect(singleStatement('; ;SELECT 1', comments)).toBe('SELECT 1');
      expect(singleStatement("-- why\nSELECT ';' AS s, $$;$$ AS d -- inside\nFROM t;", comments)).toBe("-- why\nSELECT ';' AS s, $$;$$ AS d -- inside\nFROM t");
      expect(singleStatement('SELECT 1 AS [a;b]', comments)).toBe('SELECT 1 AS [a;b]');
    }
  });

  it("singleStatement counts by the engine's reading of block comments", () => {
    const sql = 'SELECT 1 /* a /* b */ ; SELECT 2 */';
    expect(singleStatement(sql, 'nested')).toBe('SELECT 1');
    expect(() => singleStatement(sql, 'flat')).toThrow(/exactly one statement, and this is 2/);
  });
});

describe('resolveSpec: a parameter no partition binds', () => {
  it('is refused, naming the parameter and the fix', () => {
    const error = refusal([raw, node('SELECT * FROM readings_raw WHERE value_milli >= :threshold')]);
    expect(error.path).toBe('nodes[1].sql');
    expect(error.message).toBe(
      "nodes[1].sql: readings's SQL uses the parameter ':threshold', which no partition binds: define it in the node's params, " +
        'or use :partition, :start, :end, :start_date, :end_date',
    );
  });

  it("passes the partition's own parameters and the node's scalar params", () => {
    const sql = 'SELECT :partition AS p, :start AS s, :end AS e, :start_date AS sd, :end_date AS ed, :threshold AS t, :name AS n, :on AS o, :none AS z FROM readings_raw';
    expect(() => resolveSpec(spec([raw, node(sql, { params: { threshold: 5, name: 'x', on: true, none: null } })]))).not.toThrow();
  });

  it('passes what only looks like a parameter: in a string, a quoted name, a comment, a dollar-quoted body, a :: cast', () => {
    const sql = "SELECT ':x' AS s, \"a:y\" AS q, $$ :z $$ AS d, value_milli::int AS v -- :w\nFROM readings_raw /* :v */";
    expect(() => resolveSpec(spec([raw, node(sql)]))).not.toThrow();
  });

  it("passes SQLite's [a:b] and `a:b` names, a slice arr[lo:hi], and E'...' strings with a backslash-escaped quote", () => {
    const sql = "SELECT value_milli AS [a:b], value_milli AS `c:d`, arr[lo:hi] AS s, E'it\\'s :x' AS e FROM readings_raw";
    expect(() => resolveSpec(spec([raw, node(sql)]))).not.toThrow();
  });

  it('says so when the param is a list or an object, which are not bound', () => {
    const error = refusal([raw, node('SELECT * FROM readings_raw WHERE id IN (:ids)', { params: { ids: [1, 2] } })]);
    expect(error.message).toBe(
      "nodes[1].sql: readings's SQL uses the parameter ':ids', which no partition binds (params.ids is a list, which is not bound): " +
        "make params.ids a string, number, boolean or null, or write the list's values into the SQL",
    );
  });

  it("is refused in an SQL check, which is given no parameters", () => {
    const error = refusal([raw, node('SELECT * FROM readings_raw', { checks: [{ type: 'sql', name: 'recent', sql: 'SELECT 1 FROM {{this}} WHERE day < :start' }] })]);
    expect(error.path).toBe('nodes[1].checks[0].sql');
    expect(error.message).toMatch(/check 'recent' uses the parameter ':start', but a check's SQL is given no parameters/);
  });
});

describe('positionalParameters: what PostgreSQL and the lake are sent', () => {
  const cases: Array<[string, string, string[]]> = [
    ['a :: cast', 'SELECT :a::int, x::text', ['SELECT $1::int, x::text', 'a']],
    ['strings and quoted names', `SELECT ':x', "a""b;:y", \`c:d\`, :a`, [`SELECT ':x', "a""b;:y", \`c:d\`, $1`, 'a']],
    ["an E'...' string's backslash-escaped quote", "SELECT E'\\':x', :a, e'\\\\', :b", ["SELECT E'\\':x', $1, e'\\\\', $2", 'a', 'b']],
    ['a dollar-quoted body', 'SELECT $t$ :x ; $t$, $$:y$$, :a', ['SELECT $t$ :x ; $t$, $$:y$$, $1', 'a']],
    ['comments', 'SELECT :a -- ; :x\n/* :y; */ FROM t', ['SELECT $1 -- ; :x\n/* :y; */ FROM t', 'a']],
    ["slices and SQLite's [...] names", 'SELECT arr[lo:hi], arr[1:2], arr[f(x):y], [a:b] FROM t', ['SELECT arr[lo:hi], arr[1:2], arr[f(x):y], [a:b] FROM t']],
    ['a parameter as a subscript or in a list', 'SELECT arr[:i], arr[lo : :hi], [:a, :b]', ['SELECT arr[$1], arr[lo : $2], [$3, $4]', 'i', 'hi', 'a', 'b']],
  ];
  for (const [label, sql, [text, ...names]] of cases) {
    it(label, () => expect(positionalParameters(sql)).toEqual({ text, names }));
  }
});

describe('unboundParameter', () => {
  it('finds the first name neither the partition nor the scalar params bind', () => {
    expect(unboundParameter('SELECT :a, :partition, :b', { a: 1 })?.name).toBe('b');
    expect(unboundParameter('SELECT :a', { a: { nested: 1 } })?.message).toMatch(/params\.a is an object, .*: make params\.a a string, number, boolean or null, or write the object's values into the SQL$/);
    expect(unboundParameter('SELECT 1', {})).toBeUndefined();
  });
});

describe('resolveSpec: double-brace placeholders', () => {
  const check = (sql: string) => ({ type: 'sql', name: 'total not negative', sql, severity: 'warn' });

  it("refuses a check's placeholder other than {{this}} and {{previous}}, naming the one meant", () => {
    const error = refusal([raw, node('SELECT :partition AS day FROM readings_raw', { checks: [check('SELECT * FROM {{thiss}} WHERE total < 0')] })]);
    expect(error.path).toBe('nodes[1].checks[0].sql');
    expect(error.message).toContain("readings's check 'total not negative' has {{thiss}}, which backfill does not fill in: a check reads {{this}} (the partition's new version) and {{previous}} (the published version it replaces); did you mean {{this}}?");
    expect(refusal([raw, node('SELECT 1 AS x FROM readings_raw', { checks: [check("SELECT * FROM {{ ref('x') }}")] })]).message).not.toContain('did you mean');
  });

  it('takes {{this}} and {{previous}}, spaces inside the braces too', () => {
    expect(() => resolveSpec(spec([raw, node('SELECT 1 AS x FROM readings_raw', { checks: [check('SELECT * FROM {{ this }} t JOIN {{previous}} p ON t.x = p.x WHERE t.x < 0')] })]))).not.toThrow();
  });

  it("refuses a template in a node's SQL, which runs as written", () => {
    const error = refusal([raw, node("SELECT * FROM {{ ref('readings_raw') }}")]);
    expect(error.path).toBe('nodes[1].sql');
    expect(error.message).toContain("readings's SQL has {{ ref('readings_raw') }}, but a node's SQL is run as written, no template: bind values by :name");
  });
});
