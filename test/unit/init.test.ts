/** `backfill init`: what it writes, what it refuses, and how it joins an existing package.json. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BUILTIN_TRANSFORMS } from '../../activities/transforms.ts';
import { thrownBackfillError } from './backfill-error.ts';
import { expandPlan } from '../../core/plan.ts';
import { resolveSpec } from '../../core/spec.ts';
import { projectName, scaffold } from '../../client/init.ts';
import { installSteps, renderInit } from '../../client/commands/init.ts';
import { warehouseTarget } from '../../client/existing-warehouse.ts';
import { shellWord } from '../../core/shell-word.ts';
import { packageJson } from '../../host/package.ts';

let root: string;
let count = 0;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'backfill-init-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The directory the next steps of `result` cd into, seen from `cwd`. */
const cdOf = (result: ReturnType<typeof scaffold>, cwd: string) => /^  cd (.*)$/m.exec(stripVTControlCharacters(renderInit(result, cwd)))?.[1];

function fresh(name = 'pipeline'): string {
  return join(root, `${count++}`, name);
}

type Manifest = {
  name: string;
  type: string;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  allowScripts: Record<string, boolean>;
};
const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

describe('backfill init', () => {
  it('writes a project whose spec is valid: an hourly TypeScript dataset and a daily SQL rollup', () => {
    const dir = fresh('Page Views');
    const result = scaffold({ dir });
    expect(result).toMatchObject({ dir, name: 'page-views', packageJson: 'written', keptScripts: [] });
    expect(readdirSync(dir).sort()).toEqual(['.gitignore', 'README.md', 'backfill.yaml', 'package.json', 'transforms.ts', 'tsconfig.json']);

    const document = parse(readFileSync(join(dir, 'backfill.yaml'), 'utf8')) as { name: string; transforms: string[] };
    expect(document.name).toBe('page-views');
    expect(document.transforms).toEqual(['./transforms.ts']);
    const spec = resolveSpec(document, new Set([...BUILTIN_TRANSFORMS.keys(), 'generate_page_views']));
    expect(spec.nodes.map((n) => [n.id, n.transform, n.partitions.kind === 'time' ? n.partitions.grain : 'keys'])).toEqual([
      ['page_views', 'generate_page_views', 'hour'],
      ['daily_pages', 'sql', 'day'],
    ]);
    expect(expandPlan(spec).totalPartitions).toBe(7 * 24 + 7);

    const transforms = readFileSync(join(dir, 'transforms.ts'), 'utf8');
    // The transforms entry point, which loads in milliseconds: the package is durable-backfill, never npm's unrelated backfill.
    expect(packageJson().name).toBe('durable-backfill');
    expect(transforms).toContain("from 'durable-backfill/transforms';");
    expect(transforms).toContain('generate_page_views:');
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(/^# page-views\n/);
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toMatch(/^\.backfill\/$/m);
  });

  it("depends on this package's running version, with scripts for each step", () => {
    const dir = fresh();
    scaffold({ dir });
    const { name, type, scripts, dependencies, devDependencies } = manifest(dir);
    expect([name, type]).toEqual(['pipeline', 'module']);
    expect(dependencies['durable-backfill']).toBe(`^${packageJson().version}`);
    expect(dependencies.backfill).toBeUndefined();
    expect(dependencies.tsx).toBe(packageJson().optionalDependencies?.tsx);
    expect(Object.keys(devDependencies).sort()).toEqual(['@types/node', 'typescript']);
    // npm 12 runs only the install scripts a project allows: better-sqlite3 builds its native module in one.
    expect(manifest(dir).allowScripts).toEqual(packageJson().allowScripts);
    expect(manifest(dir).allowScripts['better-sqlite3']).toBe(true);
    expect(scripts).toMatchObject({ plan: 'backfill plan backfill.yaml', dev: 'backfill dev --transforms transforms.ts', start: 'backfill start backfill.yaml --watch' });
    expect(Object.keys(scripts)).toEqual(expect.arrayContaining(['demo', 'worker', 'test']));
    // `npm run backfill -- <command>`: the project's own command, never npm's unrelated `backfill`.
    expect(scripts.backfill).toBe('backfill');
  });

  it('refuses a directory that is not empty, naming --force; .git alone is fine', () => {
    const dir = fresh();
    mkdirSync(join(dir, '.git'), { recursive: true });
    scaffold({ dir });
    const error = thrownBackfillError(() => scaffold({ dir }));
    expect(error.code).toBe('already_exists');
    expect(error.message).toMatch(/is not empty \(\.gitignore, README\.md, backfill\.yaml, .*\): name a new directory .* or add --force/);
  });

  it('refuses a file in place of the directory', () => {
    const file = join(fresh(), 'file');
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, 'x');
    expect(thrownBackfillError(() => scaffold({ dir: file })).message).toMatch(/is a file: name a directory/);
  });

  it('with --force, joins an existing package.json: keeps its fields, scripts and dependencies, adds what it lacks', () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ dependencies: { [packageJson().name]: 'file:../backfill.tgz', left: '^1.0.0' }, scripts: { test: 'vitest' }, allowScripts: { esbuild: false, sharp: true } }));
    writeFileSync(join(dir, 'transforms.ts'), '// old');
    const result = scaffold({ dir, force: true });
    expect(result).toMatchObject({ packageJson: 'updated', keptScripts: ['test'] });
    const merged = manifest(dir);
    expect(merged).toMatchObject({ name: 'pipeline', type: 'module' });
    expect(merged.scripts.test).toBe('vitest');
    expect(merged.scripts.plan).toBe('backfill plan backfill.yaml');
    expect(merged.dependencies).toMatchObject({ [packageJson().name]: 'file:../backfill.tgz', left: '^1.0.0', tsx: packageJson().optionalDependencies?.tsx });
    // The project's own choices stay; what it did not list is allowed as the scaffold allows it.
    expect(merged.allowScripts).toEqual({ ...packageJson().allowScripts, esbuild: false, sharp: true });
    expect(readFileSync(join(dir, 'transforms.ts'), 'utf8')).toContain('defineTransforms');
  });

  it('with --force, makes the package "type": "module" (npm 11\'s npm init -y writes "commonjs"), and says so', () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'pipeline', version: '1.0.0', type: 'commonjs', scripts: { test: 'echo none' } }));
    const result = scaffold({ dir, force: true });
    expect(manifest(dir).type).toBe('module');
    expect(result.replacedType).toBe('commonjs');
    expect(stripVTControlCharacters(renderInit(result))).toContain('package.json gained the scripts and dependencies it lacked (your script test was kept); its "type" is now "module", not "commonjs" (transforms.ts is an ES module)');

    const fresher = fresh();
    mkdirSync(fresher, { recursive: true });
    writeFileSync(join(fresher, 'package.json'), JSON.stringify({ type: 'module' }));
    const unchanged = scaffold({ dir: fresher, force: true });
    expect(unchanged.replacedType).toBeNull();
    expect(renderInit(unchanged)).not.toContain('"type"');
  });

  it("says where to cd as a shell takes it: relative below the working directory, else absolute, quoted when it must be", () => {
    const spaced = scaffold({ dir: fresh('Page Views') });
    expect(cdOf(spaced, dirname(dirname(spaced.dir)))).toBe(shellWord(relative(dirname(dirname(spaced.dir)), spaced.dir)));
    expect(cdOf(spaced, dirname(dirname(spaced.dir)))).toContain('Page\\ Views');
    expect(cdOf(spaced, join(root, 'elsewhere'))).toBe(shellWord(spaced.dir));
    expect(cdOf(spaced, spaced.dir)).toBeUndefined();
    const plain = scaffold({ dir: fresh() });
    expect(cdOf(plain, dirname(plain.dir))).toBe('pipeline');
    expect(cdOf(plain, join(root, 'elsewhere'))).toBe(plain.dir);
  });

  it('says to install this package from the checkout it runs in (the registry may not have it), from the registry when installed', () => {
    expect(installSteps('/home/me/app/node_modules/durable-backfill', 'durable-backfill', '0.3.0', () => false)).toEqual(['npm install']);
    const packed = installSteps('/src/backfill', 'durable-backfill', '0.3.0', (path) => path === '/src/backfill/durable-backfill-0.3.0.tgz');
    expect(packed).toEqual(['npm install /src/backfill/durable-backfill-0.3.0.tgz']);
    const unpacked = installSteps('/src/my backfill', 'durable-backfill', '0.3.0', () => false);
    expect(unpacked).toEqual([expect.stringMatching(/^\(cd \/src\/my\\ backfill && npm pack\) +# builds dist\/ and writes durable-backfill-0\.3\.0\.tgz$/), 'npm install /src/my\\ backfill/durable-backfill-0.3.0.tgz']);
    // This test runs from the checkout: its next steps never say plain npm install.
    expect(stripVTControlCharacters(renderInit(scaffold({ dir: fresh() })))).not.toMatch(/^  npm install$/m);
  });

  it("with --force after npm init -y, replaces npm's failing placeholder test script with the scaffold's", () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true });
    execFileSync('npm', ['init', '-y'], { cwd: dir, stdio: 'ignore' });
    const placeholder = manifest(dir).scripts.test;
    expect(placeholder).toMatch(/no test specified.*exit 1/);
    const result = scaffold({ dir, force: true });
    expect(result.keptScripts).toEqual([]);
    // The project's README says npm test type-checks the transforms and validates the spec.
    expect(manifest(dir).scripts.test).toBe('tsc --noEmit && backfill plan backfill.yaml');
    expect(stripVTControlCharacters(renderInit(result))).not.toContain('kept');
  });

  it("its README says where the data lands, with BACKFILL_HOME set or not, and where the Temporal CLI goes", () => {
    const dir = fresh();
    scaffold({ dir });
    const readme = readFileSync(join(dir, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    const home = process.env.BACKFILL_HOME;
    try {
      delete process.env.BACKFILL_HOME;
      expect(warehouseTarget(undefined)).toBe(join(process.cwd(), '.backfill', 'warehouse.db'));
      process.env.BACKFILL_HOME = join(dir, 'elsewhere');
      expect(warehouseTarget(undefined)).toBe(join(dir, 'elsewhere', 'warehouse.db'));
    } finally {
      if (home === undefined) delete process.env.BACKFILL_HOME;
      else process.env.BACKFILL_HOME = home;
    }
    // Before, it named only .backfill/warehouse.db, where nothing lands once BACKFILL_HOME is set.
    expect(readme).toContain('`.backfill/warehouse.db` (`$BACKFILL_HOME/warehouse.db` when `BACKFILL_HOME` is set');
    expect(readme).toContain('a cache that every `BACKFILL_HOME` shares');
    expect(readme).not.toContain('into `.backfill/bin`');
  });

  it('refuses a package.json it cannot read, naming the file', () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{ not json');
    expect(thrownBackfillError(() => scaffold({ dir, force: true })).message).toMatch(/package\.json cannot be read as a package\.json .*: fix or remove it/);
    // Before anything is written: the directory is as it was.
    expect(readdirSync(dir)).toEqual(['package.json']);
  });

  it('names the project after its directory, as npm allows', () => {
    expect(['/x/My Pipeline', '/x/.hidden', '/x/data.sync~2', '/x/__'].map(projectName)).toEqual(['my-pipeline', 'hidden', 'data.sync~2', 'pipeline']);
  });
});
