/**
 * host/ holds what the product needs from the machine it runs on, besides its core: where its
 * own files are (this module), the settings of its environment (settings.ts), and a Temporal
 * CLI to run the local dev server with (temporal-cli.ts, dev-server.ts).
 *
 * Where this package's files are. It runs either from its TypeScript sources (a checkout of
 * the repository, through tsx or vitest) or compiled: every module a .js file under dist/, the
 * way npm installs it (package.json "files" ships no sources).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when this code runs from the .ts sources. */
export const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** The directory of the runnable modules: the repository's root (sources) or dist/ (compiled). */
export const CODE_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** The package's root, where package.json is: compiled modules sit one level down, in dist/. */
export const PACKAGE_ROOT = FROM_SOURCES ? CODE_ROOT : resolve(CODE_ROOT, '..');

/** A module of this package by its path without extension (e.g. `workflows/index`): its .ts source or its compiled .js. */
export function codePath(module: string): string {
  return join(CODE_ROOT, `${module}${FROM_SOURCES ? '.ts' : '.js'}`);
}

export type PackageJson = {
  name: string;
  version: string;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  /** npm 11.16's install-script allow list (npm 12 enforces it): the dependencies whose install scripts may run. */
  allowScripts?: Record<string, boolean>;
};

let manifest: PackageJson | undefined;

export function packageJson(): PackageJson {
  manifest ??= JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as PackageJson;
  return manifest;
}

/** The code version workers record in the ledger when none is given (--code-version, $BACKFILL_CODE_VERSION): `backfill@<package version>`. */
export function defaultCodeVersion(): string {
  return `backfill@${packageJson().version}`;
}
