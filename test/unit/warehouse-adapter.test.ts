/**
 * An adapter as a third party writes one: only the package's public entries
 * (`durable-backfill/warehouse` and `durable-backfill/warehouse-testkit`), a dialect wrapped in
 * `SqlWarehouse`, registered for a scheme of its own, and proved with one call to the kit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqlWarehouse, SqliteDialect, openWarehouse, quoteIdent, registerWarehouse, versionsTable, type WarehouseAdapter } from '../../warehouse.ts';
import { warehouseSuite } from '../../warehouse-testkit.ts';

/** `kit:///path/to/file.db`: a SQLite file, opened through the protocol the built-in warehouses share. */
const adapter: WarehouseAdapter = {
  scheme: 'kit',
  open: (location) => new SqlWarehouse(new SqliteDialect(fileURLToPath(location.replace(/^kit:/, 'file:')))),
};
registerWarehouse(adapter);

warehouseSuite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-kit-'));
  const path = join(dir, 'warehouse.db');
  const warehouse = openWarehouse(`kit://${path}`, { inline: true });
  return {
    warehouse,
    raw: {
      exec: async (sql) => {
        const db = new Database(path);
        try {
          db.exec(sql);
        } finally {
          db.close();
        }
      },
      versionsTable: (node) => `main.${quoteIdent(versionsTable(node))}`,
      ledgerTable: 'main.backfill_ledger',
      view: (name) => `main.${quoteIdent(name)}`,
      scopeTable: 'temp.backfill_scope',
    },
    cleanup: async () => {
      await warehouse.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
