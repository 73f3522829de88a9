/**
 * The `claimSignature` warehouse activity on a real SQLite file: the holder as the warehouse
 * answers it, a worker on another warehouse than a resumed backfill's refused for good, and an
 * adapter that keeps no claims said to keep none (the workflow then judges by the runs listed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarehouseActivities } from '../../activities/warehouse-activities.ts';
import { deferredWarehouse } from '../../activities/warehouse/deferred.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import { rejection } from '../warehouse/suite.ts';

const dirs: string[] = [];
const opened: Warehouse[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((w) => w.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sqlite(): SqliteWarehouse {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-claim-'));
  dirs.push(dir);
  const warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
  opened.push(warehouse);
  return warehouse;
}

const claim = { key: 'sha256:abc', backfillId: 'bf', workflowId: 'backfill/bf', runId: 'run-1' };

describe('the claimSignature activity', () => {
  it("answers the run that holds the signature, on the backfill's own warehouse", async () => {
    const warehouse = sqlite();
    const activities = createWarehouseActivities({ warehouse });
    const first = await activities.claimSignature({ ...claim, warehouseId: await warehouse.identity() });
    expect(first).toMatchObject({ claimed: true, holder: { workflowId: 'backfill/bf', runId: 'run-1' }, mine: true });
    expect(await activities.claimSignature(claim)).toEqual(first);
    expect(await activities.claimSignature({ ...claim, runId: 'run-2' })).toEqual({ ...first, mine: false });
  });

  it("refuses for good on a worker of another warehouse than a resumed backfill's, and records nothing there", async () => {
    const warehouse = sqlite();
    const activities = createWarehouseActivities({ warehouse });
    const error = await rejection(activities.claimSignature({ ...claim, warehouseId: 'the-one-it-started-on' }));
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'WrongWarehouse', nonRetryable: true, message: expect.stringContaining("not the backfill's (identity the-one-it-started-on)") });
    // Nothing was claimed: the next claim there is the first.
    expect(await activities.claimSignature({ ...claim, runId: 'run-9' })).toMatchObject({ holder: { runId: 'run-9' } });
  });

  it('says an adapter keeps no claims (no claimSignature), also behind a deferred warehouse', async () => {
    const real = sqlite();
    // An adapter's warehouse of the methods this activity calls, without claimSignature (its other methods are never reached).
    const without = { kind: real.kind, location: real.location, identity: () => real.identity(), close: async () => undefined } as Partial<Warehouse> as Warehouse;
    expect(await createWarehouseActivities({ warehouse: without }).claimSignature(claim)).toEqual({ claimed: false, unsupported: `the warehouse ${real.location} (sqlite) keeps no signature claims` });
    const deferred = deferredWarehouse({ kind: 'kit', location: real.location }, async () => without);
    expect(await createWarehouseActivities({ warehouse: deferred }).claimSignature(claim)).toEqual({
      claimed: false,
      unsupported: `the warehouse ${real.location} keeps no signature claims (its adapter has no claimSignature)`,
    });
  });
});
