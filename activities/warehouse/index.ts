import { join } from 'node:path';
import { backfillHome } from '../../scripts/temporal-cli.ts';
import { SqliteWarehouse } from './sqlite.ts';
import type { Warehouse } from './types.ts';

/** The warehouse at `location` ($BACKFILL_WAREHOUSE): a SQLite file path (default: $BACKFILL_HOME/warehouse.db). */
export function openWarehouse(location = process.env.BACKFILL_WAREHOUSE): Warehouse {
  const target = location && location.length > 0 ? location : join(backfillHome(), 'warehouse.db');
  if (/^postgres(ql)?:\/\//.test(target)) {
    throw new Error('PostgreSQL warehouses are not available yet: use a SQLite file path for BACKFILL_WAREHOUSE');
  }
  return new SqliteWarehouse(target.replace(/^sqlite:(\/\/)?/, ''));
}

export type { Warehouse } from './types.ts';
