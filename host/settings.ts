/**
 * The environment, read once at the edge. The command line and the worker entry (`backfill
 * worker`, `dev`, `demo`) take these settings from `settingsFromEnv()` and hand them on as
 * values: the client library, the workers and the warehouses take values, not variables.
 *
 * Which variable is read where:
 *   - here: BACKFILL_HOME, BACKFILL_UI_URL, BACKFILL_TASK_QUEUE, BACKFILL_SHARED_DATASETS,
 *     BACKFILL_WORKFLOW_BUNDLE, BACKFILL_LOG_LEVEL and BACKFILL_WAREHOUSE_ADAPTERS, which no flag sets;
 *   - by commander (`.env()` on the flag they back): BACKFILL_WAREHOUSE (--warehouse),
 *     BACKFILL_CODE_VERSION (--code-version), BACKFILL_LOG_FORMAT (--log-format),
 *     BACKFILL_TRANSFORMS (--transforms) and BACKFILL_POLICY (--policy);
 *   - TEMPORAL_* by Temporal's environment configuration (client/connection.ts), OTEL_* by
 *     OpenTelemetry (workers/tracing.ts), TEMPORAL_CLI_PATH, BACKFILL_CLI_CACHE
 *     and XDG_CACHE_HOME by the CLI's resolver (temporal-cli.ts).
 */
import { resolve } from 'node:path';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The Web UI a library client's links point at when it is told of none: the dev server's default.
 * The command line prints no such guess (client/web-ui.ts).
 */
export const DEFAULT_UI_URL = 'http://localhost:8233';

export type Settings = {
  /** Where `dev`, `demo` and a default SQLite warehouse keep their state: $BACKFILL_HOME, else ./.backfill. */
  home: string;
  /** The Web UI that printed links point at ($BACKFILL_UI_URL); unset: see client/web-ui.ts. */
  uiUrl?: string;
  /** The workflow task queue new backfills start on ($BACKFILL_TASK_QUEUE); unset: `backfill`. */
  taskQueue?: string;
  /** Let backfills write datasets that running backfills write ($BACKFILL_SHARED_DATASETS=1, true or yes). */
  sharedDatasets: boolean;
  /** A prebuilt workflow bundle for workers ($BACKFILL_WORKFLOW_BUNDLE). */
  workflowBundle?: string;
  /** The workers' log level ($BACKFILL_LOG_LEVEL); unset: INFO for JSON logs, WARN for text. */
  logLevel?: string;
  /** Warehouse adapter modules by scheme ($BACKFILL_WAREHOUSE_ADAPTERS, `scheme=module,…`: activities/warehouse/registry.ts). */
  warehouseAdapters?: string;
};

/** A variable's value; an empty one counts as unset. */
function value(env: Env, name: string): string | undefined {
  const text = env[name];
  return text === undefined || text === '' ? undefined : text;
}

/** $BACKFILL_HOME, else ./.backfill, as an absolute path. */
export function backfillHome(env: Env = process.env): string {
  return resolve(value(env, 'BACKFILL_HOME') ?? '.backfill');
}

export function settingsFromEnv(env: Env = process.env): Settings {
  const settings: Settings = { home: backfillHome(env), sharedDatasets: /^(1|true|yes)$/i.test(env.BACKFILL_SHARED_DATASETS ?? '') };
  const uiUrl = value(env, 'BACKFILL_UI_URL');
  const taskQueue = value(env, 'BACKFILL_TASK_QUEUE');
  const workflowBundle = value(env, 'BACKFILL_WORKFLOW_BUNDLE');
  const logLevel = value(env, 'BACKFILL_LOG_LEVEL');
  const warehouseAdapters = value(env, 'BACKFILL_WAREHOUSE_ADAPTERS');
  return {
    ...settings,
    ...(uiUrl !== undefined ? { uiUrl } : {}),
    ...(taskQueue !== undefined ? { taskQueue } : {}),
    ...(workflowBundle !== undefined ? { workflowBundle } : {}),
    ...(logLevel !== undefined ? { logLevel } : {}),
    ...(warehouseAdapters !== undefined ? { warehouseAdapters } : {}),
  };
}
