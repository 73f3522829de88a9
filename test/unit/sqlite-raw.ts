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
  };
}
