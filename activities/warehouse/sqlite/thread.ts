/** The worker thread behind ThreadedWarehouse: one SqliteWarehouse, answering calls in order. */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteWarehouse } from './warehouse.ts';
import type { Call } from './threaded.ts';

const warehouse = new SqliteWarehouse((workerData as { location: string }).location);

parentPort!.on('message', async ({ id, method, args }: Call) => {
  try {
    const result = await (warehouse[method] as (...a: unknown[]) => Promise<unknown>).apply(warehouse, args);
    parentPort!.postMessage({ id, result });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    parentPort!.postMessage({ id, error: { name: e.name, message: e.message } });
  }
});
