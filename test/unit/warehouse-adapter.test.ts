/**
 * An adapter as a third party writes one: only the package's public entries
 * (`durable-backfill/warehouse` and `durable-backfill/warehouse-testkit`), a dialect wrapped in
 * `SqlWarehouse`, registered for a scheme of its own, and proved with one call to the kit.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openWarehouse, registerWarehouse } from '../../warehouse.ts';
import { sqliteRawAccess } from './sqlite-raw.ts';
import { warehouseSuite, write } from '../../warehouse-testkit.ts';
import { warehouseAdapter } from './fixtures/kit-adapter.ts';

registerWarehouse(warehouseAdapter);

warehouseSuite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-kit-'));
  const path = join(dir, 'warehouse.db');
  const warehouse = openWarehouse(`kit://${path}`, { inline: true });
  return {
    warehouse,
    raw: sqliteRawAccess(path),
    cleanup: async () => {
      await warehouse.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('an adapter named in BACKFILL_WAREHOUSE_ADAPTERS', () => {
  const bin = fileURLToPath(new URL('../../bin/backfill.js', import.meta.url));
  const fixture = fileURLToPath(new URL('./fixtures/kit-adapter.ts', import.meta.url));
  const backfill = (args: string[], env: Record<string, string> = {}) =>
    promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...env }, timeout: 60_000 }).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? -1, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
    );
  const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, '');

  it('opens the warehouse of its scheme for the command line, and without it the scheme is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-kit-cli-'));
    try {
      const location = `kit://${join(dir, 'warehouse.db')}`;
      const warehouse = openWarehouse(location, { inline: true });
      await warehouse.publish(write('orders', '2024-01-01', { rows: [{ order_id: 1 }] }));
      await warehouse.close();
      const found = await backfill(['lineage', 'orders', '2024-01-01', '--warehouse', location, '--json'], { BACKFILL_WAREHOUSE_ADAPTERS: `kit=${fixture}` });
      expect(found.code, found.stderr).toBe(0);
      expect(JSON.parse(found.stdout)).toMatchObject({ node: 'orders', partition: '2024-01-01', current: { version: 1, rowCount: 1 } });
      const refused = await backfill(['lineage', 'orders', '2024-01-01', '--warehouse', location]);
      expect(refused.code).not.toBe(0);
      expect(plain(refused.stderr)).toMatch(/scheme 'kit:', which backfill does not know: .*register an adapter for it in BACKFILL_WAREHOUSE_ADAPTERS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
