/** The warehouse contract on a Parquet lake, and what is the lake's own. */
import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach } from 'vitest';
import { CatalogueHold } from '../../activities/warehouse/lake/catalogue.ts';
import { LakeWarehouse } from '../../activities/warehouse/lake/lake-dialect.ts';
import { LakeLayout } from '../../activities/warehouse/lake/layout.ts';
import { quoteIdent, quoteLiteral } from '../../activities/warehouse/sql.ts';
import type { RawAccess } from '../warehouse/suite.ts';
import { warehouseSuite } from '../warehouse/suite.ts';

/**
 * Writes behind the lake's back: SQL on its catalogue (taken from the warehouse the way
 * another process takes it), and a change to a stored version, which in a lake is a rewrite
 * of the version's Parquet file.
 */
export function lakeRawAccess(root: string): RawAccess {
  const layout = new LakeLayout(root);
  const versionsOf = (node: string) => quoteLiteral(join(root, node, '_versions', '*', '*.parquet'));
  const exec = async (sql: string) => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const hold = new CatalogueHold(async () => connection, layout, async () => undefined, async () => undefined, { minHoldMs: 0 });
    mkdirSync(layout.catalogDir, { recursive: true });
    try {
      await hold.acquire();
      const tamper = /^UPDATE '([^']+)' SET (\w+) = '([^']*)' WHERE __partition = '([^']+)' AND __version = (\d+)$/.exec(sql.trim());
      if (tamper) {
        const [, glob, column, value, partition, version] = tamper;
        const node = glob!.slice(root.length + 1).split('/')[0]!;
        const file = layout.version(node, partition!, Number(version));
        const rewritten = `${file}.tampered`;
        const source = `read_parquet(${quoteLiteral(file)})`;
        const has = (await connection.runAndReadAll(`SELECT column_name FROM (DESCRIBE SELECT * FROM ${source})`)).getRows().some((r) => r[0] === column);
        // A column the version's file lacks held NULL in that version: the update gives it a value.
        const select = has ? `* REPLACE (${quoteLiteral(value!)} AS ${quoteIdent(column!)})` : `*, ${quoteLiteral(value!)} AS ${quoteIdent(column!)}`;
        await connection.run(`COPY (SELECT ${select} FROM ${source}) TO ${quoteLiteral(rewritten)} (FORMAT parquet)`);
        renameSync(rewritten, file);
      } else {
        await connection.run(sql);
      }
    } finally {
      await hold.close();
      connection.closeSync();
      instance.closeSync();
    }
  };
  return { exec, versionsTable: versionsOf, ledgerTable: 'lake.backfill.ledger', view: (name) => `lake.main.${quoteIdent(name)}`, scopeTable: 'temp.main.backfill_scope' };
}

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function freshRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-lake-'));
  dirs.push(dir);
  return join(dir, 'lake');
}

warehouseSuite('lake', async () => {
  const root = freshRoot();
  const warehouse = new LakeWarehouse(root);
  return { warehouse, raw: lakeRawAccess(warehouse.location), cleanup: () => warehouse.close() };
});
