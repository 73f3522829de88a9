/**
 * A SQLite warehouse whose work runs on a worker thread. better-sqlite3 is synchronous: a
 * long SELECT on the worker's main thread would stop its heartbeats and its workflow tasks
 * (a partition then times out while it is still being written). On its own thread the
 * main thread stays free; its calls run one at a time, as SQLite writes do anyway.
 */
import { Worker } from 'node:worker_threads';
import { reviveError, type PublishedBatch, type Warehouse } from '../types.ts';
import { FROM_SOURCES } from '../../../host/package.ts';

type Method = Exclude<keyof Warehouse, 'kind' | 'location'>;
export type ThreadData = { location: string; readOnly: boolean };
export type Call = { id: number; method: Method; args: unknown[] };
export type SentError = { name: string; message: string };
type Reply = { id: number; result?: unknown; error?: SentError };
/** `publishMany`'s result as it crosses to the thread's parent: its error as name and message. */
export type SentBatch = Omit<PublishedBatch, 'failed'> & { failed?: { index: number; error: SentError } };

/**
 * The thread's module. A worker thread starts without its parent's TypeScript loader: from the
 * sources, thread.mjs registers tsx and then imports thread.ts; compiled, thread.js is plain JavaScript.
 */
const THREAD_MODULE = new URL(FROM_SOURCES ? './thread.mjs' : './thread.js', import.meta.url);

export class ThreadedWarehouse implements Warehouse {
  readonly kind = 'sqlite' as const;
  private readonly thread: Worker;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private next = 0;
  /** Why the thread is gone (it could not open the file, or it was closed): every later call fails with it. */
  private gone: Error | undefined;

  constructor(
    readonly location: string,
    options: { readOnly?: boolean } = {},
  ) {
    this.thread = new Worker(THREAD_MODULE, { workerData: { location, readOnly: options.readOnly === true } satisfies ThreadData });
    this.thread.on('message', (reply: Reply) => {
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      if (!reply.error) return call.resolve(reply.result);
      call.reject(reviveError(reply.error));
    });
    this.thread.on('error', (error) => this.failAll(new Error(`the warehouse ${location} failed: ${error.message}`)));
    this.thread.on('exit', (code) => this.failAll(new Error(`the warehouse thread for ${location} exited (code ${code})`)));
  }

  private failAll(error: Error): void {
    this.gone ??= error;
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }

  private call<M extends Method>(method: M, ...args: Parameters<NonNullable<Warehouse[M]>>): ReturnType<NonNullable<Warehouse[M]>> {
    if (this.gone) return Promise.reject(this.gone) as ReturnType<NonNullable<Warehouse[M]>>;
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ id, method, args } satisfies Call);
    }) as ReturnType<NonNullable<Warehouse[M]>>;
  }

  pin: Warehouse['pin'] = (...args) => this.call('pin', ...args);
  query: Warehouse['query'] = (...args) => this.call('query', ...args);
  publish: Warehouse['publish'] = (...args) => this.call('publish', ...args);
  publishMany: Warehouse['publishMany'] = async (...args) => {
    const { published, failed } = (await this.call('publishMany', ...args)) as SentBatch;
    return failed ? { published, failed: { index: failed.index, error: reviveError(failed.error) } } : { published };
  };
  publishedBy: Warehouse['publishedBy'] = (...args) => this.call('publishedBy', ...args);
  ledger: Warehouse['ledger'] = (...args) => this.call('ledger', ...args);
  changesBy: Warehouse['changesBy'] = (...args) => this.call('changesBy', ...args);
  restore: Warehouse['restore'] = (...args) => this.call('restore', ...args);
  rollbacks: Warehouse['rollbacks'] = (...args) => this.call('rollbacks', ...args);
  publishedRows: Warehouse['publishedRows'] = (...args) => this.call('publishedRows', ...args);
  ledgerVersions: Warehouse['ledgerVersions'] = (...args) => this.call('ledgerVersions', ...args);
  identity: Warehouse['identity'] = (...args) => this.call('identity', ...args);
  acquireDatasets: Warehouse['acquireDatasets'] = (...args) => this.call('acquireDatasets', ...args);
  releaseDatasets: Warehouse['releaseDatasets'] = (...args) => this.call('releaseDatasets', ...args);
  claimSignature: NonNullable<Warehouse['claimSignature']> = (...args) => this.call('claimSignature', ...args);
  publishStaged: Warehouse['publishStaged'] = (...args) => this.call('publishStaged', ...args);
  discardStaged: Warehouse['discardStaged'] = (...args) => this.call('discardStaged', ...args);
  diffStaged: Warehouse['diffStaged'] = (...args) => this.call('diffStaged', ...args);
  lineageDataset: NonNullable<Warehouse['lineageDataset']> = (...args) => this.call('lineageDataset', ...args);
  ledgerNodes: NonNullable<Warehouse['ledgerNodes']> = () => this.call('ledgerNodes');
  leaseHolders: NonNullable<Warehouse['leaseHolders']> = (...args) => this.call('leaseHolders', ...args);

  async close(): Promise<void> {
    if (this.gone) return;
    await this.call('close');
    this.gone = new Error(`the warehouse ${this.location} is closed`);
    await this.thread.terminate();
  }
}
