/** The environment, read once at the edge: settingsFromEnv, and the flags commander fills from variables. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli } from './run-cli.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { backfillHome, settingsFromEnv } from '../../host/settings.ts';
import { ROOT } from './build-sources.ts';
import { modulesUnder } from './import-graph.ts';

describe('settingsFromEnv', () => {
  it('reads the variables no flag sets; empty counts as unset', () => {
    expect(settingsFromEnv({})).toEqual({ home: resolve('.backfill'), sharedDatasets: false });
    expect(
      settingsFromEnv({
        BACKFILL_HOME: '/data',
        BACKFILL_UI_URL: 'https://temporal.example/',
        BACKFILL_TASK_QUEUE: 'nightly',
        BACKFILL_SHARED_DATASETS: 'yes',
        BACKFILL_WORKFLOW_BUNDLE: '/bundle.js',
        BACKFILL_LOG_LEVEL: 'debug',
      }),
    ).toEqual({ home: '/data', uiUrl: 'https://temporal.example/', taskQueue: 'nightly', sharedDatasets: true, workflowBundle: '/bundle.js', logLevel: 'debug' });
    expect(settingsFromEnv({ BACKFILL_HOME: '', BACKFILL_UI_URL: '', BACKFILL_TASK_QUEUE: '', BACKFILL_SHARED_DATASETS: '0' })).toEqual({ home: resolve('.backfill'), sharedDatasets: false });
  });

  it('takes 1, true or yes (any case) to share datasets', () => {
    for (const yes of ['1', 'true', 'TRUE', 'yes']) expect(settingsFromEnv({ BACKFILL_SHARED_DATASETS: yes }).sharedDatasets, yes).toBe(true);
    for (const no of ['0', 'false', 'no', 'on']) expect(settingsFromEnv({ BACKFILL_SHARED_DATASETS: no }).sharedDatasets, no).toBe(false);
  });

  it('resolves the home directory from the working directory', () => {
    expect(backfillHome({ BACKFILL_HOME: 'state' })).toBe(resolve('state'));
  });
});

describe('the environment is read at the edge', () => {
  /** Where the product may read process.env: the settings, and the readers of other tools' own variables. */
  const READERS = [
    'host/settings.ts', // BACKFILL_*
    'client/connection.ts', // TEMPORAL_*, through Temporal's envconfig
    'workers/tracing.ts', // OTEL_*, OpenTelemetry's own
    'activities/lineage/config.ts', // OPENLINEAGE_*, OpenLineage's own
    'host/temporal-cli.ts', // TEMPORAL_CLI_PATH and PATH, to find the binary
    'activities/warehouse/index.ts', // BACKFILL_WAREHOUSE, openWarehouse's default for callers of the library
  ];

  it('reads process.env nowhere else', () => {
    const modules = ['core', 'workflows', 'activities', 'workers', 'client', 'host'].flatMap(modulesUnder);
    const readers = modules.filter((module) => /process\.env\b/.test(readFileSync(join(ROOT, module), 'utf8')));
    expect(readers.filter((module) => !READERS.includes(module))).toEqual([]);
  });
});

describe('flags filled from variables', () => {
  const EXAMPLE = new URL('../../examples/shop/backfill.yaml', import.meta.url).pathname;

  function cli(env: Record<string, string>, ...args: string[]): Promise<{ stdout: string; code: number }> {
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    return runCli(...args);
  }

  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('BACKFILL_WAREHOUSE and BACKFILL_CODE_VERSION are no --warehouse and --code-version given without --only-changed', async () => {
    const planned = await cli({ BACKFILL_WAREHOUSE: '/nowhere/w.db', BACKFILL_CODE_VERSION: 'v9' }, 'plan', EXAMPLE, '--json');
    expect(planned.code).toBe(0);
    expect(JSON.parse(planned.stdout)).toMatchObject({ name: 'shop', totalPartitions: 1528 });
    const refused = await cli({ BACKFILL_WAREHOUSE: '/nowhere/w.db' }, 'plan', EXAMPLE, '--code-version', 'v9', '--json');
    expect(JSON.parse(refused.stdout).error.message).toBe('--code-version only matters with --only-changed: add --only-changed, or leave it out');
  });

  it('--only-changed reads the ledger of the warehouse and code version the variables name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-settings-'));
    try {
      const warehouse = join(dir, 'w.db');
      // A warehouse the workers made (an empty one: nothing published yet); one that is not there is refused.
      const made = new SqliteWarehouse(warehouse);
      await made.identity();
      await made.close();
      const planned = await cli({ BACKFILL_WAREHOUSE: warehouse, BACKFILL_CODE_VERSION: 'v9' }, 'plan', EXAMPLE, '--only-changed', '--json');
      expect(planned.code).toBe(0);
      expect(JSON.parse(planned.stdout).onlyChanged).toMatchObject({ warehouse, codeVersion: 'v9', totalToRun: 1528, totalSkipped: 0 });
      const flagged = await cli({ BACKFILL_CODE_VERSION: 'v9' }, 'plan', EXAMPLE, '--only-changed', '--warehouse', warehouse, '--code-version', 'v10', '--json');
      expect(JSON.parse(flagged.stdout).onlyChanged).toMatchObject({ warehouse, codeVersion: 'v10' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a BACKFILL_LOG_FORMAT outside the choices is refused, naming the variable', async () => {
    const refused = await cli({ BACKFILL_LOG_FORMAT: 'yaml' }, 'worker', '--json');
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout).error).toEqual({
      code: 'invalid_argument',
      message: "option '--log-format <format>' value 'yaml' from env 'BACKFILL_LOG_FORMAT' is invalid. Allowed choices are text, json.",
    });
  });
});
