/**
 * What a PostgreSQL publish costs the server (`node --import tsx scripts/postgres-profile.ts
 * [batch] [parallel] [no-checks]`): publishes the shop example's first three nodes
 * (`orders_raw` from its transform, `orders_clean` and `daily_revenue` from their SQL) for 2024,
 * 366 days each, straight through `publishMany` in batches of `batch` (default 10), `parallel`
 * batches at once (default 4), with their checks unless `no-checks`, into a fresh database on
 * $BACKFILL_TEST_POSTGRES_URL's server. Prints per node the CPU a partition of that database's
 * backends (read from /proc, so the server must run on this machine; other databases' backends
 * are not counted) and of this process, and the time a call of the publish's start function
 * took (`track_functions`). Without Temporal and its scheduling, runs of different code compare
 * the publishes alone. A development tool.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresWarehouse } from '../activities/warehouse/postgres/postgres-dialect.ts';
import type { TransformContext } from '../activities/transforms.ts';
import type { PartitionWrite, Row } from '../activities/warehouse/types.ts';
import { loadSpecFile } from '../client/spec-file.ts';
import transforms from '../examples/shop/transforms.ts';
import { createDatabase, dropDatabase, testPostgresUrl, withPostgres } from './postgres.ts';

const batch = Number(process.argv[2] ?? 10);
const parallel = Number(process.argv[3] ?? 4);
const withChecks = process.argv[4] !== 'no-checks';
const TICK_MS = 10;
const ROOT = new URL('..', import.meta.url).pathname;

const { spec } = await loadSpecFile(join(ROOT, 'examples/shop/backfill.yaml'));
const database = `backfill_profile_${process.pid}`;
const url = new URL(testPostgresUrl());
url.pathname = `/${database}`;

/** CPU time so far of the backends connected to `database`, in ms. */
function backendsMs(): number {
  let ms = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // A backend's title: "postgres: <cluster>: <user> <database> <host> <state>".
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').split(' ').includes(database)) continue;
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ms += (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    } catch {
      // It ended meanwhile.
    }
  }
  return ms;
}

const days = Array.from({ length: 366 }, (_, i) => new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10));
const nodeOf = (id: string) => {
  const node = spec.nodes.find((n) => n.id === id);
  if (!node) throw new Error(`the shop example has no node ${id}`);
  return node;
};
const write = (id: string, day: string, data: PartitionWrite['data'], inputs: PartitionWrite['inputs']): PartitionWrite => ({
  node: id,
  partition: day,
  backfillId: 'profile',
  runKey: 'profile-1',
  workflowId: `backfill/profile/${id}`,
  data,
  checks: withChecks ? nodeOf(id).checks : [],
  transform: nodeOf(id).transform ?? 'sql',
  params: {},
  codeVersion: 'profile',
  inputs,
  attempt: 1,
  startedAt: Date.now(),
  commitBy: Date.now() + 600_000,
});
const window = (day: string) => ({ start: `${day}T00:00:00.000Z`, end: new Date(Date.parse(day) + 86_400_000).toISOString() });
const bindings = (day: string) => ({ partition: day, start: window(day).start, end: window(day).end, start_date: day, end_date: day });
const sqlWrite = (id: string, upstream: string) => (day: string) =>
  write(id, day, { rows: [], selects: [{ sql: nodeOf(id).sql!, bindings: bindings(day) }] }, [{ node: upstream, from: day, to: day }]);
/** A day of the example's orders: its transform reads only the partition, its window and its params. */
async function orders(day: string): Promise<Row[]> {
  const rows = await transforms.generate_orders({ partition: day, window: window(day), params: nodeOf('orders_raw').params } as TransformContext);
  if (!rows) throw new Error('generate_orders returned no rows');
  return rows;
}
const nodes: Array<[string, (day: string) => PartitionWrite]> = [
  ['orders_raw', (day) => write('orders_raw', day, { rows: generated.get(day)!, selects: [] }, [])],
  ['orders_clean', sqlWrite('orders_clean', 'orders_raw')],
  ['daily_revenue', sqlWrite('daily_revenue', 'orders_clean')],
];

// Made before the clock starts: the transform's CPU is not the publish's.
const generated = new Map<string, Row[]>();
for (const day of days) generated.set(day, await orders(day));
await dropDatabase(database);
await createDatabase(database);
const warehouse = new PostgresWarehouse(`${url.toString()}?options=-c%20track_functions%3Dall`, { warn: () => undefined });
try {
  await warehouse.identity();
  process.stdout.write(`batches of ${batch}, ${parallel} at once${withChecks ? '' : ', no checks'}; CPU a partition, PostgreSQL / this process:\n`);
  for (const [id, make] of nodes) {
    const batches: string[][] = [];
    for (let i = 0; i < days.length; i += batch) batches.push(days.slice(i, i + batch));
    const server = backendsMs();
    const own = process.cpuUsage();
    const began = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < batches.length) {
          const { failed } = await warehouse.publishMany(batches[next++]!.map(make));
          if (failed) throw failed.error;
        }
      }),
    );
    const used = process.cpuUsage(own);
    const per = (ms: number) => (ms / days.length).toFixed(2);
    process.stdout.write(`  ${id.padEnd(14)} ${per(backendsMs() - server)} / ${per((used.user + used.system) / 1000)} ms (${(performance.now() - began).toFixed(0)} ms)\n`);
  }
} finally {
  await warehouse.close();
}
// The function's statistics are written when its backends end (the pool closed them above).
const [start] = await withPostgres(url.toString(), async (c) => {
  for (let i = 0; i < 50; i++) {
    const { rows } = await c.query<{ calls: string; total: number }>('SELECT calls, total_time AS total FROM pg_stat_user_functions');
    if (rows.length > 0 && Number(rows[0]!.calls) >= days.length * nodes.length) return rows;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return [];
});
if (start) process.stdout.write(`  publish_start: ${start.calls} calls, ${(start.total / Number(start.calls)).toFixed(3)} ms a call\n`);
await dropDatabase(database);
