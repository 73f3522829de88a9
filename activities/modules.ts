/**
 * Imports a user's module (a spec, transforms), TypeScript included. From the sources a
 * TypeScript loader is in place already (tsx, or vitest). Compiled, this package needs no
 * loader of its own, and tsx, an optional dependency, is registered the first time a
 * TypeScript module is imported: its ES module hooks and its CommonJS ones, for a `.ts` file
 * outside a `"type": "module"` package is CommonJS to Node (with the ES hooks alone, importing
 * one failed as "Cannot require() ES Module … in a cycle").
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
    return esModuleOf((await import(pathToFileURL(path).href)) as Record<string, unknown>);
  };
}

/**
 * An ES module's exports as written, also when it was compiled to CommonJS: Node then gives its
 * `exports` object as the default export, and the module's own default export is inside it.
 */
export function esModuleOf(loaded: Record<string, unknown>): Record<string, unknown> {
  const inner = loaded.default;
  return typeof inner === 'object' && inner !== null && (inner as { __esModule?: unknown }).__esModule === true ? (inner as Record<string, unknown>) : loaded;
}

async function loadTsx(): Promise<TsxApi> {
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  return {
    register: () => {
      esm.register();
      cjs.register();
    },
  };
}

export const importModule: ModuleImporter = moduleImporter({ typescriptReady: FROM_SOURCES, loadTsx });
