/**
 * A publisher killed at its commit: `crash-at-commit.ts <lake>` publishes orders 2024-01-01
 * (version 1, one row), then publishes it again for run-2 and is killed (SIGKILL, as an OOM kill
 * or a power cut would) just as DuckDB is asked to COMMIT: version 2's file is in place under its
 * final name, and the catalogue never got the version.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { LakeWarehouse } from '../../activities/warehouse/lake/lake-dialect.ts';
import { write } from '../warehouse/suite.ts';

const wh = new LakeWarehouse(process.argv[2]!);
await wh.publish(write('orders', '2024-01-01', { runKey: 'run-1', rows: [{ id: 1, note: 'v1' }] }));
const connection = await wh.lake.connection();
const run = connection.run.bind(connection);
connection.run = async (...args: Parameters<DuckDBConnection['run']>) => {
  if (args[0] === 'COMMIT') process.kill(process.pid, 'SIGKILL');
  return run(...args);
};
await wh.publish(write('orders', '2024-01-01', { runKey: 'run-2', rows: [{ id: 666, note: 'killed run-2' }, { id: 667, note: 'killed run-2' }] }));
