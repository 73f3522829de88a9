/**
 * The file a package name (`my-adapter`, `@acme/adapters/lake`) imports from a user's project:
 * found in the node_modules of the project's directory or a parent's, as Node looks from a
 * module there, and its entry read as `import` reads it (exports' `import`, `node` or `default`
 * condition, else `main`, else index.js). A bare `import()` would look beside backfill's own
 * files instead, where a package the user installed in their project is not.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

const CONDITIONS = ['import', 'node', 'default'];

/** A bare specifier's package and the subpath within it (`.` for its main entry). */
export function packageOf(specifier: string): { name: string; subpath: string } | null {
  // A URL (node:fs, file:///…) is no package name.
  const match = /^((?:@[^/:]+\/)?[^/.:][^/:]*)(\/.*)?$/.exec(specifier);
  if (!match) return null;
  return { name: match[1]!, subpath: match[2] ? `.${match[2]}` : '.' };
}

/** The node_modules directories Node searches from `base`, nearest first. */
export function nodeModulesFrom(base: string): string[] {
  const dirs: string[] = [];
  for (let dir = resolve(base); ; dir = dirname(dir)) {
    if (basename(dir) !== 'node_modules') dirs.push(join(dir, 'node_modules'));
    if (dirname(dir) === dir) return dirs;
  }
}

/** The target of an exports entry under the conditions `import` meets. */
function conditional(entry: unknown): string | null {
  if (typeof entry === 'string') return entry;
  if (Array.isArray(entry)) {
    for (const option of entry) {
      const found = conditional(option);
      if (found !== null) return found;
    }
    return null;
  }
  if (typeof entry === 'object' && entry !== null) {
    for (const [condition, value] of Object.entries(entry)) {
      if (!CONDITIONS.includes(condition)) continue;
      const found = conditional(value);
      if (found !== null) return found;
    }
  }
  return null;
}

/** The target of `subpath` in a package's exports field (exact subpaths and `*` patterns). */
function exported(exports: unknown, subpath: string): string | null {
  const bySubpath = typeof exports === 'object' && exports !== null && !Array.isArray(exports) && Object.keys(exports).some((k) => k.startsWith('.'));
  if (!bySubpath) return subpath === '.' ? conditional(exports) : null;
  const map = exports as Record<string, unknown>;
  if (subpath in map) return conditional(map[subpath]);
  for (const [key, value] of Object.entries(map)) {
    const star = key.indexOf('*');
    if (star < 0 || !subpath.startsWith(key.slice(0, star)) || !subpath.endsWith(key.slice(star + 1))) continue;
    const matched = subpath.slice(star, subpath.length - (key.length - star - 1));
    return conditional(value)?.replaceAll('*', matched) ?? null;
  }
  return null;
}

const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile();

/** The first of a legacy main entry's candidates that is a file (main, main.js, main/index.js, index.js). */
function legacyMain(root: string, main: unknown): string | null {
  const candidates = typeof main === 'string' ? [main, `${main}.js`, `${main}.mjs`, `${main}.cjs`, join(main, 'index.js')] : [];
  for (const candidate of [...candidates, 'index.js']) if (isFile(join(root, candidate))) return join(root, candidate);
  return null;
}

/**
 * The file `specifier`, a package name, imports from a project at `base`; null when no
 * node_modules from `base` up holds the package (`searched` says which were looked in).
 */
export function packageEntry(specifier: string, base: string): { path: string } | { path: null; searched: string[] } {
  const pkg = packageOf(specifier);
  if (!pkg) throw new Error(`${specifier} is not a package name`);
  const searched = nodeModulesFrom(base);
  for (const modules of searched) {
    const root = join(modules, pkg.name);
    const manifest = join(root, 'package.json');
    if (!isFile(manifest)) continue;
    const { exports, main } = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: unknown; main?: unknown };
    let path: string | null;
    if (exports !== undefined) {
      const target = exported(exports, pkg.subpath);
      if (target === null || !target.startsWith('./')) throw new Error(`the package ${pkg.name} does not export '${pkg.subpath}' for import (${manifest}): name one of the entries its exports field lists`);
      path = join(root, target);
    } else {
      path = pkg.subpath === '.' ? legacyMain(root, main) : join(root, pkg.subpath);
    }
    if (path === null || !isFile(path)) throw new Error(`the package ${pkg.name} (${root}) has no file for '${specifier}'${path ? ` (${path})` : ''}: is it built? (npm install again, or its build step)`);
    return { path };
  }
  return { path: null, searched };
}
