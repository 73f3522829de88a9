/**
 * The worker thread behind ThreadedWarehouse: one SqliteWarehouse, answering calls strictly
 * one at a time, in the order they came (a call that awaits does not let the next one in).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteWarehouse } from './sqlite-dialect.ts';
import type { Call } from './threaded.ts';

const warehouse = new SqliteWarehouse((workerData as { location: string }).location);
let previous: Promise<void> = Promise.resolve();

async function answer({ id, method, args }: Call): Promise<void> {
  try {
    const result = await (warehouse[method] as (...a: unknown[]) => Promise<unknown>).apply(warehouse, args);
    parentPort!.postMessage({ id, result });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    parentPort!.postMessage({ id, error: { name: e.name, message: e.message } });
  }
}

parentPort!.on('message', (call: Call) => {
  previous = previous.then(() => answer(call));
});
