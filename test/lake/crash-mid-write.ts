/**
 * A publisher killed in the middle of a write: `crash-mid-write.ts <lake>` publishes orders
 * 2024-01-01 (version 1, one row), then publishes it again for run-2 and is killed (SIGKILL, as an
 * OOM kill or a power cut would) as soon as DuckDB has written version 2's file under its
 * `_incoming-` name, before it is synced and renamed into place: the file stays, the catalogue
 * never got the version.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { LakeWarehouse } from '../../activities/warehouse/lake/lake-dialect.ts';
import { write } from '../warehouse/suite.ts';

const wh = new LakeWarehouse(process.argv[2]!);
await wh.publish(write('orders', '2024-01-01', { runKey: 'run-1', rows: [{ id: 1, note: 'v1' }] }));
const connection = await wh.lake.connection();
const run = connection.run.bind(connection);
connection.run = async (...args: Parameters<DuckDBConnection['run']>) => {
  const result = await run(...args);
  if (args[0].startsWith('COPY (') && args[0].includes('_incoming-')) process.kill(process.pid, 'SIGKILL');
  return result;
};
await wh.publish(write('orders', '2024-01-01', { runKey: 'run-2', rows: [{ id: 666, note: 'killed run-2' }, { id: 667, note: 'killed run-2' }] }));
