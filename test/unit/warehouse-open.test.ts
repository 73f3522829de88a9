/** Which warehouse a location opens: known schemes only, and nothing created for a mistyped one. */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { openWarehouse, warehouseExists } from '../../activities/warehouse/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'backfill-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openWarehouse', () => {
  it('refuses a location of an unknown scheme, naming the known ones, and creates nothing', () => {
    const before = readdirSync(process.cwd());
    for (const location of ['postgress://backfill:s3cret@db.internal/warehouse', 'lakes:///data/lake', 'mysql://root:s3cret@localhost/db', 'duckdb:warehouse.db']) {
      let error: unknown;
      try {
        openWarehouse(location, { inline: true });
      } catch (e) {
        error = e;
      }
      expect(error, location).toBeInstanceOf(BackfillError);
      expect((error as BackfillError).code).toBe('invalid_argument');
      expect((error as Error).message).toMatch(/postgres:\/\/…, postgresql:\/\/…, lake:\/\/…, sqlite:…/);
      expect((error as Error).message).not.toContain('s3cret');
    }
    expect(readdirSync(process.cwd())).toEqual(before);
    expect(existsSync(join(process.cwd(), 'lakes:'))).toBe(false);
  });

  it('opens SQLite from a plain path or a sqlite: URL', async () => {
    for (const location of [join(dir, 'plain.db'), `sqlite:${join(dir, 'prefixed.db')}`, `sqlite://${join(dir, 'slashes.db')}`]) {
      const warehouse = openWarehouse(location, { inline: true });
      expect(warehouse.kind).toBe('sqlite');
      await warehouse.publish({
        node: 'orders', partition: 'k', backfillId: 'b', runKey: 'r', workflowId: 'w', data: { rows: [{ a: 1 }], selects: [] },
        checks: [], transform: 't', params: {}, codeVersion: 'c', inputs: [], attempt: 1, startedAt: 0,
      });
      await warehouse.close();
    }
    expect(readdirSync(dir).filter((f) => f.endsWith('.db')).sort()).toEqual(['plain.db', 'prefixed.db', 'slashes.db']);
  });

  it('opens a lake from lake:///absolute/path, creating it on first use, and refuses a lake URL without a directory', async () => {
    const root = join(dir, 'lake');
    const warehouse = openWarehouse(`lake://${root}`, { inline: true });
    expect(warehouse.kind).toBe('lake');
    expect(warehouse.location).toBe(root);
    expect(existsSync(root)).toBe(false);
    await warehouse.publish({
      node: 'orders', partition: 'k', backfillId: 'b', runKey: 'r', workflowId: 'w', data: { rows: [{ a: 1 }], selects: [] },
      checks: [], transform: 't', params: {}, codeVersion: 'c', inputs: [], attempt: 1, startedAt: 0,
    });
    expect(await warehouse.query('SELECT a FROM orders')).toEqual([{ a: 1 }]);
    await warehouse.close();
    expect(existsSync(join(root, 'orders', 'k.parquet'))).toBe(true);
    expect(warehouseExists(`lake://${root}`)).toBe(true);
    expect(warehouseExists(`lake://${join(dir, 'no-lake')}`)).toBe(false);
    expect(existsSync(join(dir, 'no-lake'))).toBe(false);
    for (const location of ['lake:', 'lake://']) {
      expect(() => openWarehouse(location, { inline: true }), location).toThrow(/names no directory: use lake:\/\/\/absolute\/path/);
    }
  });
});
