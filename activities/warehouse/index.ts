/**
 * Opens the warehouse named by `location` ($BACKFILL_WAREHOUSE, or `--warehouse`):
 * `postgres://…` (or `postgresql://…`) for PostgreSQL, else a SQLite file path (default
 * $BACKFILL_HOME/warehouse.db). Workers use SQLite on a thread of its own; `inline` opens it
 * on the calling thread (short reads, such as the command line's).
 */
import { join } from 'node:path';
import { backfillHome } from '../../scripts/temporal-cli.ts';
import { PostgresWarehouse } from './postgres/postgres-dialect.ts';
import { SqliteWarehouse } from './sqlite/sqlite-dialect.ts';
import { ThreadedWarehouse } from './sqlite/threaded.ts';
import type { Warehouse } from './types.ts';

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

export function openWarehouse(location = process.env.BACKFILL_WAREHOUSE, options: { inline?: boolean } = {}): Warehouse {
  const target = location && location.length > 0 ? location : join(backfillHome(), 'warehouse.db');
  if (isPostgresUrl(target)) return new PostgresWarehouse(target);
  const path = target.replace(/^sqlite:(\/\/)?/, '');
  return options.inline ? new SqliteWarehouse(path) : new ThreadedWarehouse(path);
}

export type { Warehouse } from './types.ts';
