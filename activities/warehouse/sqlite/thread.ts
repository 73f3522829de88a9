/**
 * The worker thread behind ThreadedWarehouse: one SqliteWarehouse, answering calls strictly
 * one at a time, in the order they came (a call that awaits does not let the next one in).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteWarehouse } from './sqlite-dialect.ts';
import type { PublishedBatch } from '../types.ts';
import type { Call, SentBatch, SentError, ThreadData } from './threaded.ts';

const { location, readOnly } = workerData as ThreadData;
const warehouse = new SqliteWarehouse(location, { readOnly });
let previous: Promise<void> = Promise.resolve();

const sent = (error: unknown): SentError => (error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) });

async function answer({ id, method, args }: Call): Promise<void> {
  try {
    let result = await (warehouse[method] as (...a: unknown[]) => Promise<unknown>).apply(warehouse, args);
    if (method === 'publishMany') {
      const { published, failed } = result as PublishedBatch;
      result = (failed ? { published, failed: { index: failed.index, error: sent(failed.error) } } : { published }) satisfies SentBatch;
    }
    parentPort!.postMessage({ id, result });
  } catch (error) {
    parentPort!.postMessage({ id, error: sent(error) });
  }
}

parentPort!.on('message', (call: Call) => {
  previous = previous.then(() => answer(call));
});
