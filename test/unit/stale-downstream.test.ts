/** What a rollback leaves stale downstream, on SQLite (test/integration/warehouse-postgres.test.ts runs it on PostgreSQL). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'vitest';
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
