/**
 * The warehouse contract on a Parquet lake, opened as any adapter's warehouse is (its scheme,
 * `lake://`, through the public entry; the kit from the testkit entry), and what is the lake's own.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RowHasher } from '../../activities/warehouse/checksum.ts';
import { CatalogueHold } from '../../activities/warehouse/lake/catalogue.ts';
import { LakeWarehouse } from '../../activities/warehouse/lake/lake-dialect.ts';
import { LakeLayout } from '../../activities/warehouse/lake/layout.ts';
import { CheckFailedError, InvalidDatasetError, SqlError, openWarehouse, quoteIdent, quoteLiteral, type PartitionWrite, type Row } from '../../warehouse.ts';
import { ORDERS, rejection, warehouseSuite, write, type RawAccess } from '../../warehouse-testkit.ts';
import { openExistingWarehouse } from '../../client/existing-warehouse.ts';
import { readAsReaders, readersReadAt, writeLedger } from '../warehouse/readers.ts';

/**
 * Writes behind the lake's back: SQL on its catalogue (taken from the warehouse the way
 * another process takes it), and a change to a stored version, which in a lake is a rewrite
 * of the version's Parquet file.
 */
export function lakeRawAccess(root: string): RawAccess {
  const layout = new LakeLayout(root);
  const versionsOf = (node: string) => quoteLiteral(join(root, node, '_versions', '*', '*.parquet'));
  /** Runs `work` on a DuckDB of its own holding the lake's catalogue, as another process would. */
  const withCatalogue = async <T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const hold = new CatalogueHold(async () => connection, layout, async () => undefined, async () => undefined, { minHoldMs: 0 });
    mkdirSync(layout.catalogDir, { recursive: true });
    try {
      await hold.acquire();
      return await work(connection);
    } finally {
      await hold.close();
      connection.closeSync();
      instance.closeSync();
    }
  };
  const exec = (sql: string) =>
    withCatalogue(async (connection) => {
      const tamper = /^UPDATE '([^']+)' SET (\w+) = (?:'([^']*)'|(-?\d+)) WHERE __partition = '([^']+)' AND __version = (\d+)$/.exec(sql.trim());
      if (!tamper) return void (await connection.run(sql));
      const [, glob, column, text, integer, partition, version] = tamper;
      // Text, or an integer literal kept a number (its column's type).
      const literal = integer ?? quoteLiteral(text!);
      const node = glob!.slice(root.length + 1).split('/')[0]!;
      const file = layout.version(node, partition!, Number(version));
      const rewritten = `${file}.tampered`;
      const source = `read_parquet(${quoteLiteral(file)})`;
      const has = (await connection.runAndReadAll(`SELECT column_name FROM (DESCRIBE SELECT * FROM ${source})`)).getRows().some((r) => r[0] === column);
      // A column the version's file lacks held NULL in that version: the update gives it a value.
      const select = has ? `* REPLACE (${literal} AS ${quoteIdent(column!)})` : `*, ${literal} AS ${quoteIdent(column!)}`;
      await connection.run(`COPY (SELECT ${select} FROM ${source}) TO ${quoteLiteral(rewritten)} (FORMAT parquet)`);
      renameSync(rewritten, file);
    });
  // A dataset's versions are its version files; with none, an empty relation (DuckDB refuses a glob that matches nothing).
  const rows = (sql: string) =>
    withCatalogue(async (connection) => {
      const expanded = sql.replace(/'([^']+)\/_versions\/\*\/\*\.parquet'/g, (_, dataset: string) => {
        const dir = join(dataset, '_versions');
        const files = existsSync(dir) ? readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /(^|\/)\d+\.parquet$/.test(f)).map((f) => quoteLiteral(join(dir, f))) : [];
        return files.length > 0 ? `read_parquet([${files.join(', ')}], union_by_name = true)` : '(SELECT NULL AS __partition WHERE false)';
      });
      const reader = await connection.runAndReadAll(expanded);
      const names = reader.columnNames();
      return reader.getRows().map((row) => Object.fromEntries(row.map((v, i) => [names[i]!, typeof v === 'bigint' ? Number(v) : v]))) as Row[];
    });
  const catalogReads = [
    // Built-in macros over the catalogue's table functions (duckdb_views(), pragma_database_size(), duckdb_types()).
    'SELECT COUNT(*) AS views, MIN(left(pg_get_viewdef(x), 40)) AS first FROM range(0, 3000) t(x) WHERE pg_get_viewdef(x) IS NOT NULL',
    "SELECT pg_catalog.get_block_size('lake') AS n",
    'SELECT format_type(CAST(x AS INTEGER), 0) AS t FROM range(0, 30) t(x)',
    'SELECT pg_get_constraintdef(CAST(1 AS BIGINT), true) AS c',
  ];
  return { exec, rows, versionsTable: versionsOf, ledgerTable: 'lake.backfill.ledger', view: (name) => `lake.main.${quoteIdent(name)}`, scopeTable: 'temp.main.backfill_scope', catalogReads };
}

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fresh lake with the ledger `writeLedger` leaves, closed. */
async function lakeWithLedger(): Promise<string> {
  const root = freshRoot();
  const workers = new LakeWarehouse(root);
  try {
    await writeLedger(workers);
  } finally {
    await workers.close();
  }
  return root;
}

function freshRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-lake-'));
  dirs.push(dir);
  return join(dir, 'lake');
}

warehouseSuite('lake', async () => {
  const root = freshRoot();
  const warehouse = openWarehouse(`lake://${root}`, { inline: true });
  return { warehouse, raw: lakeRawAccess(warehouse.location), cleanup: () => warehouse.close() };
}, { runaway: 'SELECT COUNT(*) AS n FROM range(1000000000000000000)' });

/** Rows of `sql` read by a DuckDB of the test's own, with no backfill in between. */
async function readDirectly(sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(':memory:');
  try {
    const connection = await instance.connect();
    const rows = (await connection.runAndReadAll(sql)).getRows();
    connection.closeSync();
    return rows.map((row) => row.map((v) => (typeof v === 'bigint' ? Number(v) : v)));
  } finally {
    instance.closeSync();
  }
}

describe('lake: closing', () => {
  it('closes DuckDB and removes its spill directory even when letting go of the catalogue fails, and throws that failure', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    await wh.publish(write('orders', 'k1', { rows: [{ id: 1 }] }));
    const spill = wh.lake.layout.temporary(hostname(), process.pid);
    mkdirSync(spill, { recursive: true });
    const hold = wh.lake.hold;
    const letGo = hold.close.bind(hold);
    // The catalogue is let go, and then its close fails.
    vi.spyOn(hold, 'close').mockImplementation(async () => {
      await letGo();
      throw new Error('the catalogue failed to close');
    });
    const connections = vi.spyOn(DuckDBConnection.prototype, 'closeSync');
    const instances = vi.spyOn(DuckDBInstance.prototype, 'closeSync');
    try {
      expect((await rejection(wh.close())).message).toBe('the catalogue failed to close');
      expect(connections).toHaveBeenCalledTimes(1);
      expect(instances).toHaveBeenCalledTimes(1);
      expect(existsSync(spill)).toBe(false);
    } finally {
      vi.restoreAllMocks();
    }
    // Closed: a warehouse opened again on the lake reads it.
    const again = new LakeWarehouse(root);
    try {
      expect(await again.query('SELECT id FROM orders')).toEqual([{ id: 1 }]);
    } finally {
      await again.close();
    }
  });
});

describe('lake: the files', () => {
  it('keep every version as a Parquet file, and the dataset directory holds exactly the published ones, following publishes and restores', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      await wh.publish(write('orders', '2024-01-01', { runKey: 'r1', rows: [{ id: 1 }] }));
      await wh.publish(write('orders', '2024-01-02', { runKey: 'r1', rows: [{ id: 2 }] }));
      await wh.publish(write('orders', '2024-01-01', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 10, note: 'new column' }] }));
      await wh.publish(write('orders', '2024-01-03', { runKey: 'r1', rows: [{ id: 3 }], checks: [{ type: 'row_count', min: 2 }] })).catch(() => undefined);
      const published = () => readdirSync(join(root, 'orders')).filter((f) => f.endsWith('.parquet')).sort();
      const direct = () => readDirectly(`SELECT id FROM read_parquet('${root}/orders/*.parquet', union_by_name = true) ORDER BY id`);
      expect(published()).toEqual(['2024-01-01.parquet', '2024-01-02.parquet']);
      expect(readdirSync(join(root, 'orders', '_versions', '2024-01-01')).sort()).toEqual(['1.parquet', '2.parquet']);
      // A version whose checks failed left no file behind.
      expect(existsSync(join(root, 'orders', '_versions', '2024-01-03'))).toBe(false);
      expect(await direct()).toEqual([[2], [10]]);

      await wh.restore({ rollbackId: 'rb', backfillId: 'bf-2', node: 'orders', partition: '2024-01-01', from: 2, to: 1 });
      expect(await direct()).toEqual([[1], [2]]);
      expect(await wh.query('SELECT id FROM orders ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
      await wh.restore({ rollbackId: 'rb', backfillId: 'bf-2', node: 'orders', partition: '2024-01-02', from: 1, to: null, force: true });
      expect(published()).toEqual(['2024-01-01.parquet']);
      expect(await direct()).toEqual([[1]]);
    } finally {
      await wh.close();
    }
  });

  it("of a batch's partitions keep their values exactly when a later partition of the batch needs a wider type for a column (1.5 after an integer above 2^53), whether it then passes its checks or fails them", async () => {
    const root = freshRoot();
    const layout = new LakeLayout(root);
    const wh = new LakeWarehouse(root);
    try {
      const big = 1234567890123456789n;
      const exact = new RowHasher(['n']);
      exact.add([big]);
      for (const [node, fails] of [['passes', false], ['fails', true]] as const) {
        const k2 = { rows: [{ n: 1.5 }], ...(fails ? { checks: [{ type: 'row_count' as const, min: 5 }] } : {}) };
        const batch = await wh.publishMany([write(node, 'k1', { rows: [{ n: big }] }), write(node, 'k2', k2)]);
        expect(batch.published.map((p) => p.checksum), node).toEqual([exact.checksum(), ...(fails ? [] : [expect.any(String)])]);
        expect(batch.failed?.index, node).toBe(fails ? 1 : undefined);
        // k1's file holds what was written, and hashes to its ledger's checksum.
        const stored = await readDirectly(`SELECT CAST(n AS VARCHAR) FROM read_parquet('${layout.version(node, 'k1', 1)}')`);
        expect(stored, node).toEqual([[big.toString()]]);
        const ledger = (await wh.ledger({ node, partition: 'k1' })).find((r) => r.status === 'published');
        expect(ledger?.checksum, node).toBe(exact.checksum());
        if (!fails) expect(await readDirectly(`SELECT n FROM read_parquet('${layout.version(node, 'k2', 1)}')`), node).toEqual([[1.5]]);
      }
    } finally {
      await wh.close();
    }
  });

  it('a pointer move whose file did not follow (the holder failed or died after the commit) is finished by the next holder, and a moved partition is recorded once', async () => {
    const root = freshRoot();
    const publishedFile = join(root, 'orders', '2024-01-01.parquet');
    const wh = new LakeWarehouse(root);
    try {
      await wh.publish(write('orders', '2024-01-01', { runKey: 'r1', rows: [{ id: 1 }] }));
      // Republished while its record is kept (not yet cleared): recorded once, no conflict.
      await wh.publish(write('orders', '2024-01-01', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 2 }] }));
      expect(await readDirectly(`SELECT id FROM read_parquet('${publishedFile}')`)).toEqual([[2]]);
      // A directory where the published file goes: the move after the next commit fails.
      rmSync(publishedFile);
      mkdirSync(join(publishedFile, 'blocker'), { recursive: true });
      // Committed: the publish is answered with its version, and its file's move is left to finish.
      expect((await wh.publish(write('orders', '2024-01-01', { backfillId: 'bf-3', runKey: 'r3', rows: [{ id: 3 }] }))).version).toBe(3);
      expect((await wh.publishedRows('orders')).map((r) => r.version)).toEqual([3]);
      rmSync(publishedFile, { recursive: true });
    } finally {
      // Letting go clears the records of moves that were mirrored, and keeps the one that was not.
      await wh.close();
    }
    // Letting go also finished the move, its place free again: no other write was needed.
    expect(await readDirectly(`SELECT id FROM read_parquet('${publishedFile}')`)).toEqual([[3]]);
    const next = new LakeWarehouse(root);
    try {
      await next.identity();
      expect(await readDirectly(`SELECT id FROM read_parquet('${publishedFile}')`)).toEqual([[3]]);
      expect(await next.query('SELECT id FROM orders')).toEqual([{ id: 3 }]);
      await next.publish(write('orders', '2024-01-01', { backfillId: 'bf-4', runKey: 'r4', rows: [{ id: 4 }] }));
      expect(await readDirectly(`SELECT id FROM read_parquet('${publishedFile}')`)).toEqual([[4]]);
    } finally {
      await next.close();
    }
  });

  it('a pointer move that still fails when the holder lets go of the catalogue is told, and left to the next holder', async () => {
    const root = freshRoot();
    const layout = new LakeLayout(root);
    const warnings: string[] = [];
    const wh = new LakeWarehouse(root, { warn: (message) => warnings.push(message) });
    mkdirSync(join(layout.published('orders', 'k'), 'blocker'), { recursive: true });
    try {
      await wh.publish(write('orders', 'k', { rows: [{ id: 1 }] }));
    } finally {
      await wh.close();
    }
    expect(warnings.length).toBe(2);
    expect(warnings[1]).toMatch(/: the lake could not put the published file of orders k in place at .*k\.parquet, a move its catalogue recorded at a commit \(EISDIR.*\): .* \(the next process or write that takes the lake tries again\)$/);
    rmSync(layout.published('orders', 'k'), { recursive: true });
    const next = new LakeWarehouse(root);
    try {
      expect(await next.query('SELECT id FROM orders')).toEqual([{ id: 1 }]);
      expect(await readDirectly(`SELECT id FROM read_parquet('${layout.published('orders', 'k')}')`)).toEqual([[1]]);
    } finally {
      await next.close();
    }
  });

  it("a recorded pointer move whose version file is gone fails the next write saying so, not that a path should be made free", async () => {
    const root = freshRoot();
    const layout = new LakeLayout(root);
    const wh = new LakeWarehouse(root, { warn: () => undefined });
    try {
      mkdirSync(join(layout.published('orders', 'k'), 'blocker'), { recursive: true });
      await wh.publish(write('orders', 'k', { rows: [{ id: 1 }] }));
      rmSync(layout.published('orders', 'k'), { recursive: true });
      rmSync(layout.version('orders', 'k', 1));
      const blocked = await rejection(wh.publish(write('orders', 'other', { rows: [{ id: 2 }] })));
      expect(blocked.message).toMatch(/ \(ENOENT.*\): nothing more is written to the lake until it can \(a rollback neither\); the file of its published version 1, .*1\.parquet, is missing: put it back \(from a copy of the lake\)$/);
    } finally {
      await wh.close();
    }
  });

  it("publishes whose commit succeeded and whose file moves after it failed are answered with what they committed, alone or grouped: no failed check recorded twice, no warning lost", async () => {
    const root = freshRoot();
    const layout = new LakeLayout(root);
    const warn = [{ type: 'not_null' as const, columns: ['amount'], severity: 'warn' as const }];
    const error = [{ type: 'not_null' as const, columns: ['amount'] }];
    const warnings: string[] = [];
    const wh = new LakeWarehouse(root, { warn: (message) => warnings.push(message) });
    /** A directory where a partition's published file goes: its move after the commit fails. */
    const block = (partition: string) => mkdirSync(join(layout.published('orders', partition), 'blocker'), { recursive: true });
    const ledger = async () => (await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r.version, r.status]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    try {
      // A batch of its own: the first partition published with a warning, the second failing its check.
      block('a1');
      const alone = await wh.publishMany([write('orders', 'a1', { rows: ORDERS, checks: warn }), write('orders', 'a2', { rows: ORDERS, checks: error })]);
      expect(alone.published.map((p) => [p.version, p.alreadyPublished, p.warnings.length])).toEqual([[1, undefined, 1]]);
      expect(alone.failed?.index).toBe(1);
      expect(alone.failed?.error).toBeInstanceOf(CheckFailedError);
      // Answered as published, and told: which partitions, where, and that the next write finishes the move.
      expect(warnings).toEqual([expect.stringMatching(/: the publish of orders a1, orders a2 committed, but the lake could not put the published file of orders a1 in place at .*a1\.parquet \(EISDIR.*\); the warehouse's next write finishes it/)]);
      rmSync(layout.published('orders', 'a1'), { recursive: true });

      // Three publishes waiting for the turn together: one transaction for the group.
      block('g1');
      const [first, second, third] = await Promise.all([
        wh.publishMany([write('orders', 'g1', { rows: ORDERS, checks: warn })]),
        wh.publishMany([write('orders', 'g2', { rows: ORDERS, checks: error })]),
        wh.publishMany([write('orders', 'g3', { rows: [{ order_id: 3 }] })]),
      ]);
      expect(first.failed).toBeUndefined();
      expect(first.published.map((p) => [p.version, p.alreadyPublished, p.warnings.length])).toEqual([[1, undefined, 1]]);
      expect(second.published).toEqual([]);
      expect(second.failed?.error).toBeInstanceOf(CheckFailedError);
      expect(third.published.map((p) => [p.version, p.alreadyPublished])).toEqual([[1, undefined]]);
      expect(warnings[1]).toMatch(/: the publish of orders g1, orders g2, orders g3 committed, but the lake could not put the published file of orders g1 in place/);

      // One ledger row each: nothing was published again.
      expect(await ledger()).toEqual([
        ['a1', 1, 'published'],
        ['a2', 1, 'failed_check'],
        ['g1', 1, 'published'],
        ['g2', 1, 'failed_check'],
        ['g3', 1, 'published'],
      ]);
      expect((await wh.ledger({ node: 'orders' })).every((r) => r.executions === 1)).toBe(true);

      // The holder's next write finishes the moves first: while a file's place is taken it fails, naming it, and writes nothing.
      const blocked = await rejection(wh.publish(write('orders', 'n1', { rows: [{ order_id: 9 }] })));
      expect(blocked.message).toMatch(/^the lake could not put the published file of orders g1 in place at .*g1\.parquet, a move its catalogue recorded at a commit \(EISDIR.*\): nothing more is written to the lake until it can \(a rollback neither\); make that path free and its directory writable$/);
      expect((await ledger()).length).toBe(5);
      rmSync(layout.published('orders', 'g1'), { recursive: true });
      await wh.publish(write('orders', 'n1', { rows: [{ order_id: 9 }] }));
      const direct = await readDirectly(`SELECT order_id FROM read_parquet('${root}/orders/*.parquet', union_by_name = true) ORDER BY order_id`);
      // a1 and g1 (ORDERS each), g3 and n1: every published file in place.
      expect(direct).toEqual([[1], [1], [2], [2], [3], [3], [3], [9]]);
    } finally {
      await wh.close();
    }
  });

  it('a version file left by a publisher killed before its commit is not the version that reuses its number, even one with no rows', async () => {
    const root = freshRoot();
    const killed = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'lake', 'crash-at-commit.ts'), root], { timeout: 60_000 }).then(
      () => 'exited',
      (e: { signal?: string; stderr?: string }) => e.signal ?? e.stderr,
    );
    expect(killed).toBe('SIGKILL');
    // The killed attempt's file, at version 2's place, with no ledger row.
    expect(existsSync(new LakeLayout(root).version('orders', '2024-01-01', 2))).toBe(true);
    const wh = new LakeWarehouse(root);
    try {
      // A later run (a day that now has no orders) publishes the partition with no rows.
      const published = await wh.publish(write('orders', '2024-01-01', { runKey: 'run-3', backfillId: 'bf-3', rows: [] }));
      expect(published).toMatchObject({ version: 2, rowCount: 0 });
      expect(await wh.query('SELECT id, note FROM orders')).toEqual([]);
      expect(await readDirectly(`SELECT COUNT(*) FROM read_parquet('${new LakeLayout(root).version('orders', '2024-01-01', 2)}')`)).toEqual([[0]]);
      // Back to version 1 and forward again: version 2's checksum is that of no rows.
      await wh.restore({ rollbackId: 'rb', backfillId: 'bf-3', node: 'orders', partition: '2024-01-01', from: 2, to: 1 });
      expect(await wh.query('SELECT id FROM orders')).toEqual([{ id: 1 }]);
      await wh.restore({ rollbackId: 'rb2', backfillId: 'bf-3', node: 'orders', partition: '2024-01-01', from: 1, to: 2 });
      expect(await wh.query('SELECT id FROM orders')).toEqual([]);
    } finally {
      await wh.close();
    }
  }, 90_000);

  it('a writer killed mid-write leaves _incoming-* files that are never read, do not stop the next publish of the partition, and go when a process next opens the lake', async () => {
    const root = freshRoot();
    const killed = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'lake', 'crash-mid-write.ts'), root], { timeout: 60_000 }).then(
      () => 'exited',
      (e: { signal?: string; stderr?: string }) => e.signal ?? e.stderr,
    );
    expect(killed).toBe('SIGKILL');
    const versions = join(root, 'orders', '_versions');
    const incoming = () => readdirSync(versions).filter((f) => f.startsWith('_incoming-')).sort();
    // The killed write's file, whole, with its two rows.
    const [left] = incoming();
    expect(incoming()).toHaveLength(1);
    expect(await readDirectly(`SELECT COUNT(*) FROM read_parquet('${join(versions, left!)}')`)).toEqual([[2]]);
    // What else a crash leaves: a directory (a writer of a file per thread) and a file cut short.
    mkdirSync(join(versions, '_incoming-00000000000a.parquet'));
    writeFileSync(join(versions, '_incoming-00000000000a.parquet', 'data_0.parquet'), 'PAR1');
    writeFileSync(join(versions, '_incoming-00000000000b.parquet'), 'PAR1\0\0');
    // And one changed after the lake is opened, as a writer still at work would: it stays, and is not read either.
    const young = '_incoming-00000000000c.parquet';
    copyFileSync(join(versions, left!), join(versions, young));
    const later = new Date(Date.now() + 3_600_000);
    utimesSync(join(versions, young), later, later);
    // A reader of the dataset's directory sees the published file only.
    expect(await readDirectly(`SELECT id FROM read_parquet('${root}/orders/*.parquet') ORDER BY id`)).toEqual([[1]]);

    const wh = new LakeWarehouse(root);
    try {
      expect(await wh.query('SELECT id FROM orders')).toEqual([{ id: 1 }]);
      expect(incoming()).toEqual([young]);
      const published = await wh.publish(write('orders', '2024-01-01', { runKey: 'run-3', backfillId: 'bf-3', rows: [{ id: 3 }] }));
      expect(published).toMatchObject({ version: 2, rowCount: 1 });
      expect(await wh.query('SELECT id FROM orders')).toEqual([{ id: 3 }]);
      expect(await wh.restore({ rollbackId: 'rb', backfillId: 'bf-3', node: 'orders', partition: '2024-01-01', from: 2, to: 1 })).toMatchObject({ status: 'restored' });
      expect(await wh.query('SELECT id FROM orders')).toEqual([{ id: 1 }]);
      expect(readdirSync(versions).sort()).toEqual(['2024-01-01', young]);
    } finally {
      await wh.close();
    }
  }, 90_000);

  it("DuckDB's spill directories of processes of this machine that died are removed when a process opens the lake; a live process's, another machine's, and an older release's changed within the hour stay", async () => {
    const root = freshRoot();
    const layout = new LakeLayout(root);
    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const spill = (name: string, mtime?: Date) => {
        mkdirSync(join(layout.catalogDir, name), { recursive: true });
        writeFileSync(join(layout.catalogDir, name, 'duckdb_temp_storage-0.tmp'), 'x'.repeat(1024));
        if (mtime) utimesSync(join(layout.catalogDir, name), mtime, mtime);
      };
      const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
      spill(basename(layout.temporary(hostname(), deadPid)));
      spill(basename(layout.temporary(hostname(), live.pid!)));
      spill(basename(layout.temporary('another-host', deadPid)));
      spill(`tmp-${deadPid}`, hoursAgo);
      spill(`tmp-${live.pid!}`, hoursAgo);
      spill(`tmp-${deadPid + 1_000_000}`);
      const wh = new LakeWarehouse(root);
      try {
        await wh.publish(write('orders', '2024-01-01', { rows: [{ id: 1 }] }));
        expect(readdirSync(layout.catalogDir).filter((f) => f.startsWith('tmp-')).sort()).toEqual(
          [basename(layout.temporary(hostname(), live.pid!)), basename(layout.temporary('another-host', deadPid)), `tmp-${deadPid + 1_000_000}`, `tmp-${live.pid!}`].sort(),
        );
      } finally {
        await wh.close();
      }
      expect(existsSync(layout.temporary(hostname(), process.pid))).toBe(false);
    } finally {
      live.kill();
    }
  });

  it('name a partition key that is not a plain file name so that it stays inside its directory', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      await wh.publish(write('static', '../../escape', { rows: [{ id: 1 }] }));
      await wh.publish(write('static', '_hidden', { rows: [{ id: 2 }] }));
      expect(readdirSync(join(root, 'static')).filter((f) => f.endsWith('.parquet')).sort()).toEqual(['%2E%2E%2F%2E%2E%2Fescape.parquet', '%5Fhidden.parquet']);
      expect(existsSync(join(root, '..', 'escape.parquet'))).toBe(false);
      expect(await wh.query('SELECT id FROM static ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: partition keys that differ only in case', () => {
  it('are refused in one dataset (US, us: on a case-insensitive file system, macOS\' or Windows\', their files would be one), published, staged or at once; the dataset is left as it was', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    const sales = (partition: string, n: number, more: Partial<PartitionWrite> = {}) => write('sales', partition, { runKey: `run-${n}`, backfillId: `bf-${n}`, rows: [{ n }], ...more });
    try {
      await wh.publish(sales('US', 1));
      const twin = await rejection(wh.publish(sales('us', 2)));
      expect(twin).toBeInstanceOf(InvalidDatasetError);
      expect(twin.message).toMatch(/^dataset 'sales': partition 'us' differs only in case from its partition 'US', .* case-insensitive file system \(macOS, Windows\).* Give the partitions keys that differ in more than case$/);
      expect(await rejection(wh.publish(sales('uS', 3, { stage: true })))).toBeInstanceOf(InvalidDatasetError);
      // Two that wait for one turn commit together: the first is published, the second refused.
      const both = await Promise.allSettled([wh.publish(sales('EU', 4)), wh.publish(sales('eu', 5))]);
      expect(both.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
      // A version that failed its checks has no file, and holds no name: the first with files does.
      expect(await rejection(wh.publish(sales('APAC', 6, { checks: [{ type: 'row_count', min: 5 }] })))).toBeInstanceOf(CheckFailedError);
      await wh.publish(sales('apac', 7));
      expect(await rejection(wh.publish(sales('APAC', 6)))).toBeInstanceOf(InvalidDatasetError);
      // The same key again, the key in another dataset, and keys equal but for other characters are fine.
      await wh.publish(sales('US', 8));
      await wh.publish(write('stock', 'us', { rows: [{ n: 9 }] }));
      await wh.publish(sales('US-2', 10));
      expect(readdirSync(join(root, 'sales')).filter((f) => f.endsWith('.parquet')).sort()).toEqual(['EU.parquet', 'US-2.parquet', 'US.parquet', 'apac.parquet']);
      expect(readdirSync(join(root, 'sales', '_versions')).sort()).toEqual(['EU', 'US', 'US-2', 'apac']);
      expect([...new Set((await wh.ledger({ node: 'sales' })).filter((r) => r.status === 'published').map((r) => r.partition))].sort()).toEqual(['EU', 'US', 'US-2', 'apac']);
      // Dataset names are lowercase: Orders and orders cannot both be.
      expect(await rejection(wh.publish(write('Sales', 'k', { rows: [{ n: 1 }] })))).toBeInstanceOf(InvalidDatasetError);
    } finally {
      await wh.close();
    }
    // A lake from before the names were recorded learns its partitions' when a warehouse first opens it.
    await lakeRawAccess(root).exec('DROP TABLE lake.backfill.partition_names');
    const reopened = new LakeWarehouse(root);
    try {
      expect(await rejection(reopened.publish(sales('Us', 11)))).toBeInstanceOf(InvalidDatasetError);
      await reopened.publish(sales('EU', 12));
    } finally {
      await reopened.close();
    }
  });
});

describe('lake: partition keys that differ only in case, in one batch', () => {
  it("are refused as in two publishes: the second reads the first's ledger row, written before it is, not with the batch's", async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    const sales = (partition: string, n: number) => write('sales', partition, { runKey: 'run-1', backfillId: 'bf-1', rows: [{ n }], stage: true });
    try {
      // Staged, US is in no pointer: only its ledger row says that its name is held.
      const { published, failed } = await wh.publishMany([sales('EU', 1), sales('US', 2), sales('us', 3)]);
      expect(published.map((p) => p.version)).toEqual([1, 1]);
      expect([failed?.index, failed?.error]).toEqual([2, expect.any(InvalidDatasetError)]);
      expect(failed?.error.message).toMatch(/partition 'us' differs only in case from its partition 'US', which is not published now \(a version of it is staged/);
      expect((await wh.ledger({ node: 'sales' })).map((r) => [r.partition, r.status])).toEqual([
        ['EU', 'staged'],
        ['US', 'staged'],
      ]);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: spec SQL parameters beside slices', () => {
  it('binds :i as a subscript and :a, :b in a list, and leaves a slice l[lo:hi] alone', async () => {
    const wh = new LakeWarehouse(freshRoot());
    try {
      const sql = 'SELECT list_sum(l[lo:hi]) AS mid, l[:i] AS at_i, list_sum([:a, :b]) AS ab FROM (SELECT [10, 20, 30] AS l, 2 AS lo, 3 AS hi) s';
      await wh.publish(write('t', 'k', { selects: [{ sql, bindings: { i: 2, a: 3, b: 4 } }] }));
      expect(await wh.query('SELECT mid, at_i, ab FROM t')).toEqual([{ mid: 50, at_i: 20, ab: 7 }]);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: SQL that fails while it runs (DuckDB then aborts the whole transaction)', () => {
  // A cast that fails on a row, not before the statement runs.
  const badCast = "SELECT CAST(v AS INTEGER) AS n FROM (VALUES ('x')) t(v)";

  it('in a batch, fails its own partition with its own error: those before it are committed, nothing after it is written', async () => {
    const wh = new LakeWarehouse(freshRoot());
    try {
      const { published, failed } = await wh.publishMany([
        write('orders', 'k1', { rows: [{ n: 1 }] }),
        write('orders', 'k2', { rows: [{ n: 2 }] }),
        write('orders', 'k3', { selects: [{ sql: badCast, bindings: {} }] }),
        write('orders', 'k4', { rows: [{ n: 4 }] }),
      ]);
      expect(published.map((p) => p.version)).toEqual([1, 1]);
      expect(failed?.index).toBe(2);
      expect(failed?.error).toBeInstanceOf(SqlError);
      expect(failed?.error.message).toMatch(/^Conversion Error: .* in SQL: SELECT CAST/);
      expect((await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r.status])).toEqual([
        ['k1', 'published'],
        ['k2', 'published'],
      ]);
      expect(await wh.query('SELECT n FROM orders ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    } finally {
      await wh.close();
    }
  });

  it("in a check, fails the publish naming the check's SQL and why, and writes nothing", async () => {
    const wh = new LakeWarehouse(freshRoot());
    try {
      const checks = [{ type: 'sql' as const, name: 'numeric countries', sql: 'SELECT * FROM {{this}} WHERE CAST(country AS INTEGER) > 0', severity: 'warn' as const }];
      const error = await rejection(wh.publish(write('orders', 'k1', { rows: [{ country: 'DE' }], checks })));
      expect(error).toBeInstanceOf(SqlError);
      expect(error.message).toMatch(/^a check's SQL failed while it ran \(Conversion Error: .*CAST\(country AS INTEGER\).*\), and the engine ended the publish's transaction with it, so nothing of orders k1 is written .*: fix the check's SQL/);
      expect(await wh.ledger({ node: 'orders' })).toEqual([]);
      // The lake goes on: the next publish commits.
      expect((await wh.publish(write('orders', 'k1', { rows: [{ country: 'DE' }] }))).version).toBe(1);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: the name of a partition that is gone', () => {
  const sales = (partition: string, n: number, more: Partial<PartitionWrite> = {}) => write('sales', partition, { runKey: `run-${n}`, backfillId: `bf-${n}`, rows: [{ n }], ...more });

  it('is free again once its only version, staged, is discarded: no file of it is left', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      await wh.publish(sales('US', 1, { stage: true }));
      const staged = await rejection(wh.publish(sales('us', 2)));
      expect(staged).toBeInstanceOf(InvalidDatasetError);
      expect(staged.message).toMatch(/from its partition 'US', which is not published now \(a version of it is staged/);
      expect(await wh.discardStaged({ runKey: 'run-1', backfillId: 'bf-1' })).toMatchObject({ versions: 1 });
      await wh.publish(sales('us', 3));
      expect(await wh.query('SELECT n FROM sales')).toEqual([{ n: 3 }]);
      expect(readdirSync(join(root, 'sales', '_versions')).sort()).toEqual(['us']);
      // Now us holds the name: US is refused, from this process and from one that opens the lake afresh.
      expect(await rejection(wh.publish(sales('US', 4)))).toBeInstanceOf(InvalidDatasetError);
    } finally {
      await wh.close();
    }
    const reopened = new LakeWarehouse(root);
    try {
      expect(await rejection(reopened.publish(sales('US', 5)))).toBeInstanceOf(InvalidDatasetError);
    } finally {
      await reopened.close();
    }
  });

  it('stays held while a version of it is published or staged; a restore keeps it', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      // A staged version discarded beside a published one: the published one holds the name.
      await wh.publish(sales('EU', 1));
      await wh.publish(sales('EU', 2, { stage: true }));
      await wh.discardStaged({ runKey: 'run-2', backfillId: 'bf-2' });
      expect(await rejection(wh.publish(sales('eu', 3)))).toBeInstanceOf(InvalidDatasetError);
      // Restored to its earlier version by a rollback: still published, it keeps the name.
      const { version } = await wh.publish(sales('EU', 4));
      expect(await wh.restore({ rollbackId: 'rb', backfillId: 'bf-4', node: 'sales', partition: 'EU', from: version, to: 1 })).toMatchObject({ status: 'restored' });
      expect(await rejection(wh.publish(sales('eu', 5)))).toBeInstanceOf(InvalidDatasetError);
      expect(await rejection(wh.publish(sales('Eu', 6, { stage: true })))).toBeInstanceOf(InvalidDatasetError);
    } finally {
      await wh.close();
    }
  });

  it('is free once a rollback removed the partition: a key differing only in case takes it, numbering its versions past the removed one\'s files, which stay for its history', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    const versions = join(root, 'sales', '_versions');
    /** Every version file, by the name a case-insensitive file system gives it. */
    const folded = () => readdirSync(versions, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.parquet')).map((f) => f.toLowerCase()).sort();
    try {
      await wh.publish(sales('US', 1));
      await wh.publish(sales('US', 2));
      expect(await wh.restore({ rollbackId: 'rb-2', backfillId: 'bf-2', node: 'sales', partition: 'US', from: 2, to: 1 })).toMatchObject({ status: 'restored' });
      expect(await wh.restore({ rollbackId: 'rb-1', backfillId: 'bf-1', node: 'sales', partition: 'US', from: 1, to: null })).toMatchObject({ status: 'removed' });
      expect(readdirSync(join(versions, 'US')).sort()).toEqual(['1.parquet', '2.parquet']);
      // A staged version of a key that differs only in case takes the name, as version 3.
      expect(await wh.publish(sales('us', 3, { stage: true }))).toMatchObject({ version: 3, staged: true });
      await wh.publishStaged({ runKey: 'run-3', backfillId: 'bf-3' });
      expect(await wh.query('SELECT n FROM sales')).toEqual([{ n: 3 }]);
      expect(readdirSync(join(root, 'sales')).filter((f) => f.endsWith('.parquet'))).toEqual(['us.parquet']);
      // No two version files would be one on a case-insensitive file system, and US's history still reads its own rows.
      expect(folded()).toEqual(['us/1.parquet', 'us/2.parquet', 'us/3.parquet']);
      expect(new Set(folded()).size).toBe(folded().length);
      expect((await wh.ledger({ node: 'sales', partition: 'US' })).map((r) => r.version)).toEqual([2, 1]);
      expect(await readDirectly(`SELECT n FROM read_parquet('${join(versions, 'US', '1.parquet')}')`)).toEqual([[1]]);
      // Now us holds it: US is refused, from this process and from one that opens the lake afresh. No restore
      // publishes US again either: a removed partition is on top of no version, so not even --force moves it.
      expect(await rejection(wh.publish(sales('US', 4)))).toBeInstanceOf(InvalidDatasetError);
      expect(await wh.restore({ rollbackId: 'rb-x', backfillId: 'bf-1', node: 'sales', partition: 'US', from: 1, to: 1, force: true })).toMatchObject({ status: 'already_restored', found: null });
      expect(await wh.query('SELECT n FROM sales')).toEqual([{ n: 3 }]);
    } finally {
      await wh.close();
    }
    const reopened = new LakeWarehouse(root);
    try {
      expect(await rejection(reopened.publish(sales('US', 5)))).toBeInstanceOf(InvalidDatasetError);
      // us removed in turn: US takes the name back, past every version of both.
      expect(await reopened.restore({ rollbackId: 'rb-3', backfillId: 'bf-3', node: 'sales', partition: 'us', from: 3, to: null })).toMatchObject({ status: 'removed' });
      expect(await reopened.publish(sales('US', 6))).toMatchObject({ version: 4 });
      expect(await reopened.query('SELECT n FROM sales')).toEqual([{ n: 6 }]);
      expect(folded()).toEqual(['us/1.parquet', 'us/2.parquet', 'us/3.parquet', 'us/4.parquet']);
    } finally {
      await reopened.close();
    }
  });
});

describe('lake: a partition key too long for a file name', () => {
  it('is refused before anything is written, naming the limit and the fix; the longest that fits publishes', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      // Each é is 6 bytes once encoded (%C3%A9): 42 of them and .parquet make a 260-byte name.
      const error = await rejection(wh.publish(write('orders', 'é'.repeat(42), { rows: [{ a: 1 }] })));
      expect(error).toBeInstanceOf(InvalidDatasetError);
      expect(error.message).toMatch(/^dataset 'orders': partition key 'é+' would name its file with 260 bytes .*at most 255 bytes.*other than an ASCII letter, a digit, -, = and _ \(but a leading _\) percent-encoded.*Give the partition a shorter key/);
      expect(await wh.ledger({ node: 'orders' })).toEqual([]);
      expect(existsSync(join(root, 'orders', '_versions'))).toBe(false);
      const longest = 'k'.repeat(247);
      expect(await wh.publish(write('orders', longest, { rows: [{ a: 1 }] }))).toMatchObject({ version: 1 });
      expect(existsSync(join(root, 'orders', `${longest}.parquet`))).toBe(true);
      expect((await rejection(wh.publish(write('orders', `${longest}k`, { rows: [{ a: 1 }] })))).message).toMatch(/with 256 bytes/);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: names Windows keeps for its devices', () => {
  it('are refused as a partition key (CON, nul, Com1, LPT9...: its files would be CON.parquet and _versions/CON), before anything is written', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      await wh.publish(write('sales', 'US', { rows: [{ n: 1 }] }));
      for (const key of ['CON', 'con', 'Nul', 'prn', 'AUX', 'COM1', 'com9', 'LPT1', 'lpt9', 'COM0', 'lPt0']) {
        const refused = await rejection(wh.publish(write('sales', key, { rows: [{ n: 2 }] })));
        expect(refused).toBeInstanceOf(InvalidDatasetError);
        expect(refused.message).toMatch(new RegExp(`^dataset 'sales': partition key '${key}' would name its files ${key}\\.parquet and _versions/${key}, and Windows keeps that name for a device .* Give the partition another key`));
      }
      expect(readdirSync(join(root, 'sales')).sort()).toEqual(['US.parquet', '_versions']);
      expect(readdirSync(join(root, 'sales', '_versions'))).toEqual(['US']);
      expect(new Set((await wh.ledger({ node: 'sales' })).map((r) => r.partition))).toEqual(new Set(['US']));
      // The layout encodes a dot and a space (so no file name ends in one, nor has the device's extension), and longer names are no device.
      const fine = ['CON.2024', 'nul.', 'x ', 'AUX ', 'CONSOLE', 'COM10', 'LPT1-a', 'com_1'];
      for (const [i, key] of fine.entries()) await wh.publish(write('sales', key, { rows: [{ n: 10 + i }] }));
      expect(readdirSync(join(root, 'sales')).filter((f) => f.endsWith('.parquet')).sort()).toEqual(
        ['AUX%20.parquet', 'COM10.parquet', 'CON%2E2024.parquet', 'CONSOLE.parquet', 'LPT1-a.parquet', 'US.parquet', 'com_1.parquet', 'nul%2E.parquet', 'x%20.parquet'],
      );
      expect(await wh.query('SELECT COUNT(*) AS n FROM sales')).toEqual([{ n: 9 }]);
    } finally {
      await wh.close();
    }
  });

  it('are refused as a new dataset\'s name (con, nul, com1: its directory would be <lake>/con), before anything is written', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      for (const node of ['con', 'nul', 'prn', 'aux', 'com1', 'lpt9']) {
        const refused = await rejection(wh.publish(write(node, '2024-01-01', { rows: [{ n: 1 }] })));
        expect(refused).toBeInstanceOf(InvalidDatasetError);
        expect(refused.message).toMatch(new RegExp(`^dataset '${node}' would name the lake's directory ${node}, and Windows keeps that name for a device .* rename the node`));
        expect(existsSync(join(root, node))).toBe(false);
      }
      // Names that only start like one are fine.
      await wh.publish(write('console', '2024-01-01', { rows: [{ n: 1 }] }));
      await wh.publish(write('com10', '2024-01-01', { rows: [{ n: 1 }] }));
      expect(await wh.query('SELECT n FROM console')).toEqual([{ n: 1 }]);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: several processes', () => {
  it('publish to one lake at once: every publish lands, versions of one partition are numbered in turn, and the files follow the pointers', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    const publisher = join(import.meta.dirname, '..', 'lake', 'publisher.ts');
    const days = (from: number) => Array.from({ length: 8 }, (_, i) => `2024-01-${String(from + i).padStart(2, '0')}`);
    try {
      // This process holds the catalogue first, so the others must wait for it to let go.
      await wh.publish(write('orders', '2024-02-01', { runKey: 'here', rows: [{ partition: '2024-02-01', writer: 'here', pid: process.pid }] }));
      const run = promisify(execFile);
      const others = ['a', 'b'].map((key, i) => run(process.execPath, ['--import', 'tsx', publisher, root, `run-${key}`, ...days(1 + i * 8), 'shared'], { timeout: 120_000 }));
      for (const day of days(17)) await wh.publish(write('orders', day, { runKey: 'here', rows: [{ partition: day, writer: 'here', pid: process.pid }] }));
      await Promise.all(others);

      const ledger = await wh.ledger({ node: 'orders' });
      expect(ledger.filter((r) => r.status === 'published')).toHaveLength(27);
      const shared = ledger.filter((r) => r.partition === 'shared');
      expect(shared.map((r) => r.version).sort()).toEqual([1, 2]);
      expect(new Set(shared.map((r) => r.runKey))).toEqual(new Set(['run-a', 'run-b']));
      const published = await wh.publishedRows('orders');
      expect(published).toHaveLength(26);
      expect(await wh.query('SELECT COUNT(*) AS n, COUNT(DISTINCT pid) AS writers FROM orders')).toEqual([{ n: 26, writers: 3 }]);
      const latest = shared.find((r) => r.version === 2)!;
      expect(await readDirectly(`SELECT writer FROM read_parquet('${root}/orders/shared.parquet')`)).toEqual([[latest.runKey]]);
      expect(readdirSync(join(root, 'orders')).filter((f) => f.endsWith('.parquet'))).toHaveLength(26);
    } finally {
      await wh.close();
    }
    // Three processes start and take turns: a few seconds, more on a busy machine.
  }, 120_000);
});

describe('lake: values', () => {
  it('whole numbers beyond 64 bits, in rows and in bindings, are the doubles they are', async () => {
    const wh = new LakeWarehouse(freshRoot());
    try {
      await wh.publish(write('big', 'k', { rows: [{ n: 1e21 }, { n: 2 ** 60 }, { n: 1 }] }));
      expect(await wh.query('SELECT n FROM big ORDER BY n')).toEqual([{ n: 1 }, { n: 2 ** 60 }, { n: 1e21 }]);
      expect(await wh.query('SELECT COUNT(*) AS c FROM big WHERE n >= :min', { min: 1e21 })).toEqual([{ c: 1 }]);
    } finally {
      await wh.close();
    }
  });

  it('integers wider than 64 bits (bigints, SQL sums) keep every digit in the files, for the view and any Parquet reader; beyond 38 digits a publish says what to do', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      await wh.publish(write('ids', 'k', { rows: [{ id: 1234567890123456789n }, { id: 2n ** 100n }] }));
      await wh.publish(write('sums', 'k', { selects: [{ sql: 'SELECT SUM(x) AS total FROM (SELECT 9007199254740993 AS x UNION ALL SELECT 0) t', bindings: {} }] }));
      expect(await wh.query('SELECT id FROM ids ORDER BY id')).toEqual([{ id: '1234567890123456789' }, { id: '1267650600228229401496703205376' }]);
      expect(await wh.query('SELECT total FROM sums')).toEqual([{ total: '9007199254740993' }]);
      expect(await readDirectly(`SELECT CAST(total AS VARCHAR) FROM read_parquet('${root}/sums/*.parquet')`)).toEqual([['9007199254740993']]);
      const tooWide = await rejection(wh.publish(write('ids', 'k2', { rows: [{ id: 2n ** 127n - 1n }] })));
      expect(tooWide).toBeInstanceOf(SqlError);
      expect(tooWide.message).toMatch(/ids k2: a whole number has more than the 38 digits .* give it as a double or as text/);
      expect(await wh.ledger({ node: 'ids', partition: 'k2' })).toEqual([]);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: times with a time zone', () => {
  it('read back as they were written, with their offsets, staged and from the files, in checks, the view and a downstream partition; a restore to a version that holds one verifies', async () => {
    const root = freshRoot();
    const wh = new LakeWarehouse(root);
    try {
      const sql = "SELECT '05:00:01+02'::TIMETZ AS early, '23:30:00-01'::TIMETZ AS late, ['10:00:00+05:30'::TIMETZ] AS list";
      const as = { type: 'sql', name: 'as written', sql: "SELECT * FROM {{this}} WHERE early <> '05:00:01+02'::TIMETZ OR late <> '23:30:00-01'::TIMETZ" } as const;
      const first = await wh.publish(write('times', 'k', { selects: [{ sql, bindings: {} }], checks: [as] }));
      const written = { early: '05:00:01+02', late: '23:30:00-01', list: '[10:00:00+05:30]' };
      expect(await wh.query('SELECT early, late, list FROM times')).toEqual([written]);
      expect(await wh.query("SELECT COUNT(*) AS n FROM times WHERE early = '05:00:01+02'::TIMETZ AND list[1] = '10:00:00+05:30'::TIMETZ")).toEqual([{ n: 1 }]);
      expect(await wh.query('SELECT typeof(early) AS t, typeof(list) AS l FROM times')).toEqual([{ t: 'TIME WITH TIME ZONE', l: 'TIME WITH TIME ZONE[]' }]);
      // A downstream partition reads the pinned version's file; the previous version is read from its file by a check.
      const inputs = [{ node: 'times', from: 'k', to: 'k' }];
      await wh.publish(write('later', 'k', { selects: [{ sql: "SELECT early + INTERVAL 1 HOUR AS t FROM times WHERE early = '05:00:01+02'::TIMETZ", bindings: {} }], inputs }));
      expect(await wh.query('SELECT t FROM later')).toEqual([{ t: '06:00:01+02' }]);
      const same = { type: 'sql', name: 'unchanged', sql: 'SELECT * FROM {{this}} t WHERE NOT EXISTS (SELECT 1 FROM {{previous}} p WHERE p.early = t.early)' } as const;
      await wh.publish(write('times', 'k', { runKey: 'run-2', backfillId: 'bf-2', selects: [{ sql, bindings: {} }], checks: [same] }));
      // Any Parquet reader finds the offset in the file, as text.
      expect(await readDirectly(`SELECT early FROM read_parquet('${root}/times/k.parquet')`)).toEqual([['05:00:01+02']]);
      await wh.publish(write('times', 'k', { runKey: 'run-3', backfillId: 'bf-3', rows: [] }));
      expect(await wh.restore({ rollbackId: 'rb', backfillId: 'bf-3', node: 'times', partition: 'k', from: 3, to: 1, force: true })).toMatchObject({ status: 'restored' });
      expect((await wh.publishedRows('times')).map((r) => r.checksum)).toEqual([first.checksum]);
      expect(await wh.query('SELECT early, late, list FROM times')).toEqual([written]);
    } finally {
      await wh.close();
    }
  });

  it('a version written before they kept their offsets (its file holds them in UTC, its checksum was taken so) still reads as it did, and a restore to it verifies', async () => {
    const root = freshRoot();
    const layout = new LakeLayout(root);
    const wh = new LakeWarehouse(root);
    try {
      await wh.publish(write('times', 'k', { selects: [{ sql: "SELECT '05:00:01+02'::TIMETZ AS early", bindings: {} }] }));
      await wh.close();
      // As the lake wrote it before: the time in the file's TIME (UTC), the checksum over that.
      const file = layout.version('times', 'k', 1);
      chmodSync(file, 0o644);
      await readDirectly(`COPY (SELECT * REPLACE (CAST(early AS TIMETZ) AS early) FROM read_parquet('${file}')) TO '${file}.old' (FORMAT parquet)`);
      renameSync(`${file}.old`, file);
      const hasher = new RowHasher(['early'], ['text']);
      hasher.add(['03:00:01+00']);
      await lakeRawAccess(root).exec(`UPDATE lake.backfill.ledger SET checksum = '${hasher.checksum()}' WHERE node = 'times' AND version = 1`);
      expect(await readDirectly(`SELECT typeof(early) FROM read_parquet('${file}')`)).toEqual([['TIME WITH TIME ZONE']]);

      await wh.publish(write('times', 'k', { runKey: 'run-2', backfillId: 'bf-2', selects: [{ sql: "SELECT '07:00:00+02'::TIMETZ AS early", bindings: {} }] }));
      expect(await wh.query('SELECT early FROM times')).toEqual([{ early: '07:00:00+02' }]);
      expect(await wh.restore({ rollbackId: 'rb', backfillId: 'bf-2', node: 'times', partition: 'k', from: 2, to: 1 })).toMatchObject({ status: 'restored' });
      expect(await wh.query('SELECT early FROM times')).toEqual([{ early: '03:00:01+00' }]);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: spec SQL stays inside the lake', () => {
  const outside = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    'SELECT * FROM "/etc/passwd"',
    "WITH x AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM x",
    "SELECT (SELECT content FROM read_text('/etc/passwd')) AS c",
    "SELECT * FROM orders, LATERAL (SELECT * FROM read_blob('/etc/passwd'))",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
    "SELECT * FROM query_table('/etc/passwd')",
  ];

  it('cannot read /etc/passwd (or any file) by any name, in a query, a node\'s SQL or a check', async () => {
    const wh = new LakeWarehouse(freshRoot());
    try {
      await wh.publish(write('orders', 'k', { rows: [{ id: 1 }] }));
      for (const sql of outside) {
        const queried = await rejection(wh.query(sql));
        expect(queried, sql).toBeInstanceOf(SqlError);
        expect(queried.message, sql).not.toMatch(/root:/);
        expect(await rejection(wh.publish(write('copied', 'k', { selects: [{ sql, bindings: {} }] }))), sql).toBeInstanceOf(SqlError);
        const check = { type: 'sql', name: 'peek', sql: `SELECT * FROM {{this}} WHERE EXISTS (${sql})` } as const;
        expect(await rejection(wh.publish(write('checked', 'k', { rows: [{ id: 1 }], checks: [check] }))), sql).toBeInstanceOf(SqlError);
      }
      expect(await wh.ledger({ node: 'copied' })).toEqual([]);
      expect(existsSync(join(wh.location, 'copied'))).toBe(false);
    } finally {
      await wh.close();
    }
  });

  it('and below the door, the engine itself reads and writes nothing outside the lake, and its settings are locked', async () => {
    const wh = new LakeWarehouse(freshRoot());
    try {
      await wh.publish(write('orders', 'k', { rows: [{ id: 1 }] }));
      const connection = await wh.lake.connection();
      const refused = async (sql: string) => (await rejection(connection.run(sql))).message;
      expect(await refused("SELECT * FROM read_csv('/etc/passwd')")).toMatch(/Permission Error/);
      expect(await refused(`SELECT * FROM read_csv('${wh.location}/../../../etc/passwd')`)).toMatch(/Permission Error/);
      expect(await refused(`COPY (SELECT 1 AS a) TO '${join(wh.location, '..', 'out.csv')}'`)).toMatch(/Permission Error/);
      expect(await refused(`ATTACH '${join(wh.location, '..', 'other.duckdb')}' AS other`)).toMatch(/Permission Error/);
      expect(await refused('LOAD httpfs')).toMatch(/disabled/);
      for (const setting of ['SET enable_external_access = true', "SET allowed_directories = ['/']", "SET allowed_paths = ['/etc/passwd']", 'SET lock_configuration = false', 'RESET lock_configuration']) {
        expect(await refused(setting), setting).toMatch(/configuration has been locked/);
      }
      expect(existsSync(join(wh.location, '..', 'out.csv'))).toBe(false);
    } finally {
      await wh.close();
    }
  });
});

describe('lake: an adapter built from the kit alone', () => {
  it("imports nothing of backfill but the public entry durable-backfill/warehouse (and its own modules, Node's and DuckDB's)", () => {
    const dir = join(import.meta.dirname, '..', '..', 'activities', 'warehouse', 'lake');
    const sources = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(sources).toContain('adapter.ts');
    for (const file of sources) {
      const text = readFileSync(join(dir, file), 'utf8');
      const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!);
      expect(specifiers.length, file).toBeGreaterThan(0);
      for (const specifier of specifiers) {
        expect(specifier.startsWith('node:') || specifier === '@duckdb/node-api' || specifier === '../../../warehouse.ts' || /^\.\/[\w-]+\.ts$/.test(specifier), `${file} imports ${specifier}`).toBe(true);
      }
    }
  });

  it('is registered for lake: by default, and opens without loading DuckDB until its first call', async () => {
    const root = freshRoot();
    const warehouse = openWarehouse(`lake://${root}`, { inline: true });
    expect(warehouse).not.toBeInstanceOf(LakeWarehouse);
    expect([warehouse.kind, warehouse.location]).toEqual(['lake', root]);
    expect(existsSync(root)).toBe(false);
    await warehouse.close();
    expect(existsSync(root)).toBe(false);
    expect(() => openWarehouse('lake:', { inline: true })).toThrow(/names no directory: use lake:\/\/\/absolute\/path/);
  });
});

describe('lake: a reader (lineage, diff, report, rollback --dry-run, --only-changed)', () => {
  /** Every file and directory of the lake, with each file's bytes' hash. */
  const tree = (root: string): Record<string, string> =>
    Object.fromEntries(
      readdirSync(root, { recursive: true, withFileTypes: true }).map((entry) => {
        const path = join(entry.parentPath, entry.name);
        return [path.slice(root.length), entry.isFile() ? createHash('sha256').update(readFileSync(path)).digest('hex') : 'directory'];
      }),
    );

  it('reads the catalogue as it is: it creates, changes and moves nothing in the lake, and refuses writes', async () => {
    const root = await lakeWithLedger();
    const before = tree(root);
    expect(Object.keys(before)).toContain('/_backfill/catalog.duckdb');
    const reader = await openExistingWarehouse(`lake://${root}`, 'diff');
    try {
      await readAsReaders(reader);
    } finally {
      await reader.close();
    }
    expect(tree(root)).toEqual(before);
  });

  it('attached again after a writer changed a dataset, reads the dataset as it is now, not as it was at its first attach', async () => {
    const root = freshRoot();
    const writer = new LakeWarehouse(root);
    const reader = new LakeWarehouse(root, { readOnly: true });
    const inputs = [{ node: 'orders', from: 'k1', to: 'k2' }];
    try {
      await writer.publish(write('orders', 'k1', { rows: [{ a: 1 }] }));
      await writer.lake.hold.release();
      expect(await reader.query('SELECT a FROM orders', {}, await reader.pin(inputs))).toEqual([{ a: 1 }]);
      await reader.lake.hold.release();
      // The writer adds a column; the reader attaches the catalogue again.
      await writer.publish(write('orders', 'k2', { rows: [{ a: 2, b: 'x' }] }));
      await writer.lake.hold.release();
      expect(await reader.query('SELECT a, b FROM orders ORDER BY a', {}, await reader.pin(inputs))).toEqual([
        { a: 1, b: null },
        { a: 2, b: 'x' },
      ]);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('while a worker holds the catalogue, reads a copy of it made outside the lake: it leaves no waiting marker, every file of the lake is unchanged, and the worker keeps the catalogue', async () => {
    const root = await lakeWithLedger();
    const holder = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'lake', 'holder.ts'), root], { stdio: ['pipe', 'pipe', 'inherit'] });
    let said = '';
    holder.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => holder.on('exit', resolve));
    try {
      await vi.waitFor(() => expect(said).toContain('holding true'), { timeout: 30_000, interval: 50 });
      const before = tree(root);
      // The holder's committed work is in the catalogue's write-ahead log: the copy reads it too.
      expect(Object.keys(before)).toContain('/_backfill/catalog.duckdb.wal');
      const copies = () => readdirSync(tmpdir()).filter((f) => f.startsWith(`backfill-lake-reader-${process.pid}-`));
      await readersReadAt(`lake://${root}`);
      expect(tree(root)).toEqual(before);
      expect(existsSync(join(root, '_backfill', 'waiting'))).toBe(false);
      expect(copies()).toEqual([]);
    } finally {
      holder.stdin.end();
    }
    expect(await exited).toBe(0);
    expect(said).toBe('holding true\nstill holding true\n');
  }, 60_000);
});
