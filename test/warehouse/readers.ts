/**
 * For the tests of the commands that only read the warehouse (`lineage`, `diff`, `report`,
 * `rollback --dry-run`, `--only-changed`, `plan --estimate`): a ledger as the workers write it,
 * and every read those commands make of it, as they make it.
 */
import { expect } from 'vitest';
import { openExistingWarehouse } from '../../client/existing-warehouse.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { diffSummary } from '../../activities/warehouse/staging.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import { runCli } from '../unit/run-cli.ts';
import { ORDERS, write } from './suite.ts';

/** The staged run `writeLedger` leaves for `diff`. */
export const STAGED = { backfillId: 'bf-staged', runKey: 'run-staged' } as const;

/** What the workers leave: orders 2024-03-01 published by bf-1, and 2024-03-01 and 2024-03-02 staged by `STAGED`. */
export async function writeLedger(warehouse: Warehouse): Promise<void> {
  await warehouse.publish(write('orders', '2024-03-01', { rows: ORDERS }));
  for (const partition of ['2024-03-01', '2024-03-02']) {
    await warehouse.publish(write('orders', partition, { ...STAGED, workflowId: 'backfill/bf-staged/orders', stage: true, rows: [...ORDERS, { order_id: 4, country: 'IT', amount: 5 }] }));
  }
}

/** Every read the readers make, on the ledger `writeLedger` left; and a write, which a warehouse opened for reading refuses. */
export async function readAsReaders(warehouse: Warehouse): Promise<void> {
  // lineage
  expect(await warehouse.ledger({ node: 'orders', partition: '2024-03-01' })).toEqual([
    expect.objectContaining({ version: 2, status: 'staged', backfillId: STAGED.backfillId }),
    expect.objectContaining({ version: 1, status: 'published', backfillId: 'bf-1', current: true }),
  ]);
  expect(await warehouse.rollbacks({ node: 'orders', partition: '2024-03-01' })).toEqual([]);
  expect(await warehouse.ledgerNodes?.()).toEqual([{ node: 'orders', partitions: 2, first: '2024-03-01', last: '2024-03-02' }]);
  // diff
  const diff = await diffSummary((page) => warehouse.diffStaged(STAGED, page), undefined);
  expect(diff).toMatchObject({ partitions: 2, rowsBefore: 3, rowsAfter: 8 });
  // rollback --dry-run, report
  expect((await warehouse.changesBy('bf-1')).changes).toEqual([expect.objectContaining({ node: 'orders', partition: '2024-03-01', version: 1 })]);
  // plan --estimate, --only-changed
  expect((await warehouse.publishedRows('orders')).map((r) => r.partition)).toEqual(['2024-03-01']);
  expect(await warehouse.identity()).toMatch(/^[0-9a-f-]{36}$/);
  await expect(warehouse.publish(write('orders', '2024-03-03', { rows: ORDERS }))).rejects.toThrow(/opened for reading only/);
}

/** The ledger `writeLedger` left at `location`, read by `backfill lineage` and then, opened as `diff` opens it, by every other reader. */
export async function readersReadAt(location: string): Promise<void> {
  const lineage = await runCli('lineage', 'orders', '2024-03-01', '--warehouse', location, '--json');
  expect(lineage.stdout).toContain('"current"');
  expect(lineage.code).toBe(EXIT.ok);
  expect(JSON.parse(lineage.stdout).current).toMatchObject({ node: 'orders', partition: '2024-03-01', version: 1, backfillId: 'bf-1' });
  // Asked for a node the ledger has not, or a partition of a node it has: it says which, and what it has.
  const node = await runCli('lineage', 'order', '2024-03-01', '--warehouse', location);
  expect(node.code).toBe(EXIT.error);
  expect(node.stderr).toMatch(/has no node order \(did you mean orders\?\): it has versions of orders\n/);
  const partition = await runCli('lineage', 'orders', '2024-03-10', '--warehouse', location);
  expect(partition.code).toBe(EXIT.error);
  expect(partition.stderr).toMatch(/node orders has no version of partition 2024-03-10 in the ledger of .*: its 2 partitions run from 2024-03-01 to 2024-03-02; check the partition key/);
  const warehouse = await openExistingWarehouse(location, 'diff');
  try {
    await readAsReaders(warehouse);
  } finally {
    await warehouse.close();
  }
}
