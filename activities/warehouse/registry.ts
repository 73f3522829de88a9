/**
 * Warehouse adapters by URL scheme: `registerWarehouse({ scheme: 'bigquery', open })` makes
 * `BACKFILL_WAREHOUSE=bigquery://…` open through `open`. SQLite and PostgreSQL are built in
 * and cannot be replaced; a scheme nobody registered stays refused (index.ts).
 *
 * Adapters that ship with backfill (the Parquet lake, `lake://`, in `lake/adapter.ts`, built
 * from the public entry only, as anyone's) are registered by default; an adapter registered
 * for the same scheme takes the bundled one's place.
 *
 * Workers and commands started by the `backfill` command load adapter modules named in
 * `BACKFILL_WAREHOUSE_ADAPTERS` (`bigquery=./adapters/bigquery.js,lake=@acme/backfill-lake`)
 * before they open the warehouse: each module exports `warehouseAdapter`. See docs/warehouses.md.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve as resolveImport } from 'import-meta-resolve';
import { BackfillError } from '../../core/errors.ts';
import { importModule } from '../modules.ts';
import { warehouseAdapter as lakeAdapter } from './lake/adapter.ts';
import type { Warehouse } from './types.ts';

export type WarehouseAdapter = {
  /** The URL scheme, without `:` (`bigquery` for `bigquery://…`). */
  scheme: string;
  /**
   * Opens the warehouse at `location` (the whole URL, as the user gave it). `inline` is true for
   * short reads on the calling thread (the command line's); a worker's warehouse may move its
   * work elsewhere. `readOnly` is true for a command that only reads (`lineage`, `diff`,
   * `report`): set nothing up and create nothing (no schema, table, directory or file), and
   * refuse writes. Nothing should connect before the first call: opening must be cheap.
   */
  open(location: string, options: { inline: boolean; readOnly?: boolean }): Warehouse;
  /**
   * Optional: whether a warehouse is at `location` already, for readers that only look
   * (`plan --estimate`) where opening would make one. Without it, one is taken to be there.
   */
  exists?(location: string): boolean;
};

export const BUILT_IN_SCHEMES = ['postgres', 'postgresql', 'sqlite'] as const;
const SCHEME = /^[a-z][a-z0-9+.-]*$/;
const adapters = new Map<string, WarehouseAdapter>();

/** The adapters that ship with backfill, by scheme (read when asked: the lake's module imports the public entry, which imports this one). */
const bundled = (): ReadonlyMap<string, WarehouseAdapter> => new Map([[lakeAdapter.scheme, lakeAdapter]]);

function invalid(message: string): BackfillError {
  return new BackfillError('invalid_argument', message);
}

/**
 * Registers an adapter for its scheme. Registering the same adapter again does nothing; another
 * one for a taken scheme is refused, except a bundled adapter's scheme, which it takes over.
 */
export function registerWarehouse(adapter: WarehouseAdapter): void {
  const scheme = typeof adapter?.scheme === 'string' ? adapter.scheme.replace(/:$/, '').toLowerCase() : '';
  if (!SCHEME.test(scheme)) {
    throw invalid(`a warehouse adapter's scheme must be a URL scheme (a letter, then letters, digits, +, . or -), not '${String(adapter?.scheme)}'`);
  }
  if (typeof adapter.open !== 'function') throw invalid(`the warehouse adapter for '${scheme}:' has no open(location, options) function`);
  if ((BUILT_IN_SCHEMES as readonly string[]).includes(scheme)) {
    throw invalid(`'${scheme}:' is built into backfill and cannot be replaced by an adapter: give yours a scheme of its own`);
  }
  const existing = adapters.get(scheme);
  if (existing && existing.open !== adapter.open) {
    throw invalid(`another warehouse adapter is already registered for '${scheme}:': register each scheme once (check BACKFILL_WAREHOUSE_ADAPTERS for a duplicate)`);
  }
  adapters.set(scheme, adapter);
}

/** The adapter registered for a scheme (`lake`, without `:`), or the bundled one, if any. */
export function adapterFor(scheme: string): WarehouseAdapter | undefined {
  const name = scheme.replace(/:$/, '').toLowerCase();
  return adapters.get(name) ?? bundled().get(name);
}

/** The schemes adapters serve (registered or bundled), sorted. */
export function registeredSchemes(): string[] {
  return [...new Set([...bundled().keys(), ...adapters.keys()])].sort();
}

/** Whether `error` says no package of that name is installed where it was looked for. */
function packageMissing(error: unknown, name: string): boolean {
  return (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${name}'`);
}

/**
 * Imports an adapter module: a path relative to `base`, or a package as an import in the project
 * at `base` finds it (its node_modules or a parent's, its entry read from exports or main), else
 * one beside backfill's own install (a global install of both). A bare `import()` here would
 * look beside backfill's files only, where a package the user installed in their project is not.
 */
async function importAdapter(module: string, base: string): Promise<unknown> {
  // A file of the user's: TypeScript too, as transforms and specs are (through tsx).
  if (module.startsWith('.') || isAbsolute(module)) return importModule(resolve(base, module));
  const name = /^(?:@[^/]+\/)?[^/]+/.exec(module)?.[0] ?? module;
  try {
    return await import(resolveImport(module, pathToFileURL(join(resolve(base), 'package.json')).href));
  } catch (error) {
    if (!packageMissing(error, name)) throw error;
  }
  try {
    return await import(module);
  } catch (error) {
    if (!packageMissing(error, name)) throw error;
    throw new Error(
      `no package ${name} in the node_modules of ${resolve(base)} or of a directory above it, nor beside backfill's own install (${fileURLToPath(new URL('../..', import.meta.url))}): ` +
        `install it in your project (npm install ${name}), or name its module by path (./node_modules/…)`,
    );
  }
}

/**
 * Imports the adapter modules `list` names (`scheme=module,…`, as BACKFILL_WAREHOUSE_ADAPTERS
 * gives them; a relative path is resolved against `base`, a package name from the project there)
 * and registers what each exports as `warehouseAdapter`, which must be for the scheme named with it.
 */
export async function loadWarehouseAdapters(list: string | undefined, base = process.cwd()): Promise<void> {
  if (list === undefined || list.trim() === '') return;
  for (const entry of list.split(',').map((e) => e.trim()).filter((e) => e.length > 0)) {
    const at = entry.indexOf('=');
    const scheme = at > 0 ? entry.slice(0, at).trim().toLowerCase() : '';
    const module = at > 0 ? entry.slice(at + 1).trim() : '';
    if (!SCHEME.test(scheme) || module === '') {
      throw invalid(`BACKFILL_WAREHOUSE_ADAPTERS entry '${entry}' is not scheme=module: e.g. bigquery=./adapters/bigquery.js`);
    }
    let loaded: { warehouseAdapter?: WarehouseAdapter };
    try {
      loaded = (await importAdapter(module, base)) as typeof loaded;
    } catch (error) {
      throw invalid(`cannot load the warehouse adapter for '${scheme}:' from ${module}: ${(error as Error).message}`);
    }
    const adapter = loaded.warehouseAdapter;
    if (!adapter) throw invalid(`the module ${module} exports no warehouseAdapter: export const warehouseAdapter = { scheme: '${scheme}', open(location, options) { … } }`);
    if (adapter.scheme?.replace(/:$/, '').toLowerCase() !== scheme) {
      throw invalid(`the module ${module} exports the adapter for '${String(adapter.scheme)}:', not '${scheme}:' as BACKFILL_WAREHOUSE_ADAPTERS says`);
    }
    registerWarehouse(adapter);
  }
}
