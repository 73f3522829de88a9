/**
 * The worker API, `import … from 'durable-backfill/worker'`, for a worker process of your own:
 *
 *   const workers = await createWorkers({ connection, warehouse: openWarehouse(), transforms: await loadTransforms(['./transforms.js']) });
 *   await workers.run();
 */
export { createWorkers, type BackfillWorkers, type QueueConfig, type WorkerConfig } from './worker.ts';
export { SHUTDOWN_ABANDON_MS } from './worker.ts';
export { ShutdownExpiredError, type RunningActivity } from './in-flight.ts';
export { openWarehouse, type Warehouse } from '../activities/warehouse/index.ts';
export { loadTransforms, type TransformRegistry } from '../activities/transforms.ts';
