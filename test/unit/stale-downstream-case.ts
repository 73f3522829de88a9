/** One scenario of what a rollback leaves stale downstream, run on every warehouse the tests open (SQLite here, PostgreSQL in test/integration). */
import { expect } from 'vitest';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import { staleDownstream } from '../../client/stale-downstream.ts';
import { write } from '../warehouse/suite.ts';

export async function staleDownstreamCase(wh: Warehouse): Promise<void> {
  await wh.publish(write('raw', '2024-01-01', { backfillId: 'bf-x', runKey: 'rx', rows: [{ v: 1 }] }));
  await wh.publish(write('raw', '2024-01-02', { backfillId: 'bf-x', runKey: 'rx', rows: [{ v: 2 }] }));
  await wh.publish(write('raw', '2024-01-01', { backfillId: 'bf-a', runKey: 'ra', rows: [{ v: 10 }] }));
  // bf-b computes daily from bf-a's raw version (2024-01-01) and from bf-x's (2024-01-02).
  for (const day of ['2024-01-01', '2024-01-02']) {
    await wh.publish(write('daily', day, { backfillId: 'bf-b', runKey: 'rb', rows: [{ total: 1 }], inputs: [{ node: 'raw', from: day, to: day }] }));
  }
  const [change] = (await wh.changesBy('bf-a')).changes;
  const outcome = await wh.restore({ rollbackId: 'rb-a', backfillId: 'bf-a', node: 'raw', partition: '2024-01-01', from: change!.version, to: change!.previousVersion });
  expect(outcome).toMatchObject({ status: 'restored', found: 2, to: 1 });
  // As `rollback` reads it after the run: the versions its moves took off.
  const moves = await wh.rollbacks({ rollbackId: 'rb-a' });
  const unpublished = moves.map((m) => ({ node: m.node, partition: m.partition, version: m.fromVersion! }));
  expect(await staleDownstream(wh, unpublished)).toEqual([{ node: 'daily', partitions: 1, examples: ['2024-01-01'] }]);
  // A version the rollback takes off itself is not counted as left stale.
  expect(await staleDownstream(wh, [...unpublished, { node: 'daily', partition: '2024-01-01', version: 1 }])).toEqual([]);
  expect(await staleDownstream(wh, [])).toEqual([]);
}
