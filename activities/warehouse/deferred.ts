/**
 * A warehouse whose engine loads on its first call. An adapter's `open` must be cheap and
 * synchronous; one whose driver is heavy (a native module, such as the lake's DuckDB) returns
 * this, so a process that never uses the warehouse never loads the driver.
 */
import { ClaimsUnsupportedError, type Warehouse } from './types.ts';

export function deferredWarehouse(identity: { kind: string; location: string }, load: () => Promise<Warehouse>): Warehouse {
  let loading: Promise<Warehouse> | undefined;
  const loaded = (): Promise<Warehouse> => {
    if (!loading) {
      loading = load();
      // A failed load (the driver missing) is tried again by the next call, not remembered.
      loading.catch(() => (loading = undefined));
    }
    return loading;
  };
  return {
    kind: identity.kind,
    location: identity.location,
    pin: async (...args) => (await loaded()).pin(...args),
    query: async (...args) => (await loaded()).query(...args),
    publish: async (...args) => (await loaded()).publish(...args),
    publishMany: async (...args) => (await loaded()).publishMany(...args),
    publishedBy: async (...args) => (await loaded()).publishedBy(...args),
    ledger: async (...args) => (await loaded()).ledger(...args),
    changesBy: async (...args) => (await loaded()).changesBy(...args),
    restore: async (...args) => (await loaded()).restore(...args),
    rollbacks: async (...args) => (await loaded()).rollbacks(...args),
    publishedRows: async (...args) => (await loaded()).publishedRows(...args),
    ledgerVersions: async (...args) => (await loaded()).ledgerVersions(...args),
    identity: async () => (await loaded()).identity(),
    acquireDatasets: async (...args) => (await loaded()).acquireDatasets(...args),
    releaseDatasets: async (...args) => (await loaded()).releaseDatasets(...args),
    // The loaded warehouse may keep no claims: absent there, the caller is told so by its error.
    claimSignature: async (claim) => {
      const warehouse = await loaded();
      if (!warehouse.claimSignature) throw new ClaimsUnsupportedError(warehouse.location);
      return warehouse.claimSignature(claim);
    },
    publishStaged: async (...args) => (await loaded()).publishStaged(...args),
    discardStaged: async (...args) => (await loaded()).discardStaged(...args),
    diffStaged: async (...args) => (await loaded()).diffStaged(...args),
    leaseHolders: async (nodes) => {
      const warehouse = await loaded();
      return warehouse.leaseHolders ? warehouse.leaseHolders(nodes) : null;
    },
    ledgerNodes: async () => {
      const warehouse = await loaded();
      return warehouse.ledgerNodes ? warehouse.ledgerNodes() : null;
    },
    lineageDataset: async (node) => {
      const warehouse = await loaded();
      return warehouse.lineageDataset ? warehouse.lineageDataset(node) : null;
    },
    // Closing a warehouse never used loads nothing.
    close: async () => {
      const opened = loading ? await loading.catch(() => undefined) : undefined;
      loading = undefined;
      await opened?.close();
    },
  };
}
