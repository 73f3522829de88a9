/**
 * The npm package as a data team gets it: packed (scripts/pack.ts caches the build and the
 * tarball), installed into a fresh project, `npx durable-backfill init`, `npm install`,
 * `npm run plan`, and a backfill of the scaffold run by the installed worker on a dev server of
 * its own. The package is durable-backfill (npm's `backfill` is an unrelated project): nothing
 * of that name may come from the registry. The installed package runs its compiled code: it
 * holds no TypeScript of its own, and runs without tsx.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../../host/dev-server.ts';
import { installTarball, packTarball, run } from '../../scripts/pack.ts';
import { packageJson } from '../../host/package.ts';
import { WorkerProcess } from '../../scripts/worker-process.ts';

type Cli = { code: number; stdout: string; stderr: string; json: unknown };

/**
 * `npx --no backfill …` in `cwd`: the installed bin, never a download (--no). With `as`, the
 * package's name instead of the command's (`npx durable-backfill init`: npx runs its one bin).
 */
function npx(cwd: string, args: string[], env: Record<string, string> = {}, as = 'backfill'): Promise<Cli> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  return new Promise((done) => {
    execFile('npx', ['--no', as, ...args], { cwd, env: { ...clean, NO_COLOR: '1', ...env }, timeout: 240_000 }, (error, stdout, stderr) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr, json });
    });
  });
}

const timings: Record<string, string> = {};
async function timed<T>(label: string, step: () => Promise<T>): Promise<T> {
  const began = Date.now();
  try {
    return await step();
  } finally {
    timings[label] = `${((Date.now() - began) / 1000).toFixed(1)} s`;
  }
}

describe('the npm package', () => {
  let project: string | undefined;
  let server: DevServer | undefined;
  let worker: WorkerProcess | undefined;

  afterAll(async () => {
    await worker?.stop();
    await server?.stop();
    if (project && !process.env.BACKFILL_KEEP_TEST_FILES) rmSync(project, { recursive: true, force: true });
    console.info(`package test timings: ${JSON.stringify(timings)}`);
  });

  it('installs from its tarball; init, plan and a backfill of the scaffold work at once, on compiled code', async () => {
    const { path: tarball, cached } = await timed('pack', packTarball);
    timings.packCached = String(cached);
    const listing = (await run('tar', ['-tzf', tarball], { cwd: tmpdir() })).stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    expect(listing.filter((f) => /\.[mc]?ts$/.test(f) && !f.endsWith('.d.ts') && !f.startsWith('templates/'))).toEqual([]);
    expect(listing.filter((f) => /^(test|scripts|client|core)\/|thread\.mjs$/.test(f))).toEqual([]);
    expect(listing).toEqual(
      expect.arrayContaining([
        'bin/backfill.js', 'dist/client/main.js', 'dist/index.js', 'dist/index.d.ts', 'dist/workers/index.d.ts',
        'dist/workflow-bundle.js', 'dist/workflow-bundle-tracing.js', 'dist/activities/warehouse/sqlite/thread.js',
        'dist/host/temporal-cli.js', 'dist/host/dev-server.js', 'dist/host/settings.js', 'dist/transforms.js', 'dist/transforms.d.ts',
        'dist/examples/shop/backfill.yaml', 'templates/init/transforms.ts',
      ]),
    );
    expect(listing.filter((f) => f.startsWith('dist/scripts/'))).toEqual([]);

    const dir = (project = mkdtempSync(join(tmpdir(), 'backfill-package-')));
    await timed('install', () => installTarball(tarball, dir));

    // npx runs the package's one bin, `backfill`, from the project: nothing is downloaded (--no).
    const refused = await npx(dir, ['init'], {}, 'durable-backfill');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is not empty .*add --force/);
    const init = await timed('init', () => npx(dir, ['init', '--force', '--json'], {}, 'durable-backfill'));
    expect(init.json).toMatchObject({ packageJson: 'updated', written: expect.arrayContaining(['backfill.yaml', 'transforms.ts']) });
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
    expect(manifest.dependencies['durable-backfill']).toMatch(/^file:.*\.tgz$/);
    expect(manifest.dependencies.backfill).toBeUndefined();
    expect(manifest.scripts.plan).toBe('backfill plan backfill.yaml');
    expect(readFileSync(join(dir, 'transforms.ts'), 'utf8')).toContain("from 'durable-backfill/transforms';");

    const plan = await timed('plan', () => npx(dir, ['plan', 'backfill.yaml', '--json']));
    expect(plan.stderr).toBe('');
    expect(plan.json).toMatchObject({ totalPartitions: 175, nodes: [{ id: 'page_views', grain: 'hour', partitions: 168 }, { id: 'daily_pages', grain: 'day', partitions: 7 }] });
    // The scaffold's own steps: `npm install`, `npm run plan`, and `npm test`, which type-checks
    // transforms.ts against the package's declarations, then plans.
    await timed('npm install + npm run plan + npm test', async () => {
      const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir });
      // The scaffold allows the install scripts its dependencies need (npm 11.16 lists the others; npm 12 skips them).
      expect(`${installed.stdout}${installed.stderr}`).not.toMatch(/not yet covered by allowScripts/);
      expect((await run('npm', ['run', 'plan'], { cwd: dir })).stdout).toContain('175 partitions in 2 nodes');
      expect((await run('npm', ['test'], { cwd: dir })).stdout).toContain('175 partitions in 2 nodes');
    });
    // Nothing named backfill came from the registry: the lockfile knows durable-backfill, from the tarball.
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string }> };
    expect(Object.keys(lock.packages).filter((path) => /(^|\/)node_modules\/backfill$/.test(path))).toEqual([]);
    expect(lock.packages['node_modules/durable-backfill']?.resolved).toMatch(/^file:.*\.tgz$/);

    // The public entry points resolve through package.json "exports"; compiled, the worker takes the
    // prebuilt workflow bundles, and the Temporal CLI's cache is the project's.
    const installed = join(dir, 'node_modules', 'durable-backfill', 'dist');
    const probe = `delete process.env.BACKFILL_HOME;
      const api = await import('durable-backfill');
      const workerApi = await import('durable-backfill/worker');
      const transformsApi = await import('durable-backfill/transforms');
      const worker = await import(${JSON.stringify(join(installed, 'workers/worker.js'))});
      const cli = await import(${JSON.stringify(join(installed, 'host/temporal-cli.js'))});
      console.log(JSON.stringify({
        api: ['defineTransforms', 'ThrottledError', 'NonRetryableError', 'BackfillClient', 'resolveSpec', 'loadSpecFile'].filter((name) => typeof api[name] !== 'function'),
        workerApi: ['createWorkers', 'openWarehouse', 'loadTransforms'].filter((name) => typeof workerApi[name] !== 'function'),
        transformsApi: ['defineTransforms', 'ThrottledError', 'NonRetryableError', 'seededRandom', 'unitHash'].filter((name) => typeof transformsApi[name] !== 'function'),
        plain: worker.packagedBundle(false), tracing: worker.packagedBundle(true), cache: cli.CLI_CACHE_DIR,
      }));`;
    const probed = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: dir });
    expect(JSON.parse(probed.stdout)).toEqual({
      api: [],
      workerApi: [],
      transformsApi: [],
      plain: { codePath: join(installed, 'workflow-bundle.js') },
      tracing: { codePath: join(installed, 'workflow-bundle-tracing.js') },
      cache: join(dir, '.backfill', 'bin'),
    });

    const warehouse = join(dir, '.backfill', 'warehouse.db');
    server = await timed('dev server', () => startDevServer({ dbFile: join(dir, '.backfill', 'temporal.db'), uiPort: null }));
    const env = { TEMPORAL_ADDRESS: server.address };
    worker = new WorkerProcess({ bin: join(dir, 'node_modules', '.bin', 'backfill'), address: server.address, warehouse, transforms: [join(dir, 'transforms.ts')] });
    await timed('worker start', () => worker!.start());

    const backfill = await timed('backfill', async () => {
      const started = await npx(dir, ['start', 'backfill.yaml', '--id', 'scaffold-day', '--from', '2024-01-01', '--to', '2024-01-02', '--json'], env);
      expect(started.json).toMatchObject({ backfillId: 'scaffold-day' });
      return npx(dir, ['wait', 'scaffold-day', '--timeout', '3m', '--json'], env);
    });
    expect(backfill.json).toMatchObject({ state: 'completed', progress: { done: 25, total: 25, failed: 0 } });
    const lineage = await npx(dir, ['lineage', 'daily_pages', '2024-01-01', '--warehouse', warehouse, '--json']);
    expect(lineage.json).toMatchObject({ current: { backfillId: 'scaffold-day', rowCount: 5, codeVersion: `backfill@${packageJson().version}` } });

    // A warehouse adapter written in TypeScript loads as transforms do (it failed: "Unknown file extension '.ts'").
    mkdirSync(join(dir, 'adapters'), { recursive: true });
    writeFileSync(
      join(dir, 'adapters', 'mine.ts'),
      [
        "import { fileURLToPath } from 'node:url';",
        "import { SqlWarehouse, SqliteDialect, type WarehouseAdapter } from 'durable-backfill/warehouse';",
        "export const warehouseAdapter: WarehouseAdapter = { scheme: 'mine', open: (location: string) => new SqlWarehouse(new SqliteDialect(fileURLToPath(location.replace(/^mine:/, 'file:')))) };",
        '',
      ].join('\n'),
    );
    const adapted = await npx(dir, ['lineage', 'daily_pages', '2024-01-01', '--warehouse', `mine://${warehouse}`, '--json'], { BACKFILL_WAREHOUSE_ADAPTERS: 'mine=./adapters/mine.ts' });
    expect(adapted.json, adapted.stderr).toMatchObject({ current: { backfillId: 'scaffold-day', rowCount: 5 } });

    // Transforms in TypeScript outside a "type": "module" package (Node takes a .ts file there for
    // CommonJS): they load too (they failed: "Cannot require() ES Module … in a cycle").
    mkdirSync(join(dir, 'loose'), { recursive: true });
    writeFileSync(join(dir, 'loose', 'package.json'), '{}\n');
    copyFileSync(join(dir, 'transforms.ts'), join(dir, 'loose', 'transforms.ts'));
    copyFileSync(join(dir, 'backfill.yaml'), join(dir, 'loose', 'backfill.yaml'));
    const loose = await npx(dir, ['plan', 'loose/backfill.yaml', '--json']);
    expect(loose.json, loose.stderr).toMatchObject({ totalPartitions: 175 });

    // Without tsx the package runs on: a spec in JavaScript loads; one in TypeScript fails, naming the fix.
    rmSync(join(dir, 'node_modules', 'tsx'), { recursive: true, force: true });
    copyFileSync(join(dir, 'transforms.ts'), join(dir, 'transforms.mjs'));
    writeFileSync(join(dir, 'js.yaml'), readFileSync(join(dir, 'backfill.yaml'), 'utf8').replace('./transforms.ts', './transforms.mjs'));
    expect((await npx(dir, ['plan', 'js.yaml', '--json'])).json).toMatchObject({ totalPartitions: 175 });
    const typescript = await npx(dir, ['plan', 'backfill.yaml', '--json']);
    expect(typescript.code).toBe(1);
    expect(typescript.json).toMatchObject({ error: { code: 'invalid_spec', message: expect.stringMatching(/transforms\.ts: .*install tsx \(npm install tsx\), or write the module in JavaScript/) } });
  }, 900_000);
});
