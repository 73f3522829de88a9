/**
 * The lake as a warehouse adapter, `lake:///path/to/dir`, built from the package's public entry
 * only (`durable-backfill/warehouse`), as anyone's adapter is, and registered by default
 * (registry.ts). DuckDB is loaded on the warehouse's first call, by the processes that use a lake.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { BackfillError, deferredWarehouse, type WarehouseAdapter } from '../../../warehouse.ts';
import { LakeLayout } from './layout.ts';

/** The lake's directory: `lake:///srv/lake` (absolute), or `lake:data/lake` (relative to the working directory). */
export function lakeDirectory(location: string): string {
  const path = location.replace(/^lake:(\/\/)?/i, '');
  if (path.length === 0 || !/^lake:/i.test(location)) {
    throw new BackfillError('invalid_argument', `the lake ${location} names no directory: use lake:///absolute/path/to/lake`);
  }
  return resolve(path);
}

export const warehouseAdapter: WarehouseAdapter = {
  scheme: 'lake',
  open(location) {
    const root = lakeDirectory(location);
    return deferredWarehouse({ kind: 'lake', location: root }, async () => new (await import('./lake-dialect.ts')).LakeWarehouse(root));
  },
  // Opening a lake that is not there makes one: a reader that only looks checks for its catalogue first.
  exists: (location) => existsSync(new LakeLayout(lakeDirectory(location)).catalog),
};
