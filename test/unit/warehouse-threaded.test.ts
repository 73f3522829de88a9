/** The warehouse on its own thread: the same answers and errors as on the caller's thread. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ThreadedWarehouse } from '../../activities/warehouse/sqlite/threaded.ts';
import { CheckFailedError, ChecksumMismatchError, SqlError, type PartitionWrite } from '../../activities/warehouse/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'backfill-threaded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const write = (partition: string, rows: PartitionWrite['data']['rows'], checks: PartitionWrite['checks'] = []): PartitionWrite => ({
  node: 'events',
  partition,
  backfillId: 'b',
  runKey: 'r',
  workflowId: 'w',
  data: { rows, selects: [] },
  checks,
  transform: 't',
  params: {},
  codeVersion: 'c',
  inputs: [],
  attempt: 1,
  startedAt: Date.UTC(2024, 0, 1),
});

describe('ThreadedWarehouse', () => {
  it('publishes, reads and reports errors with their types', async () => {
    const warehouse = new ThreadedWarehouse(join(dir, 'warehouse.db'));
    try {
      expect(await warehouse.publish(write('2024-01-01', [{ a: 1 }, { a: 2 }]))).toMatchObject({ version: 1, rowCount: 2 });
      expect(await warehouse.query('SELECT a FROM events ORDER BY a')).toEqual([{ a: 1 }, { a: 2 }]);
      expect((await warehouse.ledger({ node: 'events' }))[0]).toMatchObject({ partition: '2024-01-01', status: 'published', current: true });
      expect((await warehouse.publishedRows('events')).map((r) => r.partition)).toEqual(['2024-01-01']);
      expect((await warehouse.ledgerVersions('events', [['2024-01-01', 1]])).map((r) => r.version)).toEqual([1]);
      expect(await warehouse.lineageDataset('events')).toMatchObject({ name: 'main.events', fields: [{ name: 'a' }] });
      const failed = await warehouse.publish(write('2024-01-02', [{ a: null }], [{ type: 'not_null', columns: ['a'] }])).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(CheckFailedError);
      expect((failed as Error).message).toMatch(/1 rows have a NULL/);
      const bad = await warehouse.query('SELEC 1').catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(SqlError);
      const batch = await warehouse.publishMany([write('2024-01-03', [{ a: 3 }]), write('2024-01-04', [{ a: null }], [{ type: 'not_null', columns: ['a'] }])]);
      expect(batch.published.map((p) => p.version)).toEqual([1]);
      expect(batch.failed?.index).toBe(1);
      expect(batch.failed?.error).toBeInstanceOf(CheckFailedError);
    } finally {
      await warehouse.close();
    }
    await expect(warehouse.query('SELECT 1')).rejects.toThrow(/closed/);
  });

  it('forwards the rollback primitives, and their errors with their types', async () => {
    const path = join(dir, 'rollback.db');
    const warehouse = new ThreadedWarehouse(path);
    try {
      await warehouse.publish(write('2024-01-01', [{ a: 1 }]));
      await warehouse.publish({ ...write('2024-01-01', [{ a: 2 }]), backfillId: 'b2', runKey: 'r2' });
      await warehouse.publish({ ...write('2024-01-02', [{ a: 3 }]), backfillId: 'b2', runKey: 'r2' });
      const page = await warehouse.changesBy('b2', { limit: 1 });
      expect(page).toMatchObject({ changes: [{ partition: '2024-01-01', version: 2, previousVersion: 1 }], next: { node: 'events', partition: '2024-01-01' } });
      const request = { rollbackId: 'rb', backfillId: 'b2', node: 'events', partition: '2024-01-01', from: 2, to: 1 };
      expect(await warehouse.restore(request)).toMatchObject({ status: 'restored' });
      expect(await warehouse.rollbacks({ rollbackId: 'rb' })).toHaveLength(1);
      const db = new Database(path);
      db.exec(`UPDATE events__versions SET a = 99 WHERE __partition = '2024-01-01' AND __version = 1`);
      db.close();
      // Version 2 is intact: restoring it works; version 1 was changed behind the ledger's back: restoring it fails.
      expect(await warehouse.restore({ ...request, rollbackId: 'rb-2', from: 1, to: 2 })).toMatchObject({ status: 'restored', to: 2 });
      const tampered = await warehouse.restore({ ...request, rollbackId: 'rb-3', from: 2, to: 1 }).catch((e: unknown) => e);
      expect(tampered).toBeInstanceOf(ChecksumMismatchError);
    } finally {
      await warehouse.close();
    }
  });

  it('answers calls one at a time: concurrent publishes and reads do not interleave their transactions', async () => {
    const warehouse = new ThreadedWarehouse(join(dir, 'concurrent.db'));
    try {
      const days = Array.from({ length: 20 }, (_, i) => `2024-02-${String(i + 1).padStart(2, '0')}`);
      const calls = days.flatMap((day, i) => [
        warehouse.publish({ ...write(day, [{ a: i }, { a: i + 100 }], [{ type: 'unique', columns: ['a'] }]), inputs: [{ node: 'events', from: days[0]!, to: day }] }),
        warehouse.query('SELECT COUNT(*) AS n FROM events'),
        warehouse.acquireDatasets({ backfillId: 'b', runKey: 'r', nodes: ['events'] }),
      ]);
      await Promise.all(calls);
      expect((await warehouse.ledger({ node: 'events' })).map((r) => [r.status, r.version])).toEqual(days.map(() => ['published', 1]));
      expect(await warehouse.query('SELECT COUNT(*) AS n FROM events')).toEqual([{ n: 40 }]);
    } finally {
      await warehouse.close();
    }
  });

  it('fails every call with a clear error when the file cannot be opened', async () => {
    const blocker = join(dir, 'not-a-directory');
    writeFileSync(blocker, 'x');
    const warehouse = new ThreadedWarehouse(join(blocker, 'warehouse.db'));
    await expect(warehouse.query('SELECT 1')).rejects.toThrow(/not-a-directory/);
    await expect(warehouse.ledger({})).rejects.toThrow(/not-a-directory/);
    await warehouse.close();
  });
});
