import Database from 'better-sqlite3';
import { quoteIdent, versionsTable } from '../../warehouse.ts';
import type { Row } from '../../warehouse.ts';
import type { RawAccess } from '../warehouse/suite.ts';

/** The contract suite's raw access to a SQLite warehouse file (its own connection per statement), from the public entry only. */
export function sqliteRawAccess(path: string): RawAccess {
  return {
    exec: async (sql) => {
      const db = new Database(path);
      try {
        db.exec(sql);
      } finally {
        db.close();
      }
    },
    rows: async (sql) => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare(sql).all() as Row[];
      } finally {
        db.close();
      }
    },
    versionsTable: (node) => `main.${quoteIdent(versionsTable(node))}`,
    ledgerTable: 'main.backfill_ledger',
    view: (name) => `main.${quoteIdent(name)}`,
    scopeTable: 'temp.backfill_scope',
    catalogReads: [
      "SELECT name, SUM(ncell) AS cells, SUM(payload) AS bytes FROM dbstat WHERE name IN ('daily__versions', 'backfill_ledger') GROUP BY name",
      // Named like a row function that is allowed.
      "SELECT COUNT(*) AS n FROM dbstat('main') AS json_each",
      "SELECT COUNT(*) AS n FROM daily WHERE EXISTS (SELECT 1 FROM pragma_table_info('backfill_ledger'))",
    ],
  };
}
