/**
 * How many round trips a publish costs on PostgreSQL, counted at the driver (every `query`
 * call of the pool's clients is one), in steady state: the connection open and the dataset's
 * table made by an earlier publish. The counts are asserted, so that they cannot grow unseen;
 * so are the writes to the connection (each a system call, and a wake-up of the server): the
 * statements sent together leave in one write, not one each.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresWarehouse } from '../../activities/warehouse/postgres/postgres-dialect.ts';
import { SqlError, type PartitionWrite } from '../../activities/warehouse/types.ts';
import { ORDERS, write } from '../warehouse/suite.ts';

const SERVER = process.env.BACKFILL_TEST_POSTGRES_URL ?? 'postgres://backfill:backfill@127.0.0.1:5432/postgres';
const database = `backfill_rt_${randomUUID().slice(0, 8)}`;
const admin = new pg.Client({ connectionString: SERVER });
let warehouse: PostgresWarehouse;

beforeAll(async () => {
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(SERVER);
  url.pathname = `/${database}`;
  // One connection: every statement of a publish goes over it, and none opens a new one mid-count.
  url.searchParams.set('backfill_pool_size', '1');
  warehouse = new PostgresWarehouse(url.toString());
});
afterAll(async () => {
  await warehouse?.close();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
});

/**
 * What `work` sends through any pg client of this process: every statement, and the round
 * trips, counted as the times a client sent a statement with no other of its statements
 * unanswered (the connection pipelines, so a statement sent while others are on the wire
 * shares their wait). The counts are upper bounds: a statement sent without waiting shares the
 * wait of those still unanswered, and on a loaded machine, where the server answers later, more
 * of them do (CI once saw a partition with a check in 3 round trips, not 4).
 */
async function traffic(work: () => Promise<unknown>): Promise<{ statements: string[]; roundTrips: number; writes: number }> {
  const statements: string[] = [];
  let roundTrips = 0;
  // Writes to any socket (the pool's one connection), each a system call.
  let writes = 0;
  const { _write: write1, _writev: writev } = net.Socket.prototype as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
  Object.assign(net.Socket.prototype, {
    _write(this: net.Socket, ...args: unknown[]) {
      writes++;
      return write1.apply(this, args);
    },
    _writev(this: net.Socket, ...args: unknown[]) {
      writes++;
      return writev.apply(this, args);
    },
  });
  const unanswered = new Map<pg.Client, number>();
  const original = pg.Client.prototype.query;
  const counting = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    statements.push(typeof first === 'string' ? first : String((first as { text?: string }).text));
    const waiting = unanswered.get(this) ?? 0;
    if (waiting === 0) roundTrips++;
    unanswered.set(this, waiting + 1);
    const answered = () => unanswered.set(this, (unanswered.get(this) ?? 1) - 1);
    const sent = (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    sent.then(answered, answered);
    return sent;
  };
  pg.Client.prototype.query = counting as typeof original;
  try {
    await work();
  } finally {
    pg.Client.prototype.query = original;
    Object.assign(net.Socket.prototype, { _write: write1, _writev: writev });
  }
  return { statements, roundTrips, writes };
}

/** At most `n` round trips, and no more writes to the connection than that: the statements sent together leave in one. */
function atMost(sent: { roundTrips: number; writes: number }, n: number): void {
  expect(sent.roundTrips).toBeLessThanOrEqual(n);
  expect(sent.writes).toBeLessThanOrEqual(n);
}

/** backfill's INSERT of ledger rows. */
const LEDGER_INSERT = /^INSERT INTO "?backfill"?\.ledger /;

let partitions = 0;
const next = (node: string, options: Parameters<typeof write>[2] = {}): PartitionWrite => write(node, `p${++partitions}`, options);
const daily = { sql: 'SELECT country, SUM(amount) AS total FROM orders GROUP BY country', bindings: {} };
const upstream = [{ node: 'orders', from: 'p1', to: 'p9', all: true }];
/** SQL that fails only when it runs for real (dividing by zero), after its columns were probed. */
const failing = { sql: 'SELECT 1 / (n - n) AS x FROM (SELECT 1 AS n) AS t', bindings: {} };

describe('round trips of a publish on PostgreSQL', () => {
  it('a partition of rows from a transform: 3 (start, rows and summary, pointer, ledger and commit)', async () => {
    await warehouse.publish(next('orders', { rows: ORDERS }));
    const sent = await traffic(() => warehouse.publish(next('orders', { rows: ORDERS })));
    expect(sent.statements).toHaveLength(9);
    atMost(sent, 3);
  });

  it("a SQL partition reading its upstream: 4 when its columns are probed (once per SQL text and upstream types), then 3; its checks' queries add one, however many", async () => {
    const node = 'daily';
    await warehouse.publish(next(node, { selects: [daily], inputs: upstream }));
    const other = { sql: `${daily.sql} ORDER BY country`, bindings: {} };
    atMost(await traffic(() => warehouse.publish(next(node, { selects: [other], inputs: upstream }))), 4);
    atMost(await traffic(() => warehouse.publish(next(node, { selects: [other], inputs: upstream }))), 3);
    atMost(await traffic(() => warehouse.publish(next(node, { selects: [daily], inputs: upstream }))), 3);
    // A row count needs no query; the checks' savepoint is released with the commit.
    const counted = await traffic(() => warehouse.publish(next(node, { selects: [daily], inputs: upstream, checks: [{ type: 'row_count', min: 1, severity: 'error' }] })));
    atMost(counted, 3);
    const checked = await traffic(() =>
      warehouse.publish(next(node, { selects: [daily], inputs: upstream, checks: [{ type: 'sql', name: 'positive', sql: 'SELECT * FROM {{this}} WHERE total <= 0', severity: 'error' }] })),
    );
    atMost(checked, 4);
    // Every check's query goes out at once, each in a read-only savepoint of its own: one wait for all of them.
    const several = await traffic(() =>
      warehouse.publish(
        next(node, {
          selects: [daily],
          inputs: upstream,
          checks: [
            { type: 'not_null', columns: ['country', 'total'], severity: 'error' },
            { type: 'unique', columns: ['country'], severity: 'error' },
            { type: 'sql', name: 'positive', sql: 'SELECT * FROM {{this}} WHERE total <= 0', severity: 'warn' },
          ],
        }),
      ),
    );
    atMost(several, 4);
  });

  it('a batch in one publishMany: 3 a partition and 1 for the commit; its ledger rows in one INSERT, sent with the commit', async () => {
    const sent = await traffic(() => warehouse.publishMany(Array.from({ length: 10 }, () => next('orders', { rows: ORDERS }))));
    atMost(sent, 31);
    const ledger = sent.statements.filter((s) => LEDGER_INSERT.test(s));
    expect(ledger).toHaveLength(1);
    expect(ledger[0]!.split('), (')).toHaveLength(10);
    // The INSERT goes out after the last partition's statements, just before the COMMIT.
    expect(sent.statements.slice(-2)).toEqual([ledger[0], 'COMMIT']);
  });

  it("a batch whose partition's checks fail: the rows of those before it and its own in one INSERT; nothing of the partitions after it", async () => {
    const failing = next('orders', { rows: ORDERS, checks: [{ type: 'not_null', columns: ['amount'], severity: 'error' }] });
    const writes = [next('orders', { rows: ORDERS }), next('orders', { rows: ORDERS }), failing, next('orders', { rows: ORDERS })];
    const sent = await traffic(() => warehouse.publishMany(writes));
    expect(sent.statements.filter((s) => LEDGER_INSERT.test(s))).toHaveLength(1);
    const ledger = await warehouse.ledger({ node: 'orders' });
    expect(writes.map((w) => ledger.filter((r) => r.partition === w.partition).map((r) => r.status))).toEqual([['published'], ['published'], ['failed_check'], []]);
  });
});

describe('statements sent without waiting still fail the partition they belong to', () => {
  it('a publish whose SQL fails when it runs: an SqlError naming the SQL, and nothing of it is written', async () => {
    const write = next('fails', { selects: [failing] });
    const error = await warehouse.publish(write).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SqlError);
    expect((error as Error).message).toMatch(/division by zero in SQL: SELECT 1 \/ \(n - n\)/);
    expect(await warehouse.ledger({ node: 'fails' })).toEqual([]);
  });

  it('in a batch, only its partition fails: those before it are committed, and the warehouse takes the next publish', async () => {
    const writes = [next('mixed', { rows: [{ x: 1 }] }), next('mixed', { rows: [{ x: 2 }] }), next('mixed', { selects: [failing] }), next('mixed', { rows: [{ x: 4 }] })];
    const { published, failed } = await warehouse.publishMany(writes);
    expect(published.map((p) => p.rowCount)).toEqual([1, 1]);
    expect(failed?.index).toBe(2);
    expect(failed?.error).toBeInstanceOf(SqlError);
    expect((await warehouse.ledger({ node: 'mixed' })).map((r) => [r.partition, r.status])).toEqual([
      [writes[0]!.partition, 'published'],
      [writes[1]!.partition, 'published'],
    ]);
    expect((await warehouse.publish(writes[3]!)).rowCount).toBe(1);
    expect(await warehouse.query('SELECT x FROM mixed ORDER BY x')).toEqual([{ x: 1 }, { x: 2 }, { x: 4 }]);
  });
});
