/** Which warehouse a location opens: known schemes only, and nothing created for a mistyped one. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { BackfillError } from '../../core/errors.ts';
import { loadWarehouseAdapters, openWarehouse, registerWarehouse, warehouseExists } from '../../activities/warehouse/index.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'backfill-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openWarehouse', () => {
  it('refuses a location of an unknown scheme, naming the known ones, and creates nothing', () => {
    const before = readdirSync(process.cwd());
    for (const location of ['postgress://backfill:s3cret@db.internal/warehouse', 'lakes:///data/lake', 'mysql://root:s3cret@localhost/db', 'duckdb:warehouse.db']) {
      let error: unknown;
      try {
        openWarehouse(location, { inline: true });
      } catch (e) {
        error = e;
      }
      expect(error, location).toBeInstanceOf(BackfillError);
      expect((error as BackfillError).code).toBe('invalid_argument');
      expect((error as Error).message).toMatch(/postgres:\/\/…, postgresql:\/\/…, sqlite:…, lake:…/);
      expect((error as Error).message).not.toContain('s3cret');
    }
    expect(readdirSync(process.cwd())).toEqual(before);
    expect(existsSync(join(process.cwd(), 'lakes:'))).toBe(false);
  });

  it('opens SQLite from a plain path or a sqlite: URL', async () => {
    for (const location of [join(dir, 'plain.db'), `sqlite:${join(dir, 'prefixed.db')}`, `sqlite://${join(dir, 'slashes.db')}`]) {
      const warehouse = openWarehouse(location, { inline: true });
      expect(warehouse.kind).toBe('sqlite');
      await warehouse.publish({
        node: 'orders', partition: 'k', backfillId: 'b', runKey: 'r', workflowId: 'w', data: { rows: [{ a: 1 }], selects: [] },
        checks: [], transform: 't', params: {}, codeVersion: 'c', inputs: [], attempt: 1, startedAt: 0,
      });
      await warehouse.close();
    }
    expect(readdirSync(dir).filter((f) => f.endsWith('.db')).sort()).toEqual(['plain.db', 'prefixed.db', 'slashes.db']);
  });

  it('opens a lake from lake:///absolute/path, creating it on first use, and refuses a lake URL without a directory', async () => {
    const root = join(dir, 'lake');
    const warehouse = openWarehouse(`lake://${root}`, { inline: true });
    expect(warehouse.kind).toBe('lake');
    expect(warehouse.location).toBe(root);
    expect(existsSync(root)).toBe(false);
    await warehouse.publish({
      node: 'orders', partition: 'k', backfillId: 'b', runKey: 'r', workflowId: 'w', data: { rows: [{ a: 1 }], selects: [] },
      checks: [], transform: 't', params: {}, codeVersion: 'c', inputs: [], attempt: 1, startedAt: 0,
    });
    expect(await warehouse.query('SELECT a FROM orders')).toEqual([{ a: 1 }]);
    await warehouse.close();
    expect(existsSync(join(root, 'orders', 'k.parquet'))).toBe(true);
    expect(warehouseExists(`lake://${root}`)).toBe(true);
    expect(warehouseExists(`lake://${join(dir, 'no-lake')}`)).toBe(false);
    expect(existsSync(join(dir, 'no-lake'))).toBe(false);
    for (const location of ['lake:', 'lake://']) {
      expect(() => openWarehouse(location, { inline: true }), location).toThrow(/names no directory: use lake:\/\/\/absolute\/path/);
    }
  });

  it('refuses a lake URL with a host (two slashes) instead of making a lake below the working directory, and a lake path DuckDB would read as a pattern', () => {
    for (const location of ['lake://srv/lake', 'LAKE://data']) {
      expect(() => openWarehouse(location, { inline: true }), location).toThrow(/names a host \((srv|data)\), and a lake is a local directory: use lake:\/\/\/(srv\/lake|data) \(three slashes\)/);
      expect(() => warehouseExists(location), location).toThrow(/names a host/);
    }
    expect(existsSync(join(process.cwd(), 'srv'))).toBe(false);
    for (const name of ['lake[1]', 'lake?', 'lake*']) {
      expect(() => openWarehouse(`lake://${join(dir, name)}`, { inline: true }), name).toThrow(/has '[[*?]' in its path, which DuckDB reads as a file pattern.*choose a directory without \* \? \[ \]/);
    }
    // Relative paths without slashes, spaces and other characters stay as they were.
    expect(openWarehouse('lake:data/lake', { inline: true }).location).toBe(join(process.cwd(), 'data', 'lake'));
    expect(openWarehouse(`lake://${join(dir, 'my läke {x}')}`, { inline: true }).location).toBe(join(dir, 'my läke {x}'));
  });

  it('opens a registered scheme through its adapter, and still refuses the others, naming the registered ones', () => {
    const opened: Array<[string, boolean]> = [];
    const fake = { kind: 'memo' } as unknown as Warehouse;
    registerWarehouse({ scheme: 'memo', open: (location, options) => (opened.push([location, options.inline]), fake) });
    expect(openWarehouse('MEMO://bucket/x', { inline: true })).toBe(fake);
    expect(openWarehouse('memo:somewhere')).toBe(fake);
    expect(opened).toEqual([
      ['MEMO://bucket/x', true],
      ['memo:somewhere', false],
    ]);
    expect(() => openWarehouse('memoo://x', { inline: true })).toThrow(/scheme 'memoo:', which backfill does not know: use postgres:\/\/…, postgresql:\/\/…, sqlite:…, lake:…, memo:…/);
    expect(() => openWarehouse('memoo://x', { inline: true })).toThrow(/BACKFILL_WAREHOUSE_ADAPTERS: docs\/warehouses\.md/);
  });

  it('refuses an adapter for a built-in scheme, a taken one or one that is not a scheme', () => {
    const open = () => ({}) as Warehouse;
    registerWarehouse({ scheme: 'twice', open });
    registerWarehouse({ scheme: 'twice:', open });
    const cases: Array<[() => void, RegExp]> = [
      [() => registerWarehouse({ scheme: 'postgres', open }), /'postgres:' is built into backfill and cannot be replaced/],
      [() => registerWarehouse({ scheme: 'SQLite', open }), /'sqlite:' is built into backfill/],
      [() => registerWarehouse({ scheme: 'twice', open: () => ({}) as Warehouse }), /another warehouse adapter is already registered for 'twice:'/],
      [() => registerWarehouse({ scheme: '1bad', open }), /must be a URL scheme .* not '1bad'/],
      [() => registerWarehouse({ scheme: 'noopen' } as unknown as Parameters<typeof registerWarehouse>[0]), /'noopen:' has no open\(location, options\) function/],
    ];
    for (const [register, message] of cases) {
      expect(register).toThrow(BackfillError);
      expect(register).toThrow(message);
    }
  });

  it('loads adapter modules named in BACKFILL_WAREHOUSE_ADAPTERS, relative to the working directory, and says what is wrong with one', async () => {
    writeFileSync(join(dir, 'adapter.mjs'), "export const warehouseAdapter = { scheme: 'fromfile', open: (location) => ({ kind: 'fromfile', location }) };\n");
    writeFileSync(join(dir, 'nothing.mjs'), 'export const other = 1;\n');
    await loadWarehouseAdapters(' fromfile=./adapter.mjs ,', dir);
    expect(openWarehouse('fromfile://x', { inline: true })).toEqual({ kind: 'fromfile', location: 'fromfile://x' });
    const cases: Array<[string, RegExp]> = [
      ['fromfile', /entry 'fromfile' is not scheme=module: e\.g\. bigquery=\.\/adapters\/bigquery\.js/],
      ['other=./adapter.mjs', /exports the adapter for 'fromfile:', not 'other:'/],
      ['none=./nothing.mjs', /exports no warehouseAdapter: export const warehouseAdapter = \{ scheme: 'none'/],
      ['gone=./missing.mjs', /cannot load the warehouse adapter for 'gone:' from \.\/missing\.mjs/],
    ];
    for (const [list, message] of cases) await expect(loadWarehouseAdapters(list, dir), list).rejects.toThrow(message);
    await loadWarehouseAdapters(undefined);
    await loadWarehouseAdapters('  ');
  });
  it("loads an adapter package by its name from the user's project (the working directory's node_modules, or a parent's), not from backfill's own install", async () => {
    const project = join(dir, 'project');
    const install = (at: string, name: string, pkg: Record<string, unknown>, files: Record<string, string>) => {
      const root = join(at, 'node_modules', ...name.split('/'));
      mkdirSync(join(root, 'dist'), { recursive: true });
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name, version: '1.0.0', ...pkg }));
      for (const [file, text] of Object.entries(files)) writeFileSync(join(root, file), text);
    };
    const adapter = (scheme: string) => `export const warehouseAdapter = { scheme: '${scheme}', open: (location) => ({ kind: '${scheme}', location }) };\n`;
    // ESM-only, its entry for import only (require could not resolve it); scoped, by exports' subpath; CommonJS by main; in a parent directory.
    install(project, 'my-adapter', { type: 'module', exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } } }, { 'dist/index.js': adapter('mine') });
    install(project, '@acme/adapters', { type: 'module', exports: { './lake': { import: './dist/lake.js' }, './package.json': './package.json' } }, { 'dist/lake.js': adapter('acme') });
    install(project, 'old-adapter', { main: 'dist/main' }, { 'dist/main.js': "exports.warehouseAdapter = { scheme: 'old', open: (location) => ({ kind: 'old', location }) };\n" });
    install(dir, 'parent-adapter', { type: 'module' }, { 'index.js': adapter('up') });
    mkdirSync(join(project, 'sub'), { recursive: true });
    await loadWarehouseAdapters('mine=my-adapter,acme=@acme/adapters/lake,old=old-adapter,up=parent-adapter', join(project, 'sub'));
    for (const scheme of ['mine', 'acme', 'old', 'up']) expect(openWarehouse(`${scheme}://x`, { inline: true })).toEqual({ kind: scheme, location: `${scheme}://x` });

    const error = await loadWarehouseAdapters('gone=not-installed-adapter', project).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(BackfillError);
    const message = (error as Error).message;
    expect(message).toContain(`cannot load the warehouse adapter for 'gone:' from not-installed-adapter: no package not-installed-adapter in the node_modules of ${project} or of a directory above it`);
    expect(message).toMatch(/install it in your project \(npm install not-installed-adapter\), or name its module by path/);
    // Not in the project, one beside backfill's own install is still found (zod is one of its dependencies).
    await expect(loadWarehouseAdapters('z=zod', project)).rejects.toThrow(/the module zod exports no warehouseAdapter/);
    await expect(loadWarehouseAdapters('bad=@acme/adapters/missing', project)).rejects.toThrow(/cannot load the warehouse adapter for 'bad:' from @acme\/adapters\/missing: .*'\.\/missing' is not defined by "exports"/);
  });

  it('lets an adapter registered for lake: take the bundled lake\'s place (this test comes last: the registry is the process\'s)', () => {
    const mine = { kind: 'my-lake' } as unknown as Warehouse;
    registerWarehouse({ scheme: 'lake', open: () => mine });
    expect(openWarehouse(`lake://${join(dir, 'elsewhere')}`, { inline: true })).toBe(mine);
    expect(() => registerWarehouse({ scheme: 'lake', open: () => mine })).toThrow(/another warehouse adapter is already registered for 'lake:'/);
  });
});
