/**
 * Opens the warehouse named by `location` ($BACKFILL_WAREHOUSE, or `--warehouse`):
 * `postgres://…` (or `postgresql://…`) for PostgreSQL, `sqlite:<path>` or a plain file path
 * for SQLite (default $BACKFILL_HOME/warehouse.db), or the scheme of an adapter (registry.ts:
 * the Parquet lake's `lake:///<directory>` is bundled, others are registered). Any other scheme
 * is refused before anything is created: a mistyped URL must not become a local file. Workers
 * use SQLite on a thread of its own; `inline` opens it on the calling thread (short reads, such
 * as the command line's).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BackfillError } from '../../core/errors.ts';
import { backfillHome } from '../../host/settings.ts';
import { PostgresWarehouse, redactUrl } from './postgres/postgres-dialect.ts';
import { SqliteWarehouse } from './sqlite/sqlite-dialect.ts';
import { ThreadedWarehouse } from './sqlite/threaded.ts';
import { adapterFor, registeredSchemes, type WarehouseAdapter } from './registry.ts';
import type { Warehouse } from './types.ts';

export const WAREHOUSE_SCHEMES = ['postgres://', 'postgresql://', 'sqlite:'] as const;

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

/** The scheme a location starts with (`lake:` of `lake:///data`), or null for a plain path (a drive letter is a path). */
function schemeOf(location: string): string | null {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(location);
  return match && !/^[A-Za-z]:[\\/]/.test(location) ? `${match[1]!.toLowerCase()}:` : null;
}

type Located = { kind: 'postgres'; url: string } | { kind: 'adapter'; adapter: WarehouseAdapter; location: string } | { kind: 'sqlite'; path: string };

/** What `location` names, refused when its scheme is unknown. */
function locate(location: string | undefined): Located {
  const target = location && location.length > 0 ? location : join(backfillHome(), 'warehouse.db');
  if (isPostgresUrl(target)) return { kind: 'postgres', url: target };
  const scheme = schemeOf(target);
  if (scheme !== null && scheme !== 'sqlite:') {
    const adapter = adapterFor(scheme);
    if (adapter) return { kind: 'adapter', adapter, location: target };
    const known = [...WAREHOUSE_SCHEMES, ...registeredSchemes().map((s) => `${s}:`)];
    throw new BackfillError(
      'invalid_argument',
      `the warehouse ${redactUrl(target)} has scheme '${scheme}', which backfill does not know: use ${known.map((s) => `${s}…`).join(', ')} or a plain file path for SQLite ` +
        '(check BACKFILL_WAREHOUSE or --warehouse for a typo, or register an adapter for it in BACKFILL_WAREHOUSE_ADAPTERS: docs/warehouses.md)',
    );
  }
  return { kind: 'sqlite', path: target.replace(/^sqlite:(\/\/)?/i, '') };
}

/**
 * `readOnly`: for a command that only reads (reading.ts): nothing is set up or created (no
 * schema, table or file), the ledger must be there, and writes are refused.
 */
export function openWarehouse(location = process.env.BACKFILL_WAREHOUSE, options: { inline?: boolean; readOnly?: boolean } = {}): Warehouse {
  const found = locate(location);
  const readOnly = options.readOnly === true;
  if (found.kind === 'postgres') return new PostgresWarehouse(found.url, { readOnly });
  if (found.kind === 'adapter') return found.adapter.open(found.location, { inline: options.inline === true, ...(readOnly ? { readOnly } : {}) });
  return options.inline ? new SqliteWarehouse(found.path, { readOnly }) : new ThreadedWarehouse(found.path, { readOnly });
}

/**
 * Whether a warehouse is at `location` already: opening a SQLite file that is not there (or a
 * lake, or another adapter's that says so) would make one, so a reader that only looks
 * (`plan --estimate`) checks first. A PostgreSQL URL is taken to be there.
 */
export function warehouseExists(location = process.env.BACKFILL_WAREHOUSE): boolean {
  const found = locate(location);
  if (found.kind === 'postgres') return true;
  if (found.kind === 'adapter') return found.adapter.exists?.(found.location) ?? true;
  return existsSync(found.path);
}

export type { Warehouse } from './types.ts';
export { loadWarehouseAdapters, registerWarehouse, type WarehouseAdapter } from './registry.ts';
