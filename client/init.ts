/** `backfill init [dir]`: a pipeline project from the templates in templates/init. */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { BackfillError } from '../core/errors.ts';
import { PACKAGE_ROOT, packageJson, type PackageJson } from '../host/package.ts';
import { PROJECT_SPEC } from './project.ts';

export const TEMPLATES = join(PACKAGE_ROOT, 'templates', 'init');

/** Template → the file it becomes. npm leaves every .gitignore out of a package, so that template has another name. */
const FILES: ReadonlyArray<[template: string, file: string]> = [
  ['backfill.yaml', PROJECT_SPEC],
  ['transforms.ts', 'transforms.ts'],
  ['tsconfig.json', 'tsconfig.json'],
  ['README.md', 'README.md'],
  ['gitignore', '.gitignore'],
];

/** What a fresh directory may hold and still count as empty. */
const IGNORED = new Set(['.git']);

export type InitOptions = { dir: string; force?: boolean };

export type InitResult = {
  dir: string;
  name: string;
  /** Files written, relative to `dir`. */
  written: string[];
  /** `written` for a new package.json, `updated` when one was there (its own scripts and dependencies kept). */
  packageJson: 'written' | 'updated';
  /** Scripts of the scaffold that package.json had already under the same name, and kept. */
  keptScripts: string[];
  /** The "type" package.json had (npm 11's `npm init -y` writes "commonjs"), replaced by "module"; null when it had none or "module". */
  replacedType: string | null;
};

type Manifest = {
  name?: string;
  private?: boolean;
  type?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
} & Record<string, unknown>;

/** A package name npm accepts, from the directory's name. */
export function projectName(dir: string): string {
  const name = basename(resolve(dir)).toLowerCase().replace(/[^a-z0-9._~-]+/g, '-').replace(/^[._-]+|-+$/g, '');
  return name || 'pipeline';
}

/** The scaffold's package.json: scripts for every step, this package (at its running version) and what the TypeScript transforms need. */
export function scaffoldManifest(name: string): Manifest {
  const own = packageJson();
  const version = (from: Record<string, string> | undefined, dependency: string): string => {
    const range = from?.[dependency];
    if (range === undefined) throw new Error(`${own.name}'s package.json lists no ${dependency}: the scaffold needs its version range`);
    return range;
  };
  return {
    name,
    private: true,
    type: 'module',
    scripts: {
      plan: `backfill plan ${PROJECT_SPEC}`,
      demo: `backfill demo --spec ${PROJECT_SPEC}`,
      dev: 'backfill dev --transforms transforms.ts',
      start: `backfill start ${PROJECT_SPEC} --watch`,
      worker: 'backfill worker --transforms transforms.ts',
      test: `tsc --noEmit && backfill plan ${PROJECT_SPEC}`,
      // Any other command: `npm run backfill -- status <id>` runs this project's backfill, never
      // npm's unrelated package of that name (which `npx backfill` would offer to fetch where
      // this one is not installed).
      backfill: 'backfill',
    },
    dependencies: {
      [own.name]: `^${own.version}`,
      // The worker loads transforms.ts through tsx.
      tsx: version(own.optionalDependencies, 'tsx'),
    },
    devDependencies: {
      '@types/node': version(own.devDependencies, '@types/node'),
      typescript: version(own.devDependencies, 'typescript'),
    },
    // npm 11.16 lists dependencies whose install scripts nobody allowed, and npm 12 skips them:
    // better-sqlite3 would then install without its native module. The project allows what this
    // package allows (and is tested with).
    allowScripts: allowedScripts(own),
  };
}

function allowedScripts(own: PackageJson): Record<string, boolean> {
  const allowed = own.allowScripts;
  if (allowed === undefined || allowed['better-sqlite3'] !== true) throw new Error(`${own.name}'s package.json does not allow better-sqlite3's install script (allowScripts): the scaffold needs that list`);
  return { ...allowed };
}

/** The test script `npm init` writes: a placeholder that fails, not a test of the user's. */
const NPM_INIT_TEST = 'echo "Error: no test specified" && exit 1';

/** A package.json's scripts without npm init's placeholder test, which the scaffold's replaces. */
function ownScripts(scripts: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(scripts ?? {}).filter(([script, command]) => !(script === 'test' && command === NPM_INIT_TEST)));
}

/**
 * An existing package.json gains what it lacks of the scaffold's; what it has stays as it is,
 * but for "type": transforms.ts is an ES module, and a .ts file of a package that is not
 * "module" loads as CommonJS and fails. Setting the type keeps every name the scaffold uses
 * (the spec's transforms:, the scripts, the README); renaming the file .mts would not.
 */
function merge(existing: Manifest, scaffold: Manifest): { manifest: Manifest; keptScripts: string[]; replacedType: string | null } {
  const own = ownScripts(existing.scripts);
  const keptScripts = Object.entries(scaffold.scripts ?? {})
    .filter(([script, command]) => own[script] !== undefined && own[script] !== command)
    .map(([script]) => script);
  return {
    manifest: {
      name: scaffold.name,
      private: scaffold.private,
      ...existing,
      type: scaffold.type,
      scripts: { ...scaffold.scripts, ...own },
      dependencies: { ...scaffold.dependencies, ...existing.dependencies },
      devDependencies: { ...scaffold.devDependencies, ...existing.devDependencies },
      // A package the project denies stays denied: its own choice.
      allowScripts: { ...scaffold.allowScripts, ...existing.allowScripts },
    },
    keptScripts,
    replacedType: existing.type !== undefined && existing.type !== scaffold.type ? String(existing.type) : null,
  };
}

function readManifest(path: string): Manifest {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('it is not a JSON object');
    return parsed as Manifest;
  } catch (error) {
    throw new BackfillError('invalid_argument', `${path} cannot be read as a package.json (${(error as Error).message}): fix or remove it, then run backfill init again`);
  }
}

function checkTarget(dir: string, force: boolean): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new BackfillError('invalid_argument', `${dir} is a file: name a directory to scaffold the project in`, 'dir');
  const present = readdirSync(dir).filter((entry) => !IGNORED.has(entry));
  if (present.length > 0 && !force) {
    const listed = present.slice(0, 5).join(', ') + (present.length > 5 ? ', ...' : '');
    throw new BackfillError(
      'already_exists',
      `${dir} is not empty (${listed}): name a new directory (backfill init my-pipeline), or add --force to write the project's files into it (files of the same names are replaced; package.json only gains the scripts and dependencies it lacks)`,
      'dir',
    );
  }
}

export function scaffold(options: InitOptions): InitResult {
  const dir = resolve(options.dir);
  checkTarget(dir, options.force === true);
  mkdirSync(dir, { recursive: true });
  const name = projectName(dir);
  // The manifest is read and merged before anything is written: one that cannot be read leaves the directory as it was.
  const manifestPath = join(dir, 'package.json');
  const scaffoldJson = scaffoldManifest(name);
  const existing = existsSync(manifestPath) ? readManifest(manifestPath) : undefined;
  const { manifest, keptScripts, replacedType } = existing ? merge(existing, scaffoldJson) : { manifest: scaffoldJson, keptScripts: [], replacedType: null };

  const fill = (text: string) => text.replaceAll('{{name}}', name).replaceAll('{{package}}', packageJson().name);
  for (const [template, file] of FILES) writeFileSync(join(dir, file), fill(readFileSync(join(TEMPLATES, template), 'utf8')));
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir, name, written: [...FILES.map(([, file]) => file), 'package.json'], packageJson: existing ? 'updated' : 'written', keptScripts, replacedType };
}
