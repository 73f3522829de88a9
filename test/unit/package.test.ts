/**
 * The npm package's metadata against the code: what package.json exports and ships is what
 * tsconfig.build.json compiles, and the compiled code imports only what an install brings.
 * (test/integration/package.test.ts packs, installs and runs it.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compiledSpec } from '../../scripts/build.ts';
import { ROOT, compiledSources, sourceOf } from './build-sources.ts';

type Manifest = {
  name: string;
  private?: boolean;
  version: string;
  type: string;
  main: string;
  types: string;
  bin: Record<string, string>;
  files: string[];
  exports: Record<string, string | { types: string; default: string }>;
  engines: { node: string };
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies: Record<string, string>;
};
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;

describe('package.json', () => {
  it('is publishable: not private, a 0.x version, an engine, ESM', () => {
    expect(pkg.private).toBeUndefined();
    expect(pkg.version).toMatch(/^0\.\d+\.\d+/);
    expect(pkg.engines.node).toMatch(/^>=20\./);
    expect(pkg.type).toBe('module');
  });

  it("is durable-backfill on npm (the name backfill is another project's), and its command is backfill", () => {
    expect(pkg.name).toBe('durable-backfill');
    expect(Object.keys(pkg.bin)).toEqual(['backfill']);
    // npx durable-backfill runs a package's only bin (npm's rule: one bin, or one named like the package).
    expect(new Set(Object.values(pkg.bin)).size).toBe(1);
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toMatch(/npm name `backfill` belongs to another project/);
  });

  it('ships the compiled code, the bin and the templates, and no sources', () => {
    expect([...pkg.files].sort()).toEqual(['bin', 'dist', 'templates']);
    expect(existsSync(join(ROOT, pkg.bin.backfill!))).toBe(true);
    // bin/backfill.js runs dist/client/main.js when installed.
    expect(readFileSync(join(ROOT, pkg.bin.backfill!), 'utf8')).toContain("import('../dist/client/main.js')");
    expect(compiledSources()).toContain('client/main.ts');
  });

  it('exports the public API only, each entry compiled by the build', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './package.json', './transforms', './warehouse', './warehouse-testkit', './worker']);
    const sources = new Set(compiledSources());
    const targets = [pkg.main, pkg.types, ...Object.values(pkg.exports).flatMap((entry) => (typeof entry === 'string' ? [] : [entry.types, entry.default]))];
    const problems = targets.filter((target) => !sources.has(sourceOf(target) ?? '')).map((target) => `${target} is not compiled from a source in tsconfig.build.json`);
    expect(problems).toEqual([]);
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(pkg.exports['./transforms']).toEqual({ types: './dist/transforms.d.ts', default: './dist/transforms.js' });
    expect(pkg.exports['./warehouse']).toEqual({ types: './dist/warehouse.d.ts', default: './dist/warehouse.js' });
    expect(pkg.exports['./warehouse-testkit']).toEqual({ types: './dist/warehouse-testkit.d.ts', default: './dist/warehouse-testkit.js' });
  });

  it('makes tsx optional: only specs and transforms written in TypeScript need it', () => {
    expect(pkg.optionalDependencies?.tsx).toBeDefined();
    expect(pkg.dependencies.tsx).toBeUndefined();
  });

  it('lists every package the compiled code imports as a dependency', () => {
    // An optional peer is the caller's own: vitest, which only the warehouse testkit imports.
    const peers = Object.keys(pkg.peerDependencies ?? {});
    expect(peers.filter((name) => pkg.peerDependenciesMeta?.[name]?.optional !== true)).toEqual([]);
    const installed = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {}), ...peers]);
    const builtins = new Set(builtinModules);
    const imported = compiledSources().flatMap((file) => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      // Value imports only: type imports are erased from the JavaScript.
      const specifiers = [...text.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'|import\('([^']+)'\)/gm)].map((m) => m[1] ?? m[2] ?? '');
      return specifiers
        .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtins.has(s))
        .map((s) => ({ file, name: s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]! }));
    });
    expect(imported.map((i) => i.name)).toEqual(expect.arrayContaining(['@temporalio/client', 'better-sqlite3', 'tsx']));
    const problems = imported
      .filter(({ name }) => !installed.has(name))
      .map(({ file, name }) => `${file} imports ${name}, which is not a dependency${pkg.devDependencies[name] ? ' (it is a devDependency)' : ''}`);
    expect(problems).toEqual([]);
    expect(imported.filter(({ name }) => peers.includes(name)).map(({ file }) => file)).toEqual(['test/warehouse/suite.ts']);
  });
});

describe('the build', () => {
  it("points the examples' copied specs at their compiled transforms, keeping the rest", () => {
    const yaml = '# a comment\nname: x\ntransforms: [./a.ts, ./b.mts, ./c.js]\nnodes:\n  - { id: a, transform: noop }\n';
    const compiled = compiledSpec(yaml, 'x.yaml');
    expect(compiled).toContain('transforms: [./a.js, ./b.mjs, ./c.js]');
    expect(compiled).toContain('# a comment');
    expect(compiled).toContain('nodes:');
    expect(() => compiledSpec('name: x\ntransforms: ./a.ts\n', 'x.yaml')).toThrow(/x\.yaml: transforms must be a list/);
    expect(compiledSpec('name: x\n', 'x.yaml')).toBe('name: x\n');
  });
});
