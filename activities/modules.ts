/**
 * Imports a user's module (a spec, transforms), TypeScript included. From the sources a
 * TypeScript loader is in place already (tsx, or vitest). Compiled, this package needs no
 * loader of its own, and tsx, an optional dependency, is registered the first time a
 * TypeScript module is imported.
 */
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BackfillError } from '../core/errors.ts';
import { FROM_SOURCES } from '../host/package.ts';

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts']);

type TsxApi = { register(): unknown };

export type ModuleImporter = (path: string) => Promise<Record<string, unknown>>;

function missingPackage(error: unknown, name: string): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return code === 'ERR_MODULE_NOT_FOUND' && typeof message === 'string' && message.includes(`'${name}'`);
}

/** An importer; `typescriptReady` when a loader is registered already, else `loadTsx` brings one on first need. */
export function moduleImporter(options: { typescriptReady: boolean; loadTsx: () => Promise<TsxApi> }): ModuleImporter {
  let ready: Promise<boolean> | undefined = options.typescriptReady ? Promise.resolve(true) : undefined;
  const registerTsx = async (): Promise<boolean> => {
    try {
      (await options.loadTsx()).register();
      return true;
    } catch (error) {
      if (missingPackage(error, 'tsx')) return false;
      throw error;
    }
  };
  return async (path) => {
    if (TYPESCRIPT.has(extname(path).toLowerCase()) && !(await (ready ??= registerTsx()))) {
      throw new BackfillError(
        'invalid_argument',
        `cannot load ${path}: TypeScript modules load through tsx, which is not installed: install tsx (npm install tsx), or write the module in JavaScript (.js or .mjs)`,
      );
    }
    return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  };
}

export const importModule: ModuleImporter = moduleImporter({ typescriptReady: FROM_SOURCES, loadTsx: () => import('tsx/esm/api') });
