/**
 * The value imports of the repository's TypeScript modules, read with the TypeScript parser:
 * what a module makes Node (or the workflow bundler) load. `import type` and `export type` are
 * erased and left out; `import { type A } from 'x'` still loads x (verbatimModuleSyntax keeps
 * it), and counts. Dynamic `import('…')` of a string literal counts too, marked as such.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { ROOT } from './build-sources.ts';

export type Import = {
  /** As written. */
  specifier: string;
  /** A module of the repository (relative to its root), or undefined for a package or a built-in. */
  module: string | undefined;
  /** `import('…')`: loaded when the code runs, not with the module. */
  dynamic: boolean;
  /** `import type` / `export type`: erased, loads nothing. */
  typeOnly: boolean;
};

const cache = new Map<string, Import[]>();

/** Every import of a module (path relative to the repository's root). */
export function importsOf(module: string): Import[] {
  const known = cache.get(module);
  if (known) return known;
  const path = join(ROOT, module);
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: Import[] = [];
  const add = (specifier: string, dynamic: boolean, typeOnly: boolean) => {
    const local = specifier.startsWith('.') ? relative(ROOT, resolve(dirname(path), specifier)) : undefined;
    found.push({ specifier, module: local, dynamic, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, false, node.importClause?.isTypeOnly === true);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, false, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument && ts.isStringLiteralLike(argument)) add(argument.text, true, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  cache.set(module, found);
  return found;
}

/** The package an import names (`@scope/name/sub` → `@scope/name`), `node:x` for a built-in, undefined for a module of the repository. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.')) return undefined;
  const bare = specifier.replace(/^node:/, '');
  if (specifier.startsWith('node:') || builtinModules.includes(bare.split('/')[0]!)) return `node:${bare}`;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

export type Reach = { modules: Set<string>; packages: Map<string, string> };

/**
 * What loading `entries` loads: the repository's modules and the packages (each with a module
 * that imports it), following value imports; dynamic ones only with `dynamic`.
 */
export function reachable(entries: readonly string[], options: { dynamic?: boolean } = {}): Reach {
  const modules = new Set<string>();
  const packages = new Map<string, string>();
  const queue = [...entries];
  for (let module = queue.shift(); module !== undefined; module = queue.shift()) {
    if (modules.has(module)) continue;
    modules.add(module);
    for (const found of importsOf(module)) {
      if (found.typeOnly || (found.dynamic && !options.dynamic)) continue;
      if (found.module === undefined) {
        const name = packageOf(found.specifier)!;
        if (!packages.has(name)) packages.set(name, module);
      } else if (/\.[mc]?ts$/.test(found.module) && existsSync(join(ROOT, found.module))) {
        queue.push(found.module);
      }
    }
  }
  return { modules, packages };
}

/** The TypeScript modules under a folder of the repository (relative to its root), tests' own excluded. */
export function modulesUnder(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => /\.[mc]?ts$/.test(file) && !file.endsWith('.d.ts'))
    .map((file) => join(folder, file))
    .sort();
}

/** Import cycles among `modules` (value imports, dynamic ones included), each as the path around it. */
export function cycles(modules: readonly string[]): string[][] {
  const within = new Set(modules);
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (module: string): void => {
    state.set(module, 'open');
    path.push(module);
    for (const next of importsOf(module)) {
      if (next.typeOnly || next.module === undefined || !within.has(next.module)) continue;
      const seen = state.get(next.module);
      if (seen === 'open') found.push([...path.slice(path.indexOf(next.module)), next.module]);
      else if (seen === undefined) visit(next.module);
    }
    path.pop();
    state.set(module, 'done');
  };
  for (const module of modules) if (!state.has(module)) visit(module);
  return found;
}
