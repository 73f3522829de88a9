/** The local stack of `backfill dev` and `backfill demo`: a dev server on a SQLite file and a worker. */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { openWarehouse, type Warehouse } from '../activities/warehouse/index.ts';
import { loadTransforms } from '../activities/transforms.ts';
import { freePort, startDevServer, type DevServer } from '../scripts/dev-server.ts';
import { backfillHome } from '../scripts/temporal-cli.ts';
import { createWorkers, type BackfillWorkers, type QueueConfig } from '../workers/worker.ts';
import { ensureSearchAttributes } from './search-attributes.ts';

/** The example's transforms, loaded by `dev` and `demo` unless others are named. */
export const EXAMPLE_TRANSFORMS = fileURLToPath(new URL('../examples/shop/transforms.ts', import.meta.url));

let runtimeInstalled = false;
/** Quiet SDK logs (warnings and errors only) unless BACKFILL_LOG_LEVEL says otherwise. */
export function installRuntime(): void {
  if (runtimeInstalled) return;
  const level = (process.env.BACKFILL_LOG_LEVEL ?? 'WARN').toUpperCase() as 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  Runtime.install({ logger: new DefaultLogger(level) });
  runtimeInstalled = true;
}

/** Transform modules from --transforms, else $BACKFILL_TRANSFORMS (comma-separated), else `fallback`. */
export function transformModules(flags: string[] | undefined, fallback: string[] = []): string[] {
  if (flags && flags.length > 0) return flags.map((m) => resolve(m));
  const fromEnv = process.env.BACKFILL_TRANSFORMS?.split(',').map((m) => m.trim()).filter(Boolean);
  if (fromEnv && fromEnv.length > 0) return fromEnv.map((m) => resolve(m));
  return fallback;
}

/** Parses `name` or `name=maxActivitiesPerSecond` task-queue flags. */
export function parseQueues(flags: string[] | undefined, fallback: string): QueueConfig[] {
  const entries = flags && flags.length > 0 ? flags : [fallback];
  return entries.map((entry) => {
    const [name, perSecond] = entry.split('=');
    if (!name) throw new Error(`--task-queue '${entry}': write name or name=maxActivitiesPerSecond`);
    if (perSecond === undefined) return { name };
    const value = Number(perSecond);
    if (!(value > 0)) throw new Error(`--task-queue '${entry}': the rate after '=' must be a number above 0`);
    return { name, maxActivitiesPerSecond: value };
  });
}

export type WorkerProcessOptions = {
  address: string;
  namespace: string;
  transforms: string[];
  queues: QueueConfig[];
  workflowQueue: string;
  workflows: boolean;
  warehouse?: string;
};

export type RunningWorker = { workers: BackfillWorkers; warehouse: Warehouse; connection: NativeConnection; done: Promise<void>; stop(): Promise<void> };

export async function startWorker(options: WorkerProcessOptions): Promise<RunningWorker> {
  installRuntime();
  const connection = await NativeConnection.connect({ address: options.address });
  await ensureSearchAttributes(connection, options.namespace);
  const warehouse = openWarehouse(options.warehouse);
  const workers = await createWorkers({
    connection,
    namespace: options.namespace,
    workflowQueue: options.workflowQueue,
    activityQueues: options.queues,
    workflows: options.workflows,
    warehouse,
    transforms: await loadTransforms(options.transforms),
  });
  const done = workers.run();
  let stopped: Promise<void> | undefined;
  return {
    workers,
    warehouse,
    connection,
    done,
    stop: () =>
      (stopped ??= (async () => {
        workers.shutdown();
        await done.catch(() => undefined);
        await connection.close();
        await warehouse.close();
      })()),
  };
}

export type LocalStack = { server: DevServer; address: string; uiUrl: string | null; worker: RunningWorker | null; stop(): Promise<void> };

export type LocalOptions = {
  home?: string;
  dbFile?: string;
  port?: number;
  uiPort?: number | null;
  worker: boolean;
  transforms: string[];
  queues?: QueueConfig[];
  warehouse?: string;
};

/** Uses `preferred` when it is free, else any free port. */
export async function portOr(preferred: number): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => void freePort().then(done));
    server.listen(preferred, '127.0.0.1', () => server.close(() => done(preferred)));
  });
}

export async function startLocal(options: LocalOptions): Promise<LocalStack> {
  const home = options.home ?? backfillHome();
  const server = await startDevServer({
    dbFile: options.dbFile ?? join(home, 'temporal.db'),
    port: options.port ?? 7233,
    uiPort: options.uiPort === undefined ? 8233 : options.uiPort,
    logFile: join(home, 'temporal.log'),
  });
  let worker: RunningWorker | null = null;
  try {
    if (options.worker) {
      worker = await startWorker({
        address: server.address,
        namespace: 'default',
        transforms: options.transforms,
        queues: options.queues ?? [{ name: 'backfill' }],
        workflowQueue: 'backfill',
        workflows: true,
        ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
      });
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    server,
    address: server.address,
    uiUrl: server.uiUrl,
    worker,
    stop: async () => {
      await worker?.stop();
      await server.stop();
    },
  };
}
