/**
 * The lake as a warehouse adapter, `lake:///path/to/dir`, built from the package's public entry
 * only (`durable-backfill/warehouse`), as anyone's adapter is, and registered by default
 * (registry.ts). DuckDB is loaded on the warehouse's first call, by the processes that use a lake.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { BackfillError, deferredWarehouse, type WarehouseAdapter } from '../../../warehouse.ts';
import { LakeLayout } from './layout.ts';

/** DuckDB reads these in a file's path as a pattern (its glob), so the lake could not read its own files. */
const PATTERN_CHARACTERS = /[*?[\]]/;

/**
 * Whether the lake at `root` holds a catalogue. A path this process cannot look into, or a file
 * where the lake's directory should be, is said as such: taken for "no lake there", it made a
 * reader say nothing was ever written, and `plan --estimate` leave the history out.
 */
export function lakeThere(root: string): boolean {
  try {
    return statSync(new LakeLayout(root).catalog, { throwIfNoEntry: false }) !== undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') {
      throw new BackfillError('invalid_argument', `the lake ${root} is not a directory (a file is there, or in its _backfill): give lake:/// the lake's directory`);
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new BackfillError('invalid_argument', `the lake ${root} cannot be read by this user (permission denied): give it read access to the lake's directory, or run as a user who has it`);
    }
    throw error;
  }
}

/** The lake's directory: `lake:///srv/lake` (absolute), or `lake:data/lake` (relative to the working directory). */
export function lakeDirectory(location: string): string {
  const path = location.replace(/^lake:(\/\/)?/i, '');
  if (path.length === 0 || !/^lake:/i.test(location)) {
    throw new BackfillError('invalid_argument', `the lake ${location} names no directory: use lake:///absolute/path/to/lake`);
  }
  // `lake://srv/lake` reads as a host and a path, as in any URL: taken as a relative path, it would
  // make a lake below each process's working directory, not the /srv/lake that was meant.
  if (/^lake:\/\/[^/]/i.test(location)) {
    throw new BackfillError(
      'invalid_argument',
      `the lake ${location} names a host (${path.split('/')[0]}), and a lake is a local directory: use lake:///${path} (three slashes) for the absolute path /${path}, or lake:${path} for a path relative to the working directory`,
    );
  }
  const directory = resolve(path);
  const pattern = PATTERN_CHARACTERS.exec(directory);
  if (pattern) {
    throw new BackfillError(
      'invalid_argument',
      `the lake directory ${directory} has '${pattern[0]}' in its path, which DuckDB reads as a file pattern, so the lake could not read its own files: choose a directory without * ? [ ] in its path`,
    );
  }
  return directory;
}

export const warehouseAdapter: WarehouseAdapter = {
  scheme: 'lake',
  open(location, options) {
    const root = lakeDirectory(location);
    const readOnly = options.readOnly === true;
    return deferredWarehouse({ kind: 'lake', location: root }, async () => new (await import('./lake-dialect.ts')).LakeWarehouse(root, { readOnly }));
  },
  // Opening a lake that is not there makes one: a reader that only looks checks for its catalogue first.
  exists: (location) => lakeThere(lakeDirectory(location)),
};
