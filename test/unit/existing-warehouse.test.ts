/**
 * Readers of the warehouse (`--only-changed`, `lineage`, `diff`) refuse a location where no
 * warehouse is, naming it, instead of creating an empty SQLite file and answering from it; and
 * they read a warehouse as it is, setting nothing up in it (a read-only file, another user's).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli as cli } from './run-cli.ts';
import { openWarehouse } from '../../activities/warehouse/index.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { openLedgerIfThere } from '../../client/existing-warehouse.ts';
import { onlyChanged } from '../../client/only-changed.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import { expandPlan } from '../../core/plan.ts';
import { readAsReaders, readersReadAt, writeLedger } from '../warehouse/readers.ts';

const EXAMPLE = new URL('../../examples/shop/backfill.yaml', import.meta.url).pathname;

let dir: string;
let typo: string;
let real: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-existing-warehouse-'));
  typo = join(dir, 'typo.db');
  real = join(dir, 'warehouse.db');
  // A warehouse the workers set up, with nothing published yet.
  const workers = openWarehouse(real, { inline: true });
  await workers.identity();
  await workers.close();
});
/** Undoes what made files unwritable (root's immutable flag), so that they can be removed. */
const restores: Array<() => void> = [];
afterAll(() => {
  for (const restore of restores.splice(0).reverse()) restore();
  rmSync(dir, { recursive: true, force: true });
});
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

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Makes `path` (a file or a directory) one this user cannot write: no write mode, and for root, whom modes do not stop, the immutable flag (ext4, xfs, btrfs). */
function unwritable(path: string, directory = false): void {
  chmodSync(path, directory ? 0o555 : 0o444);
  restores.push(() => chmodSync(path, directory ? 0o755 : 0o644));
  if (process.getuid?.() === 0) {
    execFileSync('chattr', ['+i', path]);
    restores.push(() => execFileSync('chattr', ['-i', path]));
  }
  const probe = directory ? () => closeSync(openSync(join(path, 'probe'), 'wx')) : () => closeSync(openSync(path, 'r+'));
  expect(probe, `${path} must be unwritable for this test`).toThrow(/EACCES|EPERM/);
}

describe('a reader of a SQLite warehouse sets nothing up in it', () => {
  it('reads a read-only file (another user\'s) with every reader, and leaves its bytes as they were', async () => {
    const file = join(dir, 'read-only.db');
    const workers = new SqliteWarehouse(file);
    await writeLedger(workers);
    await workers.close();
    unwritable(file);
    const before = sha256(file);

    await readersReadAt(file);
    // Opened as a worker opens it, on a thread of its own.
    const threaded = openWarehouse(file, { readOnly: true });
    try {
      await readAsReaders(threaded);
    } finally {
      await threaded.close();
    }
    expect(sha256(file)).toBe(before);
  });

  it('says what to do with a file in WAL mode whose directory it may not write in (its -shm file cannot be made there)', async () => {
    const locked = mkdtempSync(join(dir, 'locked-'));
    const file = join(locked, 'warehouse.db');
    const workers = new SqliteWarehouse(file);
    await writeLedger(workers);
    await workers.close();
    unwritable(locked, true);
    const lineage = await cli('lineage', 'orders', '2024-03-01', '--warehouse', file, '--json');
    expect(lineage.code).toBe(EXIT.error);
    expect(JSON.parse(lineage.stdout).error).toMatchObject({
      code: 'invalid_argument',
      message: expect.stringMatching(new RegExp(`cannot read the SQLite warehouse ${file}: it is in WAL mode.*warehouse.db-shm file.*cannot be made in ${locked}.*Read it as a user who may write in that directory`)),
    });
  });

  it('does not bring an older ledger up to date: it says the workers must run first, and the file stays as it was', async () => {
    const file = join(dir, 'older.db');
    const workers = new SqliteWarehouse(file);
    await writeLedger(workers);
    await workers.close();
    // The ledger as a release before costs and staged versions left it.
    const old = new Database(file);
    old.exec('ALTER TABLE backfill_ledger DROP COLUMN cost; ALTER TABLE backfill_ledger DROP COLUMN version_kinds');
    old.close();
    const before = sha256(file);
    const lineage = await cli('lineage', 'orders', '2024-03-01', '--warehouse', file, '--json');
    expect(lineage.code).toBe(EXIT.error);
    expect(JSON.parse(lineage.stdout).error.message).toMatch(
      new RegExp(`the backfill ledger in ${file} is of an older layout \\(it lacks ledger.cost, ledger.version_kinds\\).*start a worker of this release on this warehouse once`),
    );
    expect(sha256(file)).toBe(before);
  });

  it('reads a ledger written before signed starts were claimed in the warehouse (no backfill_signatures): only the workers use that table', async () => {
    const file = join(dir, 'unclaimed.db');
    const workers = new SqliteWarehouse(file);
    await writeLedger(workers);
    await workers.close();
    const old = new Database(file);
    old.exec('DROP TABLE backfill_signatures');
    old.close();
    const before = sha256(file);
    const lineage = await cli('lineage', 'orders', '2024-03-01', '--warehouse', file, '--json');
    expect(lineage.code, lineage.stderr).toBe(EXIT.ok);
    expect(sha256(file)).toBe(before);
  });

  it('refuses a file that holds no backfill ledger, naming it, and creates none there', async () => {
    const file = join(dir, 'not-backfills.db');
    const theirs = new Database(file);
    theirs.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)');
    theirs.close();
    const before = sha256(file);
    const lineage = await cli('lineage', 'orders', '2024-03-01', '--warehouse', file, '--json');
    expect(lineage.code).toBe(EXIT.error);
    expect(JSON.parse(lineage.stdout).error).toMatchObject({ code: 'invalid_argument', path: 'warehouse', message: expect.stringContaining(`no backfill ledger in ${file}`) });
    expect(JSON.parse(lineage.stdout).error.message).toMatch(/Check --warehouse or BACKFILL_WAREHOUSE/);
    // report and plan --estimate go on without a ledger.
    expect(await openLedgerIfThere(file)).toBeNull();
    expect(sha256(file)).toBe(before);
    const after = new Database(file, { readonly: true });
    expect(after.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all()).toEqual([{ name: 'invoices' }]);
    after.close();
  });
});
