/**
 * A lake read without backfill: DuckDB for Python (from PyPI, in the tests' venv) reads the
 * published Parquet files of a dataset and recomputes each partition's checksum by the rule the
 * ledger states, and both must be what backfill says.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LakeWarehouse } from '../../activities/warehouse/lake/lake-dialect.ts';
import type { Row } from '../../activities/warehouse/types.ts';
import { PACKAGE_ROOT } from '../../host/package.ts';
import { run, venvPython } from '../python-venv.ts';
import { write } from '../warehouse/suite.ts';
import { scratch } from './helpers.ts';

// Another release than the one backfill writes with (@duckdb/node-api 1.5): the files are plain Parquet.
const DUCKDB_PYTHON_VERSION = '2.0.1';
const READ_PUBLISHED = join(PACKAGE_ROOT, 'test', 'lake', 'read_published.py');

type Read = { duckdb: string; rows: Row[]; partitions: Array<{ partition: string; version: number | null; rowCount: number; checksum: string }> };

/** What DuckDB for Python reads of a published dataset (read_published.py). */
export async function readWithPython(root: string, node: string): Promise<Read> {
  const python = await venvPython({ duckdb: DUCKDB_PYTHON_VERSION });
  const { stdout } = await run(python, [READ_PUBLISHED, root, node], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as Read;
}

const byKey = (a: Row, b: Row) => JSON.stringify(a).localeCompare(JSON.stringify(b));

describe('a lake read by a Parquet reader that is not backfill', () => {
  it('DuckDB for Python reads the published rows, and recomputes every published partition\'s checksum, as the ledger has them', async () => {
    const root = join(scratch('lake-python'), 'lake');
    const wh = new LakeWarehouse(root);
    try {
      // Values of every kind a transform returns, a column that widens, one added later, NULLs and awkward text.
      await wh.publish(write('orders', '2024-01-01', { runKey: 'r1', rows: [
        { id: 1, amount: 10.5, country: 'DE', paid: true, note: 'Zürich "HQ"\nline two' },
        { id: 2, amount: 20, country: 'FR', paid: false, note: null },
        { id: 3, amount: 1e21, country: 'DE', paid: null, note: '' },
      ] }));
      await wh.publish(write('orders', '2024-01-02', { runKey: 'r1', rows: [{ id: 4, amount: 0.1, country: 'NL', paid: true, note: 'emoji 🦆' }] }));
      await wh.publish(write('orders', '2024-01-03', { runKey: 'r1', rows: [{ id: 5, amount: 1.5e-7, country: 'DE', paid: false, note: 'tab\there' }] }));
      // A second run republishes one day with a new column, and another that is rolled back.
      await wh.publish(write('orders', '2024-01-02', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 40, amount: 40, country: 'NL', paid: true, note: 'v2', channel: 'web' }] }));
      await wh.publish(write('orders', '2024-01-03', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 50, amount: 50, country: 'DE', paid: true, note: 'rolled back' }] }));
      await wh.restore({ rollbackId: 'rb-1', backfillId: 'bf-2', node: 'orders', partition: '2024-01-03', from: 2, to: 1 });
      // A dataset made by SQL over its upstream: the types DuckDB gives (BIGINT counts, DOUBLE sums).
      await wh.publish(write('daily', '2024-01-01', { runKey: 'r1', selects: [{
        sql: 'SELECT country, COUNT(*) AS orders, SUM(amount) AS revenue, BOOL_AND(paid) AS all_paid FROM orders GROUP BY country',
        bindings: {},
      }], inputs: [{ node: 'orders', from: '2024-01-01', to: '2024-01-03' }] }));

      for (const node of ['orders', 'daily']) {
        const read = await readWithPython(root, node);
        expect(read.duckdb).toBe(DUCKDB_PYTHON_VERSION);
        const ledger = await wh.publishedRows(node);
        expect(ledger.length).toBeGreaterThan(0);
        expect(read.partitions, node).toEqual(ledger.map((r) => ({ partition: r.partition, version: r.version, rowCount: r.rowCount, checksum: r.checksum })));
        expect([...read.rows].sort(byKey), node).toEqual([...(await wh.query(`SELECT * FROM ${node}`))].sort(byKey));
      }
      const orders = await readWithPython(root, 'orders');
      // The published versions, not the latest: day 2 from the second run, day 3 rolled back to the first.
      expect(orders.partitions.map((p) => [p.partition, p.version])).toEqual([['2024-01-01', 1], ['2024-01-02', 2], ['2024-01-03', 1]]);
      expect(orders.rows.map((r) => r.id).sort((a, b) => Number(a) - Number(b))).toEqual([1, 2, 3, 5, 40]);
      expect(orders.rows.find((r) => r.id === 1)).toEqual({ id: 1, amount: 10.5, country: 'DE', paid: true, note: 'Zürich "HQ"\nline two', channel: null });
    } finally {
      await wh.close();
    }
  });
});
