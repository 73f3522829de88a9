import { join } from 'node:path';
import { backfillHome } from '../../scripts/temporal-cli.ts';
import { SqliteWarehouse } from './sqlite.ts';
import { ThreadedWarehouse } from './threaded.ts';
import type { Warehouse } from './types.ts';

/**
 * The warehouse at `location` ($BACKFILL_WAREHOUSE): a SQLite file path (default:
 * $BACKFILL_HOME/warehouse.db). Workers use it on a thread of its own; `inline` opens it on
 * the calling thread (short reads, such as the command line's).
 */
export function openWarehouse(location = process.env.BACKFILL_WAREHOUSE, options: { inline?: boolean } = {}): Warehouse {
  const target = location && location.length > 0 ? location : join(backfillHome(), 'warehouse.db');
  if (/^postgres(ql)?:\/\//.test(target)) {
    throw new Error('PostgreSQL warehouses are not available yet: use a SQLite file path for BACKFILL_WAREHOUSE');
  }
  const path = target.replace(/^sqlite:(\/\/)?/, '');
  return options.inline ? new SqliteWarehouse(path) : new ThreadedWarehouse(path);
}

export type { Warehouse } from './types.ts';
