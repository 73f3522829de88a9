/** The warehouse contract on SQLite, and what is SQLite's own. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteWarehouse, pgFloatText, type SqliteDialect } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { sqliteRawAccess } from './sqlite-raw.ts';
import { plannedReading, rejection, warehouseSuite, write } from '../warehouse/suite.ts';
import { thrownBackfillError } from './backfill-error.ts';
import { SqlError } from '../../activities/warehouse/types.ts';

warehouseSuite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
  const path = join(dir, 'nested', 'warehouse.db');
  const warehouse = new SqliteWarehouse(path);
  return {
    warehouse,
    raw: sqliteRawAccess(path),
    cleanup: async () => {
      await warehouse.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite: its own storage', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const open = () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    dirs.push(dir);
    return new SqliteWarehouse(join(dir, 'nested', 'warehouse.db'));
  };

  it('creates the file and its directory', async () => {
    const wh = open();
    await wh.publish(write('orders', 'k', { rows: [{ a: 1 }] }));
    expect(wh.location).toMatch(/nested\/warehouse\.db$/);
    await wh.close();
  });

  it('stores booleans as 0/1, objects as JSON, and a column typed by the values it gets', async () => {
    const wh = open();
    await wh.publish(write('t', 'k', { rows: [{ flag: true, meta: { a: [1] }, n: null }, { flag: false, meta: null, n: 2.5 }] }));
    expect(await wh.query('SELECT flag, meta, n, typeof(n) AS nt FROM t ORDER BY flag')).toEqual([
      { flag: 0, meta: null, n: 2.5, nt: 'real' },
      { flag: 1, meta: '{"a":[1]}', n: null, nt: 'null' },
    ]);
    await wh.close();
  });

  it('widens a column by making its versions table again: declared types, its indexes, and views of the user\'s over the dataset stay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    dirs.push(dir);
    const path = join(dir, 'warehouse.db');
    const wh = new SqliteWarehouse(path);
    const raw = sqliteRawAccess(path);
    await wh.publish(write('orders', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1, zip: 2134, paid: true, n: 1 }] }));
    await raw.exec(`CREATE INDEX main.orders_by_zip ON orders__versions (zip); CREATE VIEW main.zips AS SELECT zip FROM orders`);
    await wh.publish(write('orders', 'k2', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 2, zip: 'N1', paid: 'no', n: 2.5 }, { id: 3, zip: 7, paid: null, n: 2 }] }));
    const types = await raw.rows(`SELECT name, type FROM pragma_table_info('orders__versions') ORDER BY cid`);
    expect(types).toEqual([
      { name: '__partition', type: 'TEXT' },
      { name: '__version', type: 'INTEGER' },
      { name: 'id', type: 'INTEGER' },
      { name: 'zip', type: 'TEXT' },
      { name: 'paid', type: 'TEXT' },
      { name: 'n', type: 'REAL' },
    ]);
    expect((await raw.rows(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'orders__versions' ORDER BY name`)).map((r) => r.name)).toEqual([
      'orders__versions_pk',
      'orders_by_zip',
    ]);
    expect(await wh.query('SELECT zip, typeof(zip) AS t FROM zips ORDER BY zip')).toEqual([
      { zip: '2134', t: 'text' },
      { zip: '7', t: 'text' },
      { zip: 'N1', t: 'text' },
    ]);
    expect(await wh.query('SELECT id, paid, n, typeof(n) AS t FROM orders ORDER BY id')).toEqual([
      { id: 1, paid: 'true', n: 1, t: 'real' },
      { id: 2, paid: 'no', n: 2.5, t: 'real' },
      { id: 3, paid: null, n: 2, t: 'real' },
    ]);
    await wh.close();
  });

  it('a version recorded before SQLite recorded how it read its columns still verifies after a column widens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    dirs.push(dir);
    const path = join(dir, 'warehouse.db');
    const wh = new SqliteWarehouse(path);
    const raw = sqliteRawAccess(path);
    await wh.publish(write('orders', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1, zip: 2134, note: 'a' }] }));
    // What a publish of an earlier release recorded: no kinds.
    await raw.exec(`UPDATE backfill_ledger SET version_kinds = '[]'`);
    await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 1, zip: '02134', note: 'b' }] }));
    expect(await raw.rows(`SELECT version, version_kinds FROM backfill_ledger ORDER BY version`)).toEqual([
      { version: 1, version_kinds: '["unknown","unknown","number"]' },
      { version: 2, version_kinds: '["number","text","text"]' },
    ]);
    expect(await wh.restore({ rollbackId: 'rb-1', backfillId: 'bf-2', node: 'orders', partition: 'k1', from: 2, to: 1 })).toMatchObject({ status: 'restored', to: 1 });
    expect(await wh.query('SELECT zip FROM orders')).toEqual([{ zip: '2134' }]);
    await wh.close();
  });

  it('writes a double widened to text as PostgreSQL does', () => {
    const cases: Array<[number, string]> = [
      [2, '2'],
      [2.5, '2.5'],
      [1e15, '1e+15'],
      [123456789012345.6, '123456789012345.6'],
      [1e-4, '0.0001'],
      [1e-5, '1e-05'],
      [5e-324, '5e-324'],
      [-1.5e300, '-1.5e+300'],
      [Number.POSITIVE_INFINITY, 'Infinity'],
      [Number.NEGATIVE_INFINITY, '-Infinity'],
    ];
    for (const [n, text] of cases) expect(pgFloatText(n)).toBe(text);
  });

  it('keeps the ledger in backfill_ledger and the published pointers in backfill_partitions', async () => {
    const wh = open();
    await wh.publish(write('orders', 'k', { rows: [{ a: 1 }] }));
    expect(await wh.query('SELECT node, partition, version FROM backfill_partitions')).toEqual([{ node: 'orders', partition: 'k', version: 1 }]);
    expect(await wh.query('SELECT COUNT(*) AS n FROM backfill_ledger')).toEqual([{ n: 1 }]);
    await wh.close();
  });

  it('syncs every commit to disk (synchronous = FULL), so that a publish survives a power loss', async () => {
    const wh = open();
    expect(await wh.query('SELECT synchronous FROM pragma_synchronous')).toEqual([{ synchronous: 2 }]);
    await wh.close();
  });

  it('refuses, inside a partition, the row counts ANALYZE keeps in sqlite_stat1; json_each and json_tree still read', async () => {
    const wh = open();
    for (const day of ['2024-01-01', '2024-01-02', '2024-01-03']) await wh.publish(write('daily', day, { rows: [{ day, revenue: 1 }] }));
    await wh.query('SELECT 1 AS x');
    const raw = sqliteRawAccess(wh.location);
    await raw.exec('ANALYZE');
    const pinned = await wh.pin([{ node: 'daily', from: '2024-01-02', to: '2024-01-02' }]);
    const error = await rejection(wh.query("SELECT stat FROM sqlite_stat1 WHERE tbl = 'daily__versions'", {}, pinned));
    expect(error.message).toMatch(/sqlite_stat1, whose statistics count the rows of every partition.*plain name/);
    const rows = "SELECT COUNT(*) AS n FROM daily, json_each('[1, 2]') AS a, json_tree('{\"b\": 1}') AS b WHERE b.type = 'integer'";
    expect(await wh.query(rows, {}, pinned)).toEqual([{ n: 2 }]);
    await wh.close();
  });

  it('keeps its identity in the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    dirs.push(dir);
    const first = new SqliteWarehouse(join(dir, 'w.db'));
    const id = await first.identity();
    await first.close();
    const again = new SqliteWarehouse(join(dir, 'w.db'));
    expect(await again.identity()).toBe(id);
    await again.close();
  });

  it('upgrades a warehouse file from before warnings, spec hashes, costs and rollbacks in place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    dirs.push(dir);
    const path = join(dir, 'old.db');
    const old = new Database(path);
    old.exec(LEDGER_BEFORE_DATA_TRUST);
    old.exec(`INSERT INTO backfill_ledger VALUES ('orders', 'k', 1, 'published', 'bf-0', 'r0', 'w0', 1, 'c0', 's0', 'sql', '{}', 'code-0', '[]', 1, 1,
      '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:01.000Z', 1000, NULL, NULL)`);
    old.close();
    for (let open = 0; open < 2; open++) {
      const wh = new SqliteWarehouse(path);
      expect(await wh.ledger({ node: 'orders' })).toEqual([expect.objectContaining({ version: 1, warnings: [], specHash: null, cost: null, checksum: 'c0' })]);
      expect(await wh.rollbacks({})).toEqual([]);
      await wh.close();
    }
    const wh = new SqliteWarehouse(path);
    await wh.publish(write('orders', 'k2', { rows: [{ a: 1 }], specHash: 'abc', cost: 2.5, checks: [{ type: 'row_count', max: 0, severity: 'warn' }] }));
    expect((await wh.ledger({ node: 'orders', partition: 'k2' }))[0]).toMatchObject({ specHash: 'abc', cost: 2.5, warnings: ['row_count: 1 rows, expected at most 0'] });
    await wh.close();
  });
});

describe('sqlite: what plan refuses of the names spec SQL reads, the partition refuses or reads wrongly', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  it('a dataset or backfill\'s table named otherwise than by a dataset\'s plain name: plan refuses it, and the partition is refused when it runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    dirs.push(dir);
    const wh = new SqliteWarehouse(join(dir, 'warehouse.db'));
    for (const day of ['2024-01-01', '2024-01-02']) await wh.publish(write('daily', day, { rows: [{ day, revenue: 10 }] }));
    const inputs = [{ node: 'daily', from: '2024-01-02', to: '2024-01-02' }];
    const names = ['main.daily', '"main"."daily"', 'temp.daily', 'daily__versions', 'main.daily__versions', 'backfill_ledger', 'main.backfill_partitions', 'backfill_leases', 'backfill_signatures'];
    for (const [i, name] of names.entries()) {
      const sql = `SELECT COUNT(*) AS n FROM ${name}`;
      expect(thrownBackfillError(plannedReading(sql)).code, name).toBe('invalid_spec');
      const error = await rejection(wh.publish(write('rolling', '2024-01-02', { backfillId: `bf-${i}`, runKey: `run-${i}`, selects: [{ sql, bindings: {} }], inputs })));
      expect(error, name).toBeInstanceOf(SqlError);
    }
    expect(await wh.ledger({ node: 'rolling' })).toEqual([]);
    // The plain name plans, and reads the partition it maps to.
    expect(plannedReading('SELECT COUNT(*) AS n FROM daily')).not.toThrow();
    await wh.publish(write('rolling', '2024-01-02', { selects: [{ sql: 'SELECT COUNT(*) AS n FROM daily', bindings: {} }], inputs }));
    expect(await wh.query('SELECT n FROM rolling')).toEqual([{ n: 1 }]);
    await wh.close();
  });
});

describe("sqlite: SQLite's [...] and `...` names hold no statement end and no parameter", () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const open = () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    dirs.push(dir);
    return new SqliteWarehouse(join(dir, 'warehouse.db'));
  };

  it('plan passes such SQL, and the partition runs it', async () => {
    const wh = open();
    const sql = 'SELECT 1 AS [a;b], 2 AS `c;d`, 3 AS [e:f], 4 AS `g:h`';
    expect(plannedReading(sql)).not.toThrow();
    await wh.publish(write('t', 'k', { selects: [{ sql, bindings: {} }] }));
    expect(await wh.query('SELECT * FROM t')).toEqual([{ 'a;b': 1, 'c;d': 2, 'e:f': 3, 'g:h': 4 }]);
    await wh.close();
  });

  it("a second statement only SQLite finds (behind [it's]) is refused in the words plan uses", async () => {
    const wh = open();
    const error = await rejection(wh.publish(write('t', 'k', { selects: [{ sql: "SELECT 1 AS [it's]; SELECT 2", bindings: {} }] })));
    expect(error.message).toMatch(/^spec SQL must be exactly one statement: keep the one SELECT that produces the partition/);
    await wh.close();
  });
});

describe("sqlite: a batch's ledger rows", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The statements `work` runs through better-sqlite3 that insert into the ledger, counted at the driver. */
  async function ledgerInserts(work: () => Promise<unknown>): Promise<number> {
    const probe = new Database(':memory:');
    const prototype = Object.getPrototypeOf(probe.prepare('SELECT 1')) as { run: (...args: unknown[]) => unknown };
    probe.close();
    const run = prototype.run;
    let inserts = 0;
    prototype.run = function (this: { source: string }, ...args: unknown[]) {
      if (this.source.startsWith('INSERT INTO main.backfill_ledger ')) inserts++;
      return run.apply(this, args);
    };
    try {
      await work();
    } finally {
      prototype.run = run;
    }
    return inserts;
  }

  it('are written by one INSERT for the batch, up to 100 rows each, and one for a partition published alone', async () => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    const wh = new SqliteWarehouse(join(dir, 'warehouse.db'));
    await wh.publish(write('orders', 'k0', { rows: [{ a: 0 }] }));
    const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => write('orders', `k${from + i}`, { rows: [{ a: from + i }] }));
    expect(await ledgerInserts(() => wh.publish(write('orders', 'k1', { rows: [{ a: 1 }] })))).toBe(1);
    expect(await ledgerInserts(() => wh.publishMany(batch(2, 10)))).toBe(1);
    // A failed check ends the batch: its row goes with those before it, in the same statement.
    const failing = [...batch(12, 3), write('orders', 'k15', { rows: [], checks: [{ type: 'row_count', min: 1 }] }), ...batch(16, 2)];
    expect(await ledgerInserts(async () => expect((await wh.publishMany(failing)).failed?.index).toBe(3))).toBe(1);
    expect(await ledgerInserts(() => wh.publishMany(batch(100, 250)))).toBe(3);
    const ledger = await wh.ledger({ node: 'orders' });
    expect(ledger).toHaveLength(1 + 1 + 10 + 4 + 250);
    expect(ledger.filter((r) => r.status === 'failed_check').map((r) => r.partition)).toEqual(['k15']);
    await wh.close();
  });
});

describe('sqlite: a transaction SQLite rolls back itself (a full disk)', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  /** A warehouse whose file may grow by 20 pages more: a big write fills it, and SQLite rolls the whole transaction back (with only a few pages more it rolls back the statement alone). */
  class Cramped extends SqliteWarehouse {
    cramp(): void {
      const { db } = this.dialect as SqliteDialect;
      db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true })) + 20}`);
    }

    roomy(): void {
      (this.dialect as SqliteDialect).db.pragma('max_page_count = 1073741823');
    }
  }
  const open = async (): Promise<Cramped> => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
    dirs.push(dir);
    const wh = new Cramped(join(dir, 'warehouse.db'));
    await wh.publish(write('seed', 'k', { rows: [{ a: 1 }] }));
    wh.cramp();
    return wh;
  };
  const big = (partition: string, options: Parameters<typeof write>[2] = {}) =>
    write('big', partition, { rows: Array.from({ length: 5000 }, (_, i) => ({ i, s: String(i).padEnd(200, 'x') })), ...options });
  const full = /database or disk is full/;

  it('fails a batch with its cause, keeps none of its earlier writes, and commits nothing', async () => {
    const wh = await open();
    const outcome = await wh.publishMany([write('small', 'k', { rows: [{ a: 1 }] }), big('k')]);
    expect(outcome.published).toEqual([]);
    expect(outcome.failed?.error.message).toMatch(full);
    expect(await wh.ledger({})).toEqual([expect.objectContaining({ node: 'seed' })]);
    wh.roomy();
    expect(await wh.publishMany([write('small', 'k', { rows: [{ a: 1 }] }), big('k')])).toMatchObject({ published: [{ version: 1 }, { version: 1 }] });
    await wh.close();
  });

  it('fails a write with checks with its cause, not a missing savepoint', async () => {
    const wh = await open();
    const error = await rejection(wh.publish(big('k', { checks: [{ type: 'row_count', min: 1 }] })));
    expect(error.message).toMatch(full);
    expect(await wh.ledger({ node: 'big' })).toEqual([]);
    wh.roomy();
    expect(await wh.publish(big('k', { checks: [{ type: 'row_count', min: 1 }] }))).toMatchObject({ version: 1, rowCount: 5000 });
    await wh.close();
  });

  it('fails a write without checks with its cause', async () => {
    const wh = await open();
    expect((await rejection(wh.publish(big('k')))).message).toMatch(full);
    expect(await wh.ledger({ node: 'big' })).toEqual([]);
    await wh.close();
  });
});

/** The ledger as the first release created it. */
const LEDGER_BEFORE_DATA_TRUST = `
CREATE TABLE backfill_ledger (
  node TEXT NOT NULL, partition TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL, backfill_id TEXT NOT NULL,
  run_key TEXT NOT NULL, workflow_id TEXT NOT NULL, row_count INTEGER, checksum TEXT, schema_hash TEXT, transform TEXT NOT NULL,
  params TEXT NOT NULL, code_version TEXT NOT NULL, inputs TEXT NOT NULL, attempt INTEGER NOT NULL, executions INTEGER NOT NULL DEFAULT 1,
  started_at TEXT NOT NULL, finished_at TEXT NOT NULL, duration_ms INTEGER NOT NULL, previous_version INTEGER, error TEXT,
  PRIMARY KEY (node, partition, version)
);
CREATE TABLE backfill_partitions (node TEXT NOT NULL, partition TEXT NOT NULL, version INTEGER NOT NULL, published_at TEXT NOT NULL, PRIMARY KEY (node, partition));
`;
