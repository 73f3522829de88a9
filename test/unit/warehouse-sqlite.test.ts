/** The warehouse contract on SQLite, and what is SQLite's own. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/warehouse.ts';
import { warehouseSuite, write } from '../warehouse/suite.ts';

warehouseSuite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-warehouse-'));
  const warehouse = new SqliteWarehouse(join(dir, 'nested', 'warehouse.db'));
  return {
    warehouse,
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

  it('stores booleans as 0/1, objects as JSON, and a column typed by its first non-null value', async () => {
    const wh = open();
    await wh.publish(write('t', 'k', { rows: [{ flag: true, meta: { a: [1] }, n: null }, { flag: false, meta: null, n: 2.5 }] }));
    expect(await wh.query('SELECT flag, meta, n, typeof(n) AS nt FROM t ORDER BY flag')).toEqual([
      { flag: 0, meta: null, n: 2.5, nt: 'real' },
      { flag: 1, meta: '{"a":[1]}', n: null, nt: 'null' },
    ]);
    await wh.close();
  });

  it('keeps the ledger in backfill_ledger and the published pointers in backfill_partitions', async () => {
    const wh = open();
    await wh.publish(write('orders', 'k', { rows: [{ a: 1 }] }));
    expect(await wh.query('SELECT node, partition, version FROM backfill_partitions')).toEqual([{ node: 'orders', partition: 'k', version: 1 }]);
    expect(await wh.query('SELECT COUNT(*) AS n FROM backfill_ledger')).toEqual([{ n: 1 }]);
    await wh.close();
  });
});
