/**
 * Opens the warehouse named by `location` ($BACKFILL_WAREHOUSE, or `--warehouse`):
 * `postgres://…` (or `postgresql://…`) for PostgreSQL, `lake:///<directory>` for a Parquet
 * lake on DuckDB, `sqlite:<path>` or a plain file path for SQLite (default
 * $BACKFILL_HOME/warehouse.db). Any other scheme is refused before
 * anything is created: a mistyped URL must not become a local file. Workers use SQLite on a
 * thread of its own; `inline` opens it on the calling thread (short reads, such as the
 * command line's).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BackfillError } from '../../core/errors.ts';
import { backfillHome } from '../../host/settings.ts';
import { LakeWarehouse } from './lake/lake-dialect.ts';
import { LakeLayout } from './lake/layout.ts';
import { PostgresWarehouse, redactUrl } from './postgres/postgres-dialect.ts';
import { SqliteWarehouse } from './sqlite/sqlite-dialect.ts';
import { ThreadedWarehouse } from './sqlite/threaded.ts';
import type { Warehouse } from './types.ts';

export const WAREHOUSE_SCHEMES = ['postgres://', 'postgresql://', 'lake://', 'sqlite:'] as const;

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

/** The scheme a location starts with (`lake:` of `lake:///data`), or null for a plain path (a drive letter is a path). */
function schemeOf(location: string): string | null {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(location);
  return match && !/^[A-Za-z]:[\\/]/.test(location) ? `${match[1]!.toLowerCase()}:` : null;
}

type Located = { kind: 'postgres'; url: string } | { kind: 'lake'; path: string } | { kind: 'sqlite'; path: string };

/** What `location` names, refused when its scheme is unknown or it names no place. */
function locate(location: string | undefined): Located {
  const target = location && location.length > 0 ? location : join(backfillHome(), 'warehouse.db');
  if (isPostgresUrl(target)) return { kind: 'postgres', url: target };
  const scheme = schemeOf(target);
  if (scheme === 'lake:') {
    // lake:///srv/lake (an absolute path), or lake:data/lake (relative to the working directory).
    const path = target.replace(/^lake:(\/\/)?/i, '');
    if (path.length === 0) throw new BackfillError('invalid_argument', `the lake ${target} names no directory: use lake:///absolute/path/to/lake`);
    return { kind: 'lake', path };
  }
  if (scheme !== null && scheme !== 'sqlite:') {
    throw new BackfillError(
      'invalid_argument',
      `the warehouse ${redactUrl(target)} has scheme '${scheme}', which backfill does not know: use ${WAREHOUSE_SCHEMES.map((s) => `${s}…`).join(', ')} or a plain file path for SQLite (check BACKFILL_WAREHOUSE or --warehouse for a typo)`,
    );
  }
  return { kind: 'sqlite', path: target.replace(/^sqlite:(\/\/)?/i, '') };
}

export function openWarehouse(location = process.env.BACKFILL_WAREHOUSE, options: { inline?: boolean } = {}): Warehouse {
  const found = locate(location);
  if (found.kind === 'postgres') return new PostgresWarehouse(found.url);
  if (found.kind === 'lake') return new LakeWarehouse(found.path);
  return options.inline ? new SqliteWarehouse(found.path) : new ThreadedWarehouse(found.path);
}

/**
 * Whether a warehouse is at `location` already: opening a SQLite file or a lake that is not
 * there would make one, so a reader that only looks (`plan --estimate`) checks first. A
 * PostgreSQL URL is taken to be there.
 */
export function warehouseExists(location = process.env.BACKFILL_WAREHOUSE): boolean {
  const found = locate(location);
  if (found.kind === 'postgres') return true;
  return existsSync(found.kind === 'lake' ? new LakeLayout(found.path).catalog : found.path);
}

export type { Warehouse } from './types.ts';
