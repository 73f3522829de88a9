/**
 * Where a lake publish's time goes (`node --import tsx scripts/lake-profile.ts [days] [batch]`):
 * publishes `days` days of three shop-like nodes (rows given, a SQL node reading its upstream
 * day with checks, a grouped SQL node with a SQL check) into a fresh lake, `batch` partitions
 * per publishMany, and prints the statements DuckDB ran per publish, by kind, with their time.
 * A development tool: it wraps DuckDB's connection and prepared statement methods to count and
 * time each statement (preparing one is counted apart from running it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBConnection, DuckDBPreparedStatement } from '@duckdb/node-api';
import { openWarehouse, type Warehouse } from '../warehouse.ts';
import type { PartitionWrite } from '../activities/warehouse/types.ts';

const days = Number(process.argv[2] ?? 30);
const batch = Number(process.argv[3] ?? 1);

type Tally = { count: number; ms: number };
const tallies = new Map<string, Tally>();
let statements = 0;
/** A statement's kind: its first words, with names and literals left out. */
const kindOf = (sql: string) =>
  sql
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/'[^']*'/g, "'…'")
    .replace(/"[^"]*"/g, '"…"')
    .slice(0, 90);

/** Calls inside a counted call (runAndReadAll runs through run) are not counted again. */
let depth = 0;
function count(kind: string, began: number): void {
  const t = tallies.get(kind) ?? { count: 0, ms: 0 };
  t.count++;
  t.ms += performance.now() - began;
  tallies.set(kind, t);
  statements++;
}
/** The text each prepared statement was prepared from (the lake keeps its statements prepared). */
const texts = new WeakMap<object, string>();
for (const method of ['run', 'runAndReadAll', 'stream', 'prepare'] as const) {
  const original = DuckDBConnection.prototype[method] as (this: DuckDBConnection, sql: string, ...rest: unknown[]) => Promise<unknown>;
  (DuckDBConnection.prototype as unknown as Record<string, unknown>)[method] = async function (this: DuckDBConnection, sql: string, ...rest: unknown[]) {
    if (depth > 0) return original.call(this, sql, ...rest);
    const began = performance.now();
    depth++;
    try {
      const result = await original.call(this, sql, ...rest);
      if (method === 'prepare') texts.set(result as object, sql);
      return result;
    } finally {
      depth--;
      count(`${method === 'run' ? '' : `${method}: `}${kindOf(sql)}`, began);
    }
  };
}
for (const method of ['run', 'stream'] as const) {
  const original = DuckDBPreparedStatement.prototype[method] as (this: DuckDBPreparedStatement) => Promise<unknown>;
  (DuckDBPreparedStatement.prototype as unknown as Record<string, unknown>)[method] = async function (this: DuckDBPreparedStatement) {
    const began = performance.now();
    try {
      return await original.call(this);
    } finally {
      count(`prepared ${method}: ${kindOf(texts.get(this) ?? '?')}`, began);
    }
  };
}

const day = (i: number) => new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10);
const base = (node: string, partition: string): PartitionWrite => ({
  node,
  partition,
  backfillId: 'bf',
  runKey: 'run',
  workflowId: `backfill/bf/${node}`,
  data: { rows: [], selects: [] },
  checks: [],
  transform: 'sql',
  params: {},
  codeVersion: 'c',
  inputs: [],
  attempt: 1,
  startedAt: Date.now(),
});
const raw = (p: string, i: number): PartitionWrite => ({
  ...base('orders_raw', p),
  transform: 'generate_orders',
  data: {
    rows: Array.from({ length: 200 }, (_, n) => ({ order_id: i * 1000 + n, customer_id: n % 37, country: ['DE', 'FR', 'US'][n % 3], status: n % 10 === 0 ? 'test' : 'paid', amount_cents: 100 + n })),
    selects: [],
  },
  checks: [{ type: 'row_count', min: 1 }],
});
const clean = (p: string): PartitionWrite => ({
  ...base('orders_clean', p),
  inputs: [{ node: 'orders_raw', from: p, to: p }],
  data: { rows: [], selects: [{ sql: "SELECT order_id, customer_id, country, status, amount_cents * 92 / 100 AS amount_eur_cents FROM orders_raw WHERE status <> 'test'", bindings: {} }] },
  checks: [
    { type: 'not_null', columns: ['order_id', 'customer_id'] },
    { type: 'unique', columns: ['order_id'] },
  ],
});
const daily = (p: string): PartitionWrite => ({
  ...base('daily_revenue', p),
  inputs: [{ node: 'orders_clean', from: p, to: p }],
  data: { rows: [], selects: [{ sql: 'SELECT :day AS day, country, COUNT(*) AS orders, SUM(amount_eur_cents) AS revenue FROM orders_clean GROUP BY country', bindings: { day: p } }] },
  checks: [
    { type: 'row_count', min: 1 },
    { type: 'sql', name: 'positive', sql: 'SELECT * FROM {{this}} WHERE revenue <= 0' },
  ],
});

async function publishAll(wh: Warehouse, writes: PartitionWrite[]): Promise<void> {
  for (let i = 0; i < writes.length; i += batch) {
    const { failed } = await wh.publishMany(writes.slice(i, i + batch));
    if (failed) throw failed.error;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'lake-profile-'));
const wh = openWarehouse(`lake://${join(dir, 'lake')}`, { inline: true });
try {
  await wh.identity();
  tallies.clear();
  statements = 0;
  const began = performance.now();
  const partitions = Array.from({ length: days }, (_, i) => day(i));
  await publishAll(wh, partitions.map(raw));
  await publishAll(wh, partitions.map(clean));
  await publishAll(wh, partitions.map(daily));
  const ms = performance.now() - began;
  const publishes = days * 3;
  const total = [...tallies.values()].reduce((sum, t) => sum + t.ms, 0);
  process.stdout.write(`${publishes} publishes (batch ${batch}) in ${ms.toFixed(0)} ms: ${(ms / publishes).toFixed(1)} ms each, ${(statements / publishes).toFixed(1)} statements each, ${(total / publishes).toFixed(1)} ms of them in DuckDB\n`);
  for (const [kind, t] of [...tallies.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40)) {
    process.stdout.write(`${(t.count / publishes).toFixed(2).padStart(6)}/pub ${(t.ms / publishes).toFixed(2).padStart(7)} ms/pub  ${kind}\n`);
  }
} finally {
  await wh.close();
  rmSync(dir, { recursive: true, force: true });
}
