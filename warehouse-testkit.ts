/**
 * The warehouse conformance kit, `import { warehouseSuite } from 'durable-backfill/warehouse-testkit'`:
 * the contract suite every built-in warehouse passes, for an adapter to prove itself with one
 * call inside a vitest test file (vitest is the caller's: this module imports it).
 *
 *   warehouseSuite('bigquery', async () => ({ warehouse, raw, cleanup }), { runaway: 'SELECT …' });
 *
 * See docs/warehouses.md for what `raw` must give.
 */
export { ORDERS, rejection, settledWithin, warehouseSuite, write, type EngineTraits, type RawAccess, type WarehouseFactory } from './test/warehouse/suite.ts';
