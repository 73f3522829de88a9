/** What a rollback leaves stale downstream, on SQLite (test/integration/warehouse-postgres.test.ts runs it on PostgreSQL). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { LedgerRow } from '../../activities/warehouse/types.ts';
import { renderDownstream } from '../../client/render-rollback.ts';
import { staleDownstream } from '../../client/stale-downstream.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { staleDownstreamCase } from './stale-downstream-case.ts';

describe('staleDownstream (sqlite)', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('counts the downstream partitions whose published version read a version the rollback took off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-stale-'));
    dirs.push(dir);
    const wh = new SqliteWarehouse(join(dir, 'warehouse.db'));
    try {
      await staleDownstreamCase(wh);
    } finally {
      await wh.close();
    }
  });
});

describe('staleDownstream: a partition that read over 100 upstream partitions', () => {
  // Its ledger row keeps a digest of what it read, not each version: a replaced partition within its range may have been read.
  const row = (partition: string, inputs: LedgerRow['inputs']) => ({ node: 'monthly', partition, version: 1, inputs }) as unknown as LedgerRow;
  const digest = (from: string, to: string) => ({ node: 'hourly', from, to, partitions: 744, digest: 'sha256:…' });
  const warehouse = {
    ledgerNodes: async () => [{ node: 'monthly', partitions: 3, first: '2024-01', last: '2024-03' }],
    publishedRows: async () => [
      row('2024-01', [digest('2024-01-01T00', '2024-01-31T23')]),
      row('2024-02', [digest('2024-02-01T00', '2024-02-29T23')]),
      row('2024-03', [{ node: 'hourly', from: '2024-03-01T00', to: '2024-03-01T01', partitions: 2, versions: { '2024-03-01T00': 4, '2024-03-01T01': 4 }, digest: 'sha256:…' }]),
    ],
  };

  it('is counted as one that may have read a replaced version, apart from those the ledger lists', async () => {
    const stale = await staleDownstream(warehouse, [
      { node: 'hourly', partition: '2024-02-10T05', version: 3 },
      { node: 'hourly', partition: '2024-03-01T01', version: 4 },
    ]);
    expect(stale).toEqual([{ node: 'monthly', partitions: 1, examples: ['2024-03'], maybe: 1 }]);
    expect(renderDownstream(stale, true).map(stripVTControlCharacters)[0]).toBe(
      '  downstream:       1 partition of monthly was computed from versions this rollback would replace (e.g. 2024-03); 1 partition more reads over 100 partitions upstream, a range that holds versions it would replace (the ledger keeps a digest of its inputs, not each version): it may have been computed from them; left as they are',
    );
    // The range's ends count (both are partitions read).
    expect(await staleDownstream(warehouse, [{ node: 'hourly', partition: '2024-01-31T23', version: 2 }, { node: 'hourly', partition: '2024-02-01T00', version: 2 }])).toEqual([{ node: 'monthly', partitions: 0, examples: [], maybe: 2 }]);
    // Nothing replaced within any range read: nothing said.
    expect(await staleDownstream(warehouse, [{ node: 'hourly', partition: '2024-04-01T00', version: 1 }])).toEqual([]);
  });
});
