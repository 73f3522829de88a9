/**
 * Readers of the warehouse (`--only-changed`, `lineage`, `diff`) refuse a location where no
 * warehouse is, naming it, instead of creating an empty SQLite file and answering from it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli as cli } from './run-cli.ts';
import { openWarehouse } from '../../activities/warehouse/index.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { onlyChanged } from '../../client/only-changed.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import { expandPlan } from '../../core/plan.ts';

const EXAMPLE = new URL('../../examples/shop/backfill.yaml', import.meta.url).pathname;

let dir: string;
let typo: string;
let real: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-existing-warehouse-'));
  typo = join(dir, 'typo.db');
  real = join(dir, 'warehouse.db');
  await openWarehouse(real, { inline: true }).close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('a reader of a warehouse that is not there', () => {
  it('--only-changed refuses, names the location and the first-run case, and creates nothing', async () => {
    const { spec } = await loadSpecFile(EXAMPLE);
    const plan = expandPlan(spec, {});
    await expect(onlyChanged(plan, { warehouse: typo })).rejects.toMatchObject({ code: 'invalid_argument', path: 'warehouse' });
    await expect(onlyChanged(plan, { warehouse: typo })).rejects.toThrow(/no warehouse at .*typo\.db.*BACKFILL_WAREHOUSE.*leave out --only-changed/);
    expect(existsSync(typo)).toBe(false);
    // A warehouse that is there (and empty) still answers: everything runs, never published.
    const { summary } = await onlyChanged(plan, { warehouse: real });
    expect(summary.totalSkipped).toBe(0);
    expect(summary.totalToRun).toBe(plan.totalPartitions);
  });

  it('lineage refuses with the location instead of blaming the node id, and creates nothing', async () => {
    const missing = await cli('lineage', 'orders_raw', '2024-03-01', '--warehouse', typo, '--json');
    expect(missing.code).toBe(EXIT.error);
    const error = JSON.parse(missing.stdout).error as { code: string; message: string };
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toContain(`no warehouse at ${typo}`);
    expect(existsSync(typo)).toBe(false);
    // A warehouse that is there but has no such version: not_found, naming the node and key.
    const none = await cli('lineage', 'orders_raw', '2024-03-01', '--warehouse', real, '--json');
    expect(JSON.parse(none.stdout).error.code).toBe('not_found');
  });

  it('diff refuses before it connects, and creates nothing', async () => {
    const missing = await cli('diff', 'shop-2024', '--warehouse', typo, '--json');
    expect(missing.code).toBe(EXIT.error);
    expect(JSON.parse(missing.stdout).error).toMatchObject({ code: 'invalid_argument', path: 'warehouse' });
    expect(existsSync(typo)).toBe(false);
  });
});
