/**
 * The warehouse contract, run against every backend (SQLite in the unit tests, PostgreSQL in
 * the integration tests): the same calls must give the same answers, checksums included.
 * SQL here is portable; what differs between engines is tested in each backend's own file.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveSpec, type CheckInput } from '../../core/spec.ts';
import { RowHasher } from '../../activities/warehouse/checksum.ts';
import { PARTITION_COLUMN, VERSION_COLUMN } from '../../activities/warehouse/sql.ts';
import { diffSummary } from '../../activities/warehouse/staging.ts';
import { rowChangePercent } from '../../core/diff.ts';
import {
  CheckFailedError,
  ChecksumMismatchError,
  CommitDeadlineError,
  InvalidDatasetError,
  InvalidOutputError,
  SqlError,
  SqlRefusedError,
  StaleRunError,
  type PartitionData,
  type PartitionWrite,
  type RestoreOutcome,
  type RestoreRequest,
  type Row,
  type Warehouse,
} from '../../activities/warehouse/types.ts';

/** Writes behind the warehouse's back (a tampered version, a ledger from before a column existed), in the backend's own SQL names. */
export type RawAccess = {
  exec(sql: string): Promise<void>;
  /** Rows of a statement run behind the warehouse's back (counts come back as numbers). */
  rows(sql: string): Promise<Row[]>;
  /** The qualified name of a dataset's versions table, and of the ledger. */
  versionsTable(node: string): string;
  ledgerTable: string;
  /** The qualified name of a view in the schema of the datasets' views (a dataset's, or one of the user's). */
  view(name: string): string;
  /** The qualified name of the temporary table that scopes a partition's reads. */
  scopeTable: string;
  /**
   * Spec SQL in the engine's own words that reads its catalog or statistics about backfill's
   * tables (PostgreSQL's `pg_stats`, SQLite's `dbstat`): sizes and values that span every
   * partition, so a partition's SQL must be refused them. Each may name `{{versions}}` (the
   * upstream's versions table, as a string literal) and `{{ledger}}`. Optional: without it the
   * kit skips that test.
   */
  catalogReads?: readonly string[];
};

export type WarehouseFactory = () => Promise<{ warehouse: Warehouse; raw: RawAccess; cleanup(): Promise<void> }>;

/** What the kit needs to know of an engine beyond its warehouse. */
export type EngineTraits = {
  /**
   * A read-only SELECT that never ends, in the engine's SQL, for the tests that it is stopped at
   * its deadline; absent where the engine cannot stop a statement (SQLite: docs/deploying.md).
   */
  runaway?: string;
  /**
   * The warehouse keeps no signature claims (it has no `claimSignature`): a signed start there is
   * judged by the runs the server lists alone (docs/governance.md). Absent, the kit checks its claims.
   */
  keepsNoClaims?: true;
};

type WriteOptions = Partial<Omit<PartitionWrite, 'data'>> & { rows?: Row[]; selects?: PartitionData['selects'] };

export function write(node: string, partition: string, options: WriteOptions = {}): PartitionWrite {
  const { rows = [], selects = [], ...rest } = options;
  return {
    node,
    partition,
    backfillId: 'bf-1',
    runKey: 'run-1',
    workflowId: `backfill/bf-1/${node}`,
    data: { rows, selects },
    checks: [],
    transform: 'test',
    params: {},
    codeVersion: 'code-1',
    inputs: [],
    attempt: 1,
    startedAt: Date.UTC(2024, 0, 1),
    ...rest,
  };
}

export const ORDERS: Row[] = [
  { order_id: 1, country: 'DE', amount: 10.5 },
  { order_id: 2, country: 'FR', amount: 20 },
  { order_id: 3, country: 'DE', amount: null },
];

/** The thrown error of `promise`, which must reject. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

/** Plan's verdict on a spec whose `rolling` depends on `daily` (identity) and reads `sql`: a call that throws if plan refuses it. */
export const plannedReading = (sql: string) => () =>
  resolveSpec({
    name: 'plan',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
    nodes: [{ id: 'daily', transform: 'noop' }, { id: 'rolling', dependsOn: ['daily'], sql }],
  });

/** `work`'s outcome, or a rejection saying it had none `ms` later. */
export function settledWithin<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running ${ms} ms later`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export function warehouseSuite(kind: Warehouse['kind'], open: WarehouseFactory, engine: EngineTraits = {}): void {
  let wh: Warehouse;
  let raw: RawAccess;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ warehouse: wh, raw, cleanup } = await open());
  });
  afterEach(async () => {
    await cleanup();
  });

  /** Published rows of the node's view, sorted by `by`. */
  const view = (node: string, columns: string, by: string) => wh.query(`SELECT ${columns} FROM ${node} ORDER BY ${by}`);

  describe(`${kind}: publishing a partition`, () => {
    it('publishes the first version', async () => {
      const published = await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      expect(published).toMatchObject({ version: 1, previousVersion: null, rowCount: 3 });
      expect(published.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(published.schemaHash).toMatch(/^[0-9a-f]{16}$/);
      expect(wh.kind).toBe(kind);
    });

    it('shows the rows in a view named after the node, without internal columns', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      expect(await wh.query('SELECT * FROM orders ORDER BY order_id')).toEqual(ORDERS);
    });

    it('records a ledger row with counts, checksum, schema hash, params and inputs', async () => {
      const published = await wh.publish(
        write('orders', '2024-01-01', { rows: ORDERS, params: { ordersPerDay: 3, tag: 'x' }, transform: 'generate_orders', attempt: 2 }),
      );
      const ledger = await wh.ledger({ node: 'orders' });
      expect(ledger).toHaveLength(1);
      expect(ledger[0]).toMatchObject({
        node: 'orders',
        partition: '2024-01-01',
        version: 1,
        status: 'published',
        backfillId: 'bf-1',
        runKey: 'run-1',
        workflowId: 'backfill/bf-1/orders',
        rowCount: 3,
        checksum: published.checksum,
        schemaHash: published.schemaHash,
        transform: 'generate_orders',
        params: { ordersPerDay: 3, tag: 'x' },
        codeVersion: 'code-1',
        inputs: [],
        attempt: 2,
        executions: 1,
        startedAt: '2024-01-01T00:00:00.000Z',
        previousVersion: null,
        error: null,
        current: true,
      });
      expect(Date.parse(ledger[0]!.finishedAt)).toBeGreaterThanOrEqual(Date.parse(ledger[0]!.startedAt));
    });

    it('filters the ledger by backfill, node and partition', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      await wh.publish(write('orders', '2024-01-02', { rows: ORDERS }));
      await wh.publish(write('customers', '2024-01-01', { rows: [{ id: 1 }], backfillId: 'bf-2' }));
      expect((await wh.ledger({})).length).toBe(3);
      expect((await wh.ledger({ node: 'orders' })).map((r) => r.partition)).toEqual(['2024-01-01', '2024-01-02']);
      expect((await wh.ledger({ backfillId: 'bf-2' })).map((r) => r.node)).toEqual(['customers']);
      expect((await wh.ledger({ node: 'orders', partition: '2024-01-02' })).length).toBe(1);
    });

    it('reads the published row of every partition of a node, and given versions, in batches', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: [{ order_id: 1 }] }));
      await wh.publish(write('orders', '2024-01-02', { rows: [{ order_id: 2 }] }));
      await wh.publish(write('orders', '2024-01-01', { runKey: 'run-2', rows: [{ order_id: 3 }], params: { n: 2 } }));
      await wh.publish(write('orders', '2024-01-03', { rows: [{ order_id: 4 }], checks: [{ type: 'row_count', min: 5 }] })).catch(() => undefined);
      await wh.publish(write('customers', '2024-01-01', { rows: [{ id: 1 }] }));
      const published = await wh.publishedRows('orders');
      expect(published.map((r) => [r.partition, r.version, r.current, r.params])).toEqual([
        ['2024-01-01', 2, true, { n: 2 }],
        ['2024-01-02', 1, true, {}],
      ]);
      expect(await wh.publishedRows('nothing')).toEqual([]);

      const versions = await wh.ledgerVersions('orders', [
        ['2024-01-01', 1],
        ['2024-01-02', 1],
        ['2024-01-03', 1],
        ['2024-01-09', 1],
      ]);
      expect(versions.map((r) => [r.partition, r.version, r.status, r.current])).toEqual([
        ['2024-01-01', 1, 'published', false],
        ['2024-01-02', 1, 'published', true],
        ['2024-01-03', 1, 'failed_check', false],
      ]);
      expect(await wh.ledgerVersions('orders', [])).toEqual([]);
      const many = Array.from({ length: 5000 }, (_, i): [string, number] => [`k${i}`, 1]);
      expect(await wh.ledgerVersions('orders', [...many, ['2024-01-02', 1]])).toHaveLength(1);
    });

    it('a retry of a run that already published returns that version and writes nothing', async () => {
      const first = await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      const again = await wh.publish(write('orders', '2024-01-01', { rows: [{ order_id: 99 }], attempt: 2 }));
      expect(again).toEqual({ ...first, alreadyPublished: true });
      const ledger = await wh.ledger({ node: 'orders' });
      expect(ledger).toHaveLength(1);
      expect(ledger[0]).toMatchObject({ version: 1, executions: 2, attempt: 1, checksum: first.checksum, current: true });
      expect(await view('orders', 'order_id', 'order_id')).toEqual([{ order_id: 1 }, { order_id: 2 }, { order_id: 3 }]);
      expect(await wh.publishedBy('orders', '2024-01-01', 'run-1')).toMatchObject({ version: 1, checksum: first.checksum });
      expect(await wh.publishedBy('orders', '2024-01-01', 'run-2')).toBeNull();
    });

    it('a different run key makes a new version; the view shows only the newest', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      const second = await wh.publish(write('orders', '2024-01-01', { runKey: 'run-2', rows: [{ order_id: 9, country: 'NL', amount: 1 }] }));
      expect(second).toMatchObject({ version: 2, previousVersion: 1, rowCount: 1 });
      expect(await wh.query('SELECT order_id FROM orders')).toEqual([{ order_id: 9 }]);
      const ledger = await wh.ledger({ node: 'orders', partition: '2024-01-01' });
      expect(ledger.map((r) => [r.version, r.runKey, r.current, r.previousVersion])).toEqual([
        [2, 'run-2', true, 1],
        [1, 'run-1', false, null],
      ]);
    });

    it('publishMany publishes in turn up to the first failure, keeps those before it and writes nothing after it', async () => {
      const bad = { checks: [{ type: 'not_null' as const, columns: ['order_id'] }], rows: [{ order_id: null }] };
      const { published, failed } = await wh.publishMany([
        write('orders', '2024-01-01', { rows: [{ order_id: 1 }] }),
        write('orders', '2024-01-02', { rows: [{ order_id: 2 }] }),
        write('orders', '2024-01-03', bad),
        write('orders', '2024-01-04', { rows: [{ order_id: 4 }] }),
      ]);
      expect(published.map((p) => [p.version, p.rowCount])).toEqual([
        [1, 1],
        [1, 1],
      ]);
      expect(failed?.index).toBe(2);
      expect(failed?.error).toBeInstanceOf(CheckFailedError);
      expect(failed?.error.message).toMatch(/not_null: 1 rows have order_id NULL/);
      expect(await view('orders', 'order_id', 'order_id')).toEqual([{ order_id: 1 }, { order_id: 2 }]);
      // The failed partition's check failure is recorded; the one after it was never reached.
      expect((await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r.status])).toEqual([
        ['2024-01-01', 'published'],
        ['2024-01-02', 'published'],
        ['2024-01-03', 'failed_check'],
      ]);
      expect(await wh.publishMany([])).toEqual({ published: [] });
    });

    it('publishes made at once are each answered as if alone: a failed check ends only its own batch, and the others commit', async () => {
      const bad = { checks: [{ type: 'not_null' as const, columns: ['order_id'] }], rows: [{ order_id: null }] };
      // Made in one tick, they wait for the same turn (a lake commits them together).
      const [a, c, d] = await Promise.all([
        wh.publishMany([write('orders', '2024-01-01', { rows: [{ order_id: 1 }] }), write('orders', '2024-01-02', { rows: [{ order_id: 2 }] })]),
        wh.publishMany([write('orders', '2024-01-03', { rows: [{ order_id: 3 }] }), write('orders', '2024-01-04', bad), write('orders', '2024-01-05', { rows: [{ order_id: 5 }] })]),
        wh.publishMany([write('orders', '2024-01-06', { rows: [{ order_id: 6 }] })]),
      ]);
      expect(a).toMatchObject({ published: [{ version: 1 }, { version: 1 }] });
      expect(a.failed).toBeUndefined();
      expect(c.published.map((p) => p.rowCount)).toEqual([1]);
      expect(c.failed?.index).toBe(1);
      expect(c.failed?.error).toBeInstanceOf(CheckFailedError);
      expect(d.failed).toBeUndefined();
      expect(await view('orders', 'order_id', 'order_id')).toEqual([1, 2, 3, 6].map((order_id) => ({ order_id })));
      expect((await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r.status]).sort()).toEqual([
        ['2024-01-01', 'published'],
        ['2024-01-02', 'published'],
        ['2024-01-03', 'published'],
        ['2024-01-04', 'failed_check'],
        ['2024-01-06', 'published'],
      ]);
    });

    it("a partition that widens a column and then fails leaves the column as it was, for the partitions committed with it: their rows, types and checksums", async () => {
      const widens = { rows: [{ n: 'x' }], checks: [{ type: 'row_count' as const, min: 5 }] };
      // Made in one tick, they wait for the same turn (a lake commits them together).
      const [a, b, c] = await Promise.all([
        wh.publishMany([write('orders', 'k1', { rows: [{ n: 1 }] }), write('orders', 'k2', widens)]),
        wh.publishMany([write('orders', 'k3', widens)]),
        wh.publishMany([write('orders', 'k4', { rows: [{ n: 4 }], checks: [{ type: 'drift', metric: { sum: 'n' }, maxChangePercent: 10 }] })]),
      ]);
      expect(a.published.map((p) => p.version)).toEqual([1]);
      expect(a.failed?.error).toBeInstanceOf(CheckFailedError);
      expect(b.failed?.error).toBeInstanceOf(CheckFailedError);
      expect(c.failed).toBeUndefined();
      await wh.publish(write('alone', 'k', { rows: [{ n: 4 }] }));
      const checksum = async (node: string, partition: string) => (await wh.ledger({ node, partition })).find((r) => r.status === 'published')?.checksum;
      expect(await checksum('orders', 'k4')).toBe(await checksum('alone', 'k'));
      expect(await view('orders', 'n', 'n')).toEqual([{ n: 1 }, { n: 4 }]);
      expect(await wh.query('SELECT MAX(n) + 1 AS next FROM orders')).toEqual([{ next: 5 }]);
    });

    it('a partition that needs a wider type for a column, in a batch after another, is published (or fails its checks) and the one before it keeps its exact checksum', async () => {
      const big = 1234567890123456789n;
      const checksum = async (node: string, partition: string) => (await wh.ledger({ node, partition })).find((r) => r.status === 'published')?.checksum;
      const exact = (await wh.publish(write('alone', 'k1', { rows: [{ n: big }] }))).checksum;
      for (const [node, fails] of [['passes', false], ['fails', true]] as const) {
        const k2 = { rows: [{ n: 1.5 }], ...(fails ? { checks: [{ type: 'row_count' as const, min: 5 }] } : {}) };
        const batch = await wh.publishMany([write(node, 'k1', { rows: [{ n: big }] }), write(node, 'k2', k2)]);
        expect(batch.published.map((p) => [p.version, p.checksum]), node).toEqual([[1, exact], ...(fails ? [] : [[1, expect.any(String)]])]);
        if (fails) expect(batch.failed, node).toMatchObject({ index: 1, error: expect.any(CheckFailedError) });
        else expect(batch.failed, node).toBeUndefined();
        expect(await checksum(node, 'k1'), node).toBe(exact);
        expect((await wh.publishedRows(node)).map((r) => r.version), node).toEqual(fails ? [1] : [1, 1]);
      }
    });

    it('a publish that throws, made at once with others, fails alone: nothing of it is written, and the others commit', async () => {
      const [a, b, c] = await Promise.all([
        wh.publishMany([write('orders', '2024-01-01', { rows: [{ order_id: 1 }] })]),
        wh.publishMany([write('orders', '2024-01-02', { selects: [{ sql: 'SELECT no_such_column FROM no_such_table', bindings: {} }] }), write('orders', '2024-01-03', { rows: [{ order_id: 3 }] })]),
        wh.publishMany([write('orders', '2024-01-04', { rows: [{ order_id: 4 }] }), write('orders', '2024-01-05', { selects: [{ sql: 'SELECT no_such_column FROM no_such_table', bindings: {} }] })]),
      ]);
      expect(a.failed).toBeUndefined();
      expect(b.published).toEqual([]);
      expect(b.failed?.index).toBe(0);
      expect(b.failed?.error).toBeInstanceOf(SqlError);
      // A batch keeps the partitions before one that throws.
      expect(c.published.map((p) => p.version)).toEqual([1]);
      expect(c.failed?.index).toBe(1);
      expect(c.failed?.error).toBeInstanceOf(SqlError);
      expect(await view('orders', 'order_id', 'order_id')).toEqual([1, 4].map((order_id) => ({ order_id })));
      expect((await wh.ledger({ node: 'orders' })).map((r) => r.partition).sort()).toEqual(['2024-01-01', '2024-01-04']);
    });

    it("a batch's ledger rows are, column for column, what its partitions published one by one wrote: a failed check's too, and none of a partition that threw", async () => {
      const warn = [{ type: 'not_null' as const, columns: ['amount'], severity: 'warn' as const }];
      const error = [{ type: 'not_null' as const, columns: ['amount'] }];
      const writes = (node: string): PartitionWrite[] => [
        write(node, 'k1', { rows: ORDERS, cost: 1.5, specHash: 'spec-1' }),
        write(node, 'k2', { rows: ORDERS, checks: warn }),
        write(node, 'k3', { selects: [{ sql: 'SELECT 1 AS n, :partition AS day', bindings: { partition: 'k3' } }] }),
        write(node, 'k4', { rows: [{ order_id: 4 }], stage: true }),
        write(node, 'k5', { rows: ORDERS, checks: error, startedAt: Date.UTC(2024, 0, 2) }),
        write(node, 'k6', { rows: ORDERS }),
      ];
      const throwing = (node: string): PartitionWrite[] => [
        write(node, 't1', { rows: [{ order_id: 1 }] }),
        write(node, 't2', { selects: [{ sql: 'SELECT no_such_column FROM no_such_table', bindings: {} }] }),
        write(node, 't3', { rows: [{ order_id: 3 }] }),
      ];
      // The clock stands still, so that the times each row records (finished_at, duration_ms) are alike too.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.UTC(2024, 0, 3) });
      try {
        const batch = await wh.publishMany(writes('batched'));
        expect(batch.published.map((p) => p.version)).toEqual([1, 1, 1, 1]);
        expect([batch.failed?.index, batch.failed?.error]).toEqual([4, expect.any(CheckFailedError)]);
        const thrown = await wh.publishMany(throwing('batched'));
        expect([thrown.published.length, thrown.failed?.index, thrown.failed?.error]).toEqual([1, 1, expect.any(SqlError)]);
        for (const w of [...writes('alone').slice(0, 5), ...throwing('alone').slice(0, 2)]) await wh.publish(w).catch(() => undefined);
      } finally {
        vi.useRealTimers();
      }
      const rows = async (node: string) => {
        const found = await raw.rows(`SELECT * FROM ${raw.ledgerTable} WHERE node = '${node}' ORDER BY partition, version`);
        return found.map(({ node: _node, workflow_id: _workflow, ...rest }) => rest);
      };
      const batched = await rows('batched');
      expect(batched.map((r) => [r.partition, r.status])).toEqual([
        ['k1', 'published'],
        ['k2', 'published'],
        ['k3', 'published'],
        ['k4', 'staged'],
        ['k5', 'failed_check'],
        ['t1', 'published'],
      ]);
      expect(batched).toEqual(await rows('alone'));
      expect((await wh.ledger({ node: 'batched', partition: 'k2' }))[0]).toMatchObject({ warnings: ['not_null: 1 rows have amount NULL'], cost: null });
    });

    it('a partition published twice in one batch finds its first version, as in two publishes: the ledger row of the first is written before the second reads it', async () => {
      const { published, failed } = await wh.publishMany([write('orders', 'k1', { rows: ORDERS }), write('orders', 'k2', { rows: ORDERS }), write('orders', 'k1', { rows: ORDERS, attempt: 2 })]);
      expect(failed).toBeUndefined();
      expect(published.map((p) => [p.version, p.alreadyPublished ?? false])).toEqual([
        [1, false],
        [1, false],
        [1, true],
      ]);
      expect((await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r.version, r.executions])).toEqual([
        ['k1', 1, 2],
        ['k2', 1, 1],
      ]);
    });

    it("a staged partition in the batch of its upstream's staged partition pins that version, as it would after it", async () => {
      const staged = { backfillId: 'bf-s', runKey: 'rs', stage: true } as const;
      await wh.publish(write('orders', 'k1', { rows: [{ order_id: 1 }] }));
      const { failed } = await wh.publishMany([
        write('orders', 'k1', { ...staged, rows: [{ order_id: 1 }, { order_id: 2 }] }),
        // It reads the version too (a lake's file of it is written at the commit: it is read where it is staged).
        write('counts', 'k1', { ...staged, selects: [{ sql: 'SELECT COUNT(*) AS n FROM orders', bindings: {} }], inputs: [{ node: 'orders', from: 'k1', to: 'k1' }] }),
      ]);
      expect(failed).toBeUndefined();
      const [counts] = await wh.ledger({ node: 'counts' });
      expect(counts?.inputs).toMatchObject([{ node: 'orders', versions: { k1: 2 } }]);
      await wh.publishStaged({ backfillId: 'bf-s', runKey: 'rs' });
      expect(await wh.query('SELECT n FROM counts')).toEqual([{ n: 2 }]);
    });

    it('a partition in the batch of the upstream partition it reads reads the version that batch wrote, as it would after it', async () => {
      await wh.publish(write('orders', 'k1', { rows: [{ order_id: 1 }] }));
      const inputs = [{ node: 'orders', from: 'k1', to: 'k2' }];
      const { published, failed } = await wh.publishMany([
        write('orders', 'k1', { runKey: 'run-2', rows: [{ order_id: 1 }, { order_id: 2 }] }),
        write('orders', 'k2', { runKey: 'run-2', rows: [{ order_id: 3 }] }),
        write('counts', 'k1', { runKey: 'run-2', selects: [{ sql: 'SELECT COUNT(*) AS n, SUM(order_id) AS total FROM orders', bindings: {} }], inputs }),
      ]);
      expect(failed?.error).toBeUndefined();
      expect(published.map((p) => p.version)).toEqual([2, 1, 1]);
      expect(await wh.query('SELECT n, total FROM counts')).toEqual([{ n: 3, total: 6 }]);
      const [counts] = await wh.ledger({ node: 'counts' });
      expect(counts?.inputs).toMatchObject([{ node: 'orders', versions: { k1: 2, k2: 1 } }]);
    });

    it('publishMany of a retry returns the versions already published', async () => {
      const first = await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      const { published, failed } = await wh.publishMany([write('orders', '2024-01-01', { rows: ORDERS, attempt: 2 }), write('orders', '2024-01-02', { rows: ORDERS })]);
      expect(failed).toBeUndefined();
      expect(published[0]).toEqual({ ...first, alreadyPublished: true });
      expect(published[1]).toMatchObject({ version: 1, rowCount: 3, checksum: first.checksum });
    });

    it('other partitions of the node stay as they were', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: [{ order_id: 1 }] }));
      await wh.publish(write('orders', '2024-01-02', { rows: [{ order_id: 2 }] }));
      await wh.publish(write('orders', '2024-01-01', { runKey: 'run-2', rows: [{ order_id: 3 }] }));
      expect(await view('orders', 'order_id', 'order_id')).toEqual([{ order_id: 2 }, { order_id: 3 }]);
    });

    it('a later version may bring a new column: it is added and the view shows it', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: [{ order_id: 1 }] }));
      await wh.publish(write('orders', '2024-01-02', { rows: [{ order_id: 2, channel: 'web' }] }));
      expect(await view('orders', 'order_id, channel', 'order_id')).toEqual([
        { order_id: 1, channel: null },
        { order_id: 2, channel: 'web' },
      ]);
    });

    it('a schema change changes the schema hash, the same schema keeps it', async () => {
      const a = await wh.publish(write('x', 'k1', { rows: [{ a: 1 }] }));
      const b = await wh.publish(write('y', 'k1', { rows: [{ a: 2 }] }));
      const c = await wh.publish(write('z', 'k1', { rows: [{ a: 1, b: 2 }] }));
      expect(b.schemaHash).toBe(a.schemaHash);
      expect(c.schemaHash).not.toBe(a.schemaHash);
    });

    it('a transform that writes nothing publishes an empty version', async () => {
      const published = await wh.publish(write('nothing', 'k'));
      expect(published).toMatchObject({ version: 1, rowCount: 0 });
      expect((await wh.ledger({ node: 'nothing' }))[0]).toMatchObject({ status: 'published', rowCount: 0 });
    });

    it('a dataset whose first version was empty takes the columns of a later one', async () => {
      await wh.publish(write('late', 'k1'));
      await wh.publish(write('late', 'k2', { rows: [{ id: 1, amount: 5 }] }));
      expect(await wh.query('SELECT id, amount FROM late')).toEqual([{ id: 1, amount: 5 }]);
    });

    it('a partition published again with no rows shows none, in the view and in a downstream partition that reads it', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: [{ order_id: 1 }] }));
      await wh.publish(write('orders', '2024-01-01', { runKey: 'run-2', rows: [] }));
      expect(await wh.query('SELECT order_id FROM orders')).toEqual([]);
      const down = await wh.publish(write('counts', '2024-01-01', { selects: [{ sql: 'SELECT COUNT(order_id) AS n FROM orders', bindings: {} }], inputs: [{ node: 'orders', from: '2024-01-01', to: '2024-01-01' }] }));
      expect(down.rowCount).toBe(1);
      expect(await wh.query('SELECT n FROM counts')).toEqual([{ n: 0 }]);
    });

    it('a version whose column holds only NULLs leaves the column as it was', async () => {
      await wh.publish(write('sales', 'k1', { rows: [{ id: 1, amount: 5 }] }));
      await wh.publish(write('sales', 'k2', { rows: [{ id: 2, amount: null }] }));
      expect(await wh.query('SELECT id, amount FROM sales ORDER BY id')).toEqual([
        { id: 1, amount: 5 },
        { id: 2, amount: null },
      ]);
      expect(await wh.query('SELECT SUM(amount) AS total FROM sales')).toEqual([{ total: 5 }]);
    });

    it('dataset names that collide with internal tables are refused before any DDL', async () => {
      for (const node of ['backfill_ledger', 'sqlite_master', 'pg_class', 'orders__versions', 'Orders', 'x; DROP TABLE y']) {
        const error = await rejection(wh.publish(write(node, 'k', { rows: [{ a: 1 }] })));
        expect(error, node).toBeInstanceOf(InvalidDatasetError);
      }
      expect(await wh.ledger({})).toEqual([]);
    });
  });

  describe(`${kind}: checksums`, () => {
    it('do not depend on the order rows were inserted in', async () => {
      const a = await wh.publish(write('a', 'k', { rows: ORDERS }));
      const b = await wh.publish(write('b', 'k', { rows: [...ORDERS].reverse() }));
      expect(b.checksum).toBe(a.checksum);
    });

    it('change when the data changes', async () => {
      const a = await wh.publish(write('a', 'k', { rows: ORDERS }));
      const b = await wh.publish(write('b', 'k', { rows: ORDERS.map((r) => (r.order_id === 2 ? { ...r, amount: 21 } : r)) }));
      expect(b.checksum).not.toBe(a.checksum);
    });

    it('tell a duplicated row from a single one', async () => {
      const a = await wh.publish(write('a', 'k', { rows: [{ x: 1 }] }));
      const b = await wh.publish(write('b', 'k', { rows: [{ x: 1 }, { x: 1 }] }));
      expect(b.checksum).not.toBe(a.checksum);
    });

    it('are the same for the same rows computed in the warehouse or given by a transform', async () => {
      const a = await wh.publish(write('a', 'k', { rows: [{ x: 1, y: 'p' }, { x: 2, y: 'q' }] }));
      const b = await wh.publish(write('b', 'k', { selects: [{ sql: "SELECT 2 AS x, 'q' AS y UNION ALL SELECT 1, 'p'", bindings: {} }] }));
      expect(b.checksum).toBe(a.checksum);
      expect(b.rowCount).toBe(2);
    });

    it('store a NaN that SQL computes as NULL, as SQLite must: the same rows give the same checksum on every engine', async () => {
      await wh.publish(write('edges', 'k', { rows: [{ id: 1, n: Number.POSITIVE_INFINITY }, { id: 2, n: 2.5 }] }));
      const inputs = [{ node: 'edges', from: 'k', to: 'k' }];
      // Infinity minus itself is NaN.
      const nan = await wh.publish(write('nan', 'k', { selects: [{ sql: 'SELECT id, n - n AS d FROM edges', bindings: {} }], inputs }));
      const nulls = await wh.publish(write('nulls', 'k', { selects: [{ sql: 'SELECT id, CASE WHEN id = 1 THEN NULL ELSE n - n END AS d FROM edges', bindings: {} }], inputs }));
      expect(nan.checksum).toBe(nulls.checksum);
      expect(await view('nan', 'id, d', 'id')).toEqual([
        { id: 1, d: null },
        { id: 2, d: 0 },
      ]);
    });

    it('store a -0 as 0, from SQL and from rows, as SQLite and Parquet must: checks, the view and the checksum see the same zero on every engine', async () => {
      await wh.publish(write('halves', 'k', { rows: [1, 2, 3, 4].map((id) => ({ id, n: id / 2 })) }));
      const inputs = [{ node: 'halves', from: 'k', to: 'k' }];
      // A check that sees a negative zero as the engine writes it as text (PostgreSQL '-0', DuckDB '-0.0').
      const noNegativeZero = { type: 'sql', name: 'no -0', sql: "SELECT * FROM {{this}} WHERE CAST(z AS TEXT) LIKE '-%'" } as const;
      // Zero times -1 is -0, beside zeros (a Parquet dictionary keeps one of the two), and alone.
      const signed = 'SELECT id, (n - n) * (CASE WHEN id % 2 = 0 THEN -1 ELSE 1 END) AS z FROM halves';
      const fromSql = await wh.publish(write('zeros', 'k1', { selects: [{ sql: signed, bindings: {} }], inputs, checks: [noNegativeZero] }));
      await wh.publish(write('zeros', 'k2', { selects: [{ sql: 'SELECT id, (n - n) * -1 AS z FROM halves', bindings: {} }], inputs, checks: [noNegativeZero] }));
      await wh.publish(write('zeros', 'k3', { rows: [{ id: 1, z: -0 }, { id: 2, z: 0.5 }], checks: [noNegativeZero] }));
      const zeros = (await view('zeros', 'z', 'z')).map((r) => r.z);
      expect(zeros.map((z) => (Object.is(z, -0) ? '-0' : z))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5]);
      expect(await wh.query("SELECT COUNT(*) AS n FROM zeros WHERE CAST(z AS TEXT) LIKE '-%'")).toEqual([{ n: 0 }]);
      const plain = await wh.publish(write('plain', 'k1', { selects: [{ sql: 'SELECT id, (n - n) AS z FROM halves', bindings: {} }], inputs }));
      expect(fromSql.checksum).toBe(plain.checksum);
    });

    it('hash integers above 2^53 exactly, as every engine stores them: the same on every engine, different for different ones', async () => {
      const big = 9007199254740993n;
      // The checksum every engine must give: the exact integers, hashed as the row hasher hashes them.
      const expected = (ids: readonly (bigint | number)[]): string => {
        const hasher = new RowHasher(['id']);
        for (const id of ids) hasher.add([id]);
        return hasher.checksum();
      };
      const a = await wh.publish(write('a', 'k', { rows: [{ id: big }, { id: 1n }] }));
      const b = await wh.publish(write('b', 'k', { rows: [{ id: big - 1n }, { id: 1n }] }));
      const c = await wh.publish(write('c', 'k', { selects: [{ sql: `SELECT ${big} AS id UNION ALL SELECT 1`, bindings: {} }] }));
      expect(a.checksum).toBe(expected([big, 1n]));
      expect(b.checksum).toBe(expected([big - 1n, 1n]));
      expect(b.checksum).not.toBe(a.checksum);
      expect(c.checksum).toBe(a.checksum);
      // Small integers hash as they always did, whether they come back as numbers or as bigints.
      expect(expected([big, 1n])).toBe(expected([big, 1]));
    });

    it('keep integers above 2^53 exact in the stored version: a restore to it verifies, whether a transform gave them or SQL summed them', async () => {
      const big = 9007199254740993n;
      const given = await wh.publish(write('given', 'k', { rows: [{ id: big }, { id: 1n }] }));
      // A sum of 64-bit integers is wider than 64 bits on some engines (DuckDB's HUGEINT).
      const summed = await wh.publish(write('summed', 'k', { selects: [{ sql: `SELECT SUM(x) AS id FROM (SELECT ${big} AS x UNION ALL SELECT 0) t`, bindings: {} }] }));
      for (const [node, first] of [['given', given], ['summed', summed]] as const) {
        await wh.publish(write(node, 'k', { runKey: 'run-2', backfillId: 'bf-2', rows: [{ id: 2 }] }));
        const restored = await wh.restore({ rollbackId: 'rb', backfillId: 'bf-2', node, partition: 'k', from: 2, to: 1 });
        expect(restored.status, node).toBe('restored');
        expect((await wh.publishedRows(node)).map((r) => [r.version, r.checksum]), node).toEqual([[1, first.checksum]]);
      }
    });

    it("ignore columns that only other partitions of the dataset have", async () => {
      const first = await wh.publish(write('orders', 'k1', { rows: [{ x: 1 }, { x: 2 }] }));
      await wh.publish(write('orders', 'k2', { rows: [{ x: 1, extra: 'e' }] }));
      const again = await wh.publish(write('orders', 'k1', { runKey: 'run-2', rows: [{ x: 2 }, { x: 1 }] }));
      expect(again.checksum).toBe(first.checksum);
      expect(again.schemaHash).toBe(first.schemaHash);
    });
  });

  describe(`${kind}: a column's type widens as PostgreSQL's does`, () => {
    /** The checksum every engine must give for these rows (values in the order of the sorted `columns`). */
    const expected = (columns: readonly string[], rows: readonly unknown[][]): string => {
      const hasher = new RowHasher(columns);
      for (const row of rows) hasher.add(row);
      return hasher.checksum();
    };

    it('values of several types in one partition end as text, the same rows and checksum on every engine', async () => {
      const mixed = await wh.publish(write('mixed', 'k', { rows: [{ id: 1, c: 1 }, { id: 2, c: '1' }, { id: 3, c: 2.5 }] }));
      expect(await view('mixed', 'id, c', 'id')).toEqual([
        { id: 1, c: '1' },
        { id: 2, c: '1' },
        { id: 3, c: '2.5' },
      ]);
      expect(mixed.checksum).toBe(expected(['c', 'id'], [['1', 1], ['1', 2], ['2.5', 3]]));
      const flags = await wh.publish(write('flags', 'k', { rows: [{ id: 1, f: true }, { id: 2, f: 2 }, { id: 3, f: 'x' }, { id: 4, f: false }] }));
      expect(await view('flags', 'id, f', 'id')).toEqual([
        { id: 1, f: 'true' },
        { id: 2, f: '2' },
        { id: 3, f: 'x' },
        { id: 4, f: 'false' },
      ]);
      expect(flags.checksum).toBe(expected(['f', 'id'], [['true', 1], ['2', 2], ['x', 3], ['false', 4]]));
      const numbers = await wh.publish(write('numbers', 'k', { rows: [{ id: 1, n: 2 }, { id: 2, n: 2.5 }] }));
      expect(await view('numbers', 'id, n', 'id')).toEqual([
        { id: 1, n: 2 },
        { id: 2, n: 2.5 },
      ]);
      expect(numbers.checksum).toBe(expected(['id', 'n'], [[1, 2], [2, 2.5]]));
    });

    it('a later version that needs a wider type widens the column: its values as written, earlier versions as text, and a restore of an earlier version verifies', async () => {
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1, zip: 2134, paid: true, amount: 2 }] }));
      await wh.publish(write('orders', 'k2', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 2, zip: 501, paid: false, amount: 3 }] }));
      const fixed = await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 1, zip: '02134', paid: 'yes', amount: 2.5 }] }));
      expect(await view('orders', 'id, zip, paid, amount', 'id')).toEqual([
        { id: 1, zip: '02134', paid: 'yes', amount: 2.5 },
        { id: 2, zip: '501', paid: 'false', amount: 3 },
      ]);
      expect(fixed.checksum).toBe(expected(['amount', 'id', 'paid', 'zip'], [[2.5, 1, 'yes', '02134']]));
      // Version 1 of k1 is read as it was published: its checksum still verifies.
      const restore: RestoreRequest = { rollbackId: 'rb-1', backfillId: 'bf-2', node: 'orders', partition: 'k1', from: 2, to: 1 };
      expect(await wh.restore(restore)).toMatchObject({ status: 'restored', to: 1 });
      expect(await view('orders', 'id, zip, paid, amount', 'id')).toEqual([
        { id: 1, zip: '2134', paid: 'true', amount: 2 },
        { id: 2, zip: '501', paid: 'false', amount: 3 },
      ]);
      // And forward again: version 2's text verifies too.
      expect(await wh.restore({ ...restore, rollbackId: 'rb-2', backfillId: 'bf-1', from: 1, to: 2, force: true })).toMatchObject({ status: 'restored', to: 2 });
      expect(await view('orders', 'zip', 'zip')).toEqual([{ zip: '02134' }, { zip: '501' }]);
    });

    it('fractions widened to text read as PostgreSQL writes them, and their version still verifies', async () => {
      const rows = [{ id: 1, x: 0.5 }, { id: 2, x: 1.5e-7 }, { id: 3, x: 123456789012345.6 }, { id: 4, x: 0.1 + 0.2 }, { id: 6, x: -3.25e200 }];
      await wh.publish(write('readings', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows }));
      await wh.publish(write('readings', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 1, x: 'none' }] }));
      expect(await wh.restore({ rollbackId: 'rb-1', backfillId: 'bf-2', node: 'readings', partition: 'k1', from: 2, to: 1 })).toMatchObject({ status: 'restored', to: 1 });
      expect((await view('readings', 'x', 'id')).map((r) => r.x)).toEqual(['0.5', '1.5e-07', '123456789012345.6', '0.30000000000000004', '-3.25e+200']);
    });

    it('a column widens in a version of another partition, and a later version of the first partition writes its old type again', async () => {
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1, zip: 2134 }] }));
      await wh.publish(write('orders', 'k2', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 2, zip: 'N1 9GU' }] }));
      const again = await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 1, zip: 2135 }] }));
      expect(await view('orders', 'id, zip', 'id')).toEqual([
        { id: 1, zip: '2135' },
        { id: 2, zip: 'N1 9GU' },
      ]);
      expect(again.checksum).toBe(expected(['id', 'zip'], [[1, '2135']]));
      expect(await wh.restore({ rollbackId: 'rb-1', backfillId: 'bf-2', node: 'orders', partition: 'k1', from: 2, to: 1 })).toMatchObject({ status: 'restored', to: 1 });
      expect(await view('orders', 'id, zip', 'id')).toEqual([
        { id: 1, zip: '2134' },
        { id: 2, zip: 'N1 9GU' },
      ]);
    });
  });

  describe(`${kind}: SELECTs run in the warehouse`, () => {
    it('insert the rows a SELECT returns, with :partition and :start bound', async () => {
      // Column names every engine takes unquoted (`at` is a keyword in DuckDB).
      await wh.publish(
        write('events', '2024-01-01', {
          rows: [
            { id: 1, happened_at: '2024-01-01T03:00:00Z', amount: 5 },
            { id: 2, happened_at: '2024-01-01T09:00:00Z', amount: 7 },
            { id: 3, happened_at: '2024-01-02T01:00:00Z', amount: 100 },
          ],
        }),
      );
      const published = await wh.publish(
        write('daily', '2024-01-01', {
          selects: [
            {
              sql: 'SELECT :partition AS day, COUNT(*) AS events, SUM(amount) AS total FROM events WHERE happened_at >= :start AND happened_at < :end',
              bindings: { partition: '2024-01-01', start: '2024-01-01T00:00:00Z', end: '2024-01-02T00:00:00Z' },
            },
          ],
        }),
      );
      expect(published.rowCount).toBe(1);
      expect(await wh.query('SELECT * FROM daily')).toEqual([{ day: '2024-01-01', events: 2, total: 12 }]);
    });

    it('combine with rows and several SELECTs in one partition', async () => {
      const published = await wh.publish(
        write('mixed', 'k', {
          rows: [{ source: 'row' }],
          selects: [
            { sql: "SELECT 'select-1' AS source", bindings: {} },
            { sql: 'SELECT :name AS source', bindings: { name: 'select-2' } },
          ],
        }),
      );
      expect(published.rowCount).toBe(3);
      expect((await view('mixed', 'source', 'source')).map((r) => r.source)).toEqual(['row', 'select-1', 'select-2']);
    });

    it('bind numbers as numbers, also in the SELECT list', async () => {
      const a = await wh.publish(write('a', 'k', { selects: [{ sql: 'SELECT :n AS n, :f AS f', bindings: { n: 200, f: 2.5 } }] }));
      const b = await wh.publish(write('b', 'k', { rows: [{ n: 200, f: 2.5 }] }));
      expect(await wh.query('SELECT n, f FROM a')).toEqual([{ n: 200, f: 2.5 }]);
      expect(a.checksum).toBe(b.checksum);
    });

    it('does integer arithmetic with whole-number parameters, as with whole-number columns', async () => {
      await wh.publish(write('a', 'k', { selects: [{ sql: 'SELECT 7 * :rate / 2 AS v, :rate / 2 AS w', bindings: { rate: 3 } }] }));
      expect(await wh.query('SELECT v, w FROM a')).toEqual([{ v: 10, w: 1 }]);
      expect(await wh.query('SELECT :n / 2 AS half', { n: 5 })).toEqual([{ half: 2 }]);
    });

    it('query() binds named parameters too, and leaves :: casts and quoted colons alone', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      expect(await wh.query("SELECT order_id, ':not_a_param' AS s FROM orders WHERE country = :country ORDER BY order_id", { country: 'DE' })).toEqual([
        { order_id: 1, s: ':not_a_param' },
        { order_id: 3, s: ':not_a_param' },
      ]);
    });

    it('accept a trailing semicolon', async () => {
      expect((await wh.publish(write('a', 'k', { selects: [{ sql: 'SELECT 1 AS x;\n', bindings: {} }] }))).rowCount).toBe(1);
    });

    it('accept a comment after the statement\'s semicolon, and an empty statement before it, as plan does', async () => {
      for (const [i, sql] of ['SELECT 1 AS x; -- the one row', 'SELECT 1 AS x; /* note */\n', '; SELECT 1 AS x'].entries()) {
        expect(plannedReading(sql), sql).not.toThrow();
        expect((await wh.publish(write('a', `k${i}`, { selects: [{ sql, bindings: {} }] }))).rowCount, sql).toBe(1);
      }
    });
  });

  describe(`${kind}: a partition reads only the upstream partitions it maps to`, () => {
    const days = ['2024-01-01', '2024-01-02', '2024-01-03', '2024-01-04', '2024-01-05'];
    const seed = async () => {
      for (const [i, day] of days.entries()) await wh.publish(write('daily', day, { rows: [{ day, revenue: (i + 1) * 10 }] }));
    };

    it('FROM <upstream> inside a partition shows only the mapped partitions', async () => {
      await seed();
      const published = await wh.publish(
        write('rolling', '2024-01-04', {
          selects: [{ sql: 'SELECT COUNT(*) AS days, SUM(revenue) AS revenue FROM daily', bindings: {} }],
          inputs: [{ node: 'daily', from: '2024-01-02', to: '2024-01-04' }],
        }),
      );
      expect(published.rowCount).toBe(1);
      expect(await wh.query('SELECT days, revenue FROM rolling')).toEqual([{ days: 3, revenue: 90 }]);
      // outside a partition, the view shows every published partition
      expect(await wh.query('SELECT COUNT(*) AS n FROM daily')).toEqual([{ n: 5 }]);
    });

    it('the scope reaches subqueries and joins, and static keys and "all" scope by name', async () => {
      await seed();
      await wh.publish(write('regions', 'eu', { rows: [{ region: 'eu' }] }));
      await wh.publish(write('regions', 'us', { rows: [{ region: 'us' }] }));
      await wh.publish(write('regions', 'apac', { rows: [{ region: 'apac' }] }));
      await wh.publish(
        write('report', 'k', {
          selects: [
            {
              sql: 'SELECT (SELECT COUNT(*) FROM daily) AS days, (SELECT COUNT(*) FROM regions r JOIN daily d ON 1 = 1) AS pairs',
              bindings: {},
            },
          ],
          inputs: [
            { node: 'daily', from: '2024-01-01', to: '2024-01-05', all: true },
            { node: 'regions', from: 'eu', to: 'us', keys: ['eu', 'us'] },
          ],
        }),
      );
      expect(await wh.query('SELECT days, pairs FROM report')).toEqual([{ days: 5, pairs: 10 }]);
    });

    it('an input that lists no keys reads none of its node: FROM <node> is empty, not every published partition', async () => {
      await seed();
      await wh.publish(write('regions', 'eu', { rows: [{ region: 'eu' }] }));
      // What a partition reads when its mapping names no partition its upstream node has.
      const none = [
        { node: 'daily', from: '2023-12-31', to: '2023-12-31', keys: [] },
        { node: 'regions', from: 'us', to: 'us', keys: [] },
      ];
      const sql = 'SELECT (SELECT COUNT(*) FROM daily) AS days, (SELECT COUNT(*) FROM regions) AS regions';
      await wh.publish(write('report', 'us', { selects: [{ sql, bindings: {} }], inputs: none }));
      expect(await wh.query('SELECT days, regions FROM report')).toEqual([{ days: 0, regions: 0 }]);
      const pinned = await wh.pin(none);
      expect(pinned.map((p) => p.versions)).toEqual([[], []]);
      expect(await wh.query(sql, {}, pinned)).toEqual([{ days: 0, regions: 0 }]);
      expect((await wh.pin(none, { runKey: 'run-1' })).map((p) => p.versions)).toEqual([[], []]);
      const [row] = await wh.ledger({ node: 'report' });
      expect(row!.inputs).toEqual([
        expect.objectContaining({ node: 'daily', from: '2023-12-31', to: '2023-12-31', partitions: 0, versions: {} }),
        expect.objectContaining({ node: 'regions', from: 'us', to: 'us', partitions: 0, versions: {} }),
      ]);
      // The plain name is still the only way in.
      expect(await rejection(wh.query(`SELECT COUNT(*) AS n FROM ${raw.view('daily')}`, {}, pinned))).toBeInstanceOf(SqlError);
    });

    it('pins what a transform read: a newer upstream version does not change its reads or its lineage', async () => {
      await seed();
      const inputs = [{ node: 'daily', from: '2024-01-01', to: '2024-01-02' }];
      const pinned = await wh.pin(inputs);
      expect(pinned[0]!.versions.sort()).toEqual([
        ['2024-01-01', 1],
        ['2024-01-02', 1],
      ]);
      await wh.publish(write('daily', '2024-01-01', { runKey: 'run-2', rows: [{ day: '2024-01-01', revenue: 999 }] }));
      const read = await wh.query('SELECT SUM(revenue) AS revenue FROM daily', {}, pinned);
      expect(read).toEqual([{ revenue: 30 }]);
      await wh.publish(write('summary', 'k', { rows: [{ revenue: 30 }], inputs, pinned }));
      const [row] = await wh.ledger({ node: 'summary' });
      expect(row!.inputs[0]).toMatchObject({ node: 'daily', partitions: 2, versions: { '2024-01-01': 1, '2024-01-02': 1 } });
      // unpinned, the same read sees the new version
      expect(await wh.query('SELECT SUM(revenue) AS revenue FROM daily', {}, await wh.pin(inputs))).toEqual([{ revenue: 1019 }]);
    });
  });

  describe(`${kind}: SQL errors`, () => {
    it('bad SQL throws SqlError naming the problem, and publishes nothing', async () => {
      const error = await rejection(wh.publish(write('bad', 'k', { selects: [{ sql: 'SELECT x FROM no_such_table', bindings: {} }] })));
      expect(error).toBeInstanceOf(SqlError);
      expect(error.message).toMatch(/no_such_table/);
      expect(error.message).toContain('SELECT x FROM no_such_table');
      expect(await wh.ledger({ node: 'bad' })).toEqual([]);
    });

    it('a syntax error throws SqlError', async () => {
      const error = await rejection(wh.publish(write('bad', 'k', { selects: [{ sql: 'SELECT 1 +', bindings: {} }] })));
      expect(error).toBeInstanceOf(SqlError);
      expect(error.message).toMatch(/syntax error|incomplete input/);
    });

    it('a statement that is not a SELECT throws SqlError', async () => {
      const error = await rejection(wh.publish(write('bad', 'k', { selects: [{ sql: 'DELETE FROM orders', bindings: {} }] })));
      expect(error).toBeInstanceOf(SqlError);
      expect(error.message).toMatch(/must be a SELECT/);
    });

    it('a missing named parameter throws SqlError that names the way out', async () => {
      const error = await rejection(
        wh.publish(write('bad', 'k', { selects: [{ sql: 'SELECT :partition AS p, :region AS r', bindings: { partition: 'k' } }] })),
      );
      expect(error).toBeInstanceOf(SqlError);
      expect(error.message).toMatch(/region/);
      expect(error.message).toMatch(/params/);
      expect(await wh.ledger({ node: 'bad' })).toEqual([]);
    });

    it('query() wraps bad SQL in SqlError', async () => {
      const error = await rejection(wh.query('SELECT * FROM nothing_here'));
      expect(error).toBeInstanceOf(SqlError);
      expect(error.message).toMatch(/nothing_here/);
    });

    it("columns starting with __ are refused as invalid output, from rows and from SQL alike, naming the column and the rule, and nothing is written", async () => {
      const outputs: Array<Pick<WriteOptions, 'rows' | 'selects'>> = [
        { rows: [{ __partition: 'x' }] },
        { rows: [{ n: 1, __x: 2 }] },
        { selects: [{ sql: 'SELECT 1 AS n, 2 AS __x', bindings: {} }] },
        { rows: [{ n: 1 }], selects: [{ sql: 'SELECT 2 AS n, 3 AS __x', bindings: {} }] },
      ];
      for (const data of outputs) {
        const error = await rejection(wh.publish(write('bad', 'k', data)));
        expect(error, JSON.stringify(data)).toBeInstanceOf(InvalidOutputError);
        expect(error.message).toMatch(/^the output has a column '(__partition|__x)': names starting with __ are reserved for backfill's own columns \(__partition, __version\): rename it in the transform's output/);
        expect(error.message).not.toMatch(/SELECT|INSERT|CREATE/);
      }
      expect(await wh.ledger({ node: 'bad' })).toEqual([]);
      await expect(wh.query('SELECT * FROM bad')).rejects.toThrow(SqlError);
    });

    it('columns whose names differ only in case, or share one, are refused as invalid output, from rows and from SQL alike, reading an upstream or not, naming both and the fix', async () => {
      await wh.publish(write('up', 'k', { rows: [{ x: 1 }] }));
      const inputs = [{ node: 'up', from: 'k', to: 'k' }];
      const outputs: Array<[Pick<WriteOptions, 'rows' | 'selects' | 'inputs'>, RegExp]> = [
        [{ rows: [{ Amount: 1, amount: 2 }] }, /^the output has columns 'Amount' and 'amount', whose names differ only in case/],
        [{ rows: [{ amount: 1 }], selects: [{ sql: 'SELECT 2 AS "Amount"', bindings: {} }] }, /^the output has columns 'amount' and 'Amount', whose names differ only in case/],
        [{ selects: [{ sql: 'SELECT 1 AS "Amount", 2 AS amount', bindings: {} }] }, /^the output has columns 'Amount' and 'amount', whose names differ only in case/],
        [{ selects: [{ sql: 'SELECT 1 AS a, 2 AS a', bindings: {} }] }, /^the output has two columns named 'a': /],
        // SQLite and DuckDB rename a subquery's columns of one name (a:1, amount_1): these read an upstream, which the warehouse wraps.
        [{ selects: [{ sql: 'SELECT x AS "Amount", x AS amount FROM up', bindings: {} }], inputs }, /^the output has columns 'Amount' and 'amount', whose names differ only in case/],
        [{ selects: [{ sql: 'SELECT x AS a, x AS a FROM up', bindings: {} }], inputs }, /^the output has two columns named 'a': /],
        [{ selects: [{ sql: 'WITH t AS (SELECT x FROM up) SELECT x AS a, x AS "A" FROM t', bindings: {} }], inputs }, /^the output has columns 'a' and 'A', whose names differ only in case/],
        [{ selects: [{ sql: 'SELECT u.x, v.x FROM up u, up v', bindings: {} }], inputs }, /^the output has two columns named 'x': /],
      ];
      for (const [data, message] of outputs) {
        const error = await rejection(wh.publish(write('cased', 'k', data)));
        expect(error, JSON.stringify(data)).toBeInstanceOf(InvalidOutputError);
        expect(error.message, JSON.stringify(data)).toMatch(message);
        expect(error.message).toMatch(/: give one of them another name in the transform's output \(in SQL, AS another_name\)$/);
      }
      expect(await wh.ledger({ node: 'cased' })).toEqual([]);
      // A statement with a WITH of its own that names a CTE as the upstream still runs, and reads its own CTE.
      await wh.publish(write('cased', 'k', { selects: [{ sql: 'WITH up AS (SELECT 7 AS x) SELECT x AS a, x + 1 AS b FROM up', bindings: {} }], inputs }));
      expect(await wh.query('SELECT a, b FROM cased')).toEqual([{ a: 7, b: 8 }]);
    });

    it('a column with an empty name is refused as invalid output before any SQL runs, from rows and from SQL alike', async () => {
      const outputs: Array<[Pick<WriteOptions, 'rows' | 'selects'>, RegExp]> = [
        [{ rows: [{ n: 1, '': 2 }] }, /^the output has a column with an empty name: give every column a name of its own \(in SQL, AS name\)$/],
        [{ selects: [{ sql: 'SELECT 1 AS n, 2 AS ""', bindings: {} }] }, /^spec SQL names a selected column "" \(a name of no characters\), .*: give every selected expression a name of its own \(AS name\): SELECT 1 AS n, 2 AS ""$/],
      ];
      for (const [data, message] of outputs) {
        const error = await rejection(wh.publish(write('unnamed', 'k', data)));
        expect(error, JSON.stringify(data)).toBeInstanceOf(InvalidOutputError);
        expect(error.message).toMatch(message);
      }
      // Anywhere else in the statement, it is refused as SQL.
      const elsewhere = await rejection(wh.publish(write('unnamed', 'k', { selects: [{ sql: 'SELECT "" FROM (SELECT 1 AS n) AS t', bindings: {} }] })));
      expect(elsewhere).toBeInstanceOf(SqlRefusedError);
      expect(elsewhere.message).toMatch(/^spec SQL holds an empty quoted name \(""\)/);
      expect(await wh.ledger({ node: 'unnamed' })).toEqual([]);
    });

    it("a column whose name differs only in case from one of the dataset's is refused, in a later version of any partition, from rows and from SQL alike, and the dataset is left as it was", async () => {
      await wh.publish(write('cased', 'k1', { rows: [{ Amount: 1 }] }));
      const later: Array<Pick<WriteOptions, 'rows' | 'selects'>> = [{ rows: [{ amount: 2 }] }, { rows: [{ amount: 2, note: 'y' }] }, { selects: [{ sql: 'SELECT 2 AS amount', bindings: {} }] }];
      for (const [i, data] of later.entries()) {
        for (const partition of ['k1', 'k2']) {
          const error = await rejection(wh.publish(write('cased', partition, { ...data, runKey: `run-${i + 2}` })));
          expect(error).toBeInstanceOf(SqlError);
          expect(error.message).toMatch(/^dataset 'cased': column 'amount' differs only in case from its column 'Amount', which the warehouses do not treat alike .*: name it 'Amount', or give it another name/);
        }
      }
      expect(await wh.query('SELECT * FROM cased')).toEqual([{ Amount: 1 }]);
      expect((await wh.ledger({ node: 'cased' })).filter((r) => r.status === 'published').map((r) => r.partition)).toEqual(['k1']);
      // The name as the dataset has it, and a new one, still go.
      await wh.publish(write('cased', 'k2', { rows: [{ Amount: 3, note: 'x' }], runKey: 'run-9' }));
      expect(await wh.query('SELECT "Amount", note FROM cased ORDER BY "Amount"')).toEqual([{ Amount: 1, note: null }, { Amount: 3, note: 'x' }]);
    });
  });

  describe(`${kind}: checks`, () => {
    const failing: Array<[string, CheckInput, RegExp]> = [
      ['not_null', { type: 'not_null', columns: ['order_id', 'amount'] }, /not_null: 1 rows have amount NULL/],
      ['unique', { type: 'unique', columns: ['country'] }, /unique: 1 duplicated values of \(country\)/],
      ['row_count min', { type: 'row_count', min: 5 }, /row_count: 3 rows, expected at least 5/],
      ['row_count max', { type: 'row_count', name: 'small', max: 2 }, /small: 3 rows, expected at most 2/],
      ['sql over {{this}}', { type: 'sql', name: 'big orders', sql: 'SELECT * FROM {{ this }} WHERE amount > 15' }, /big orders: 1 violating row(?!s)/],
    ];

    for (const [label, check, message] of failing) {
      it(`a failing ${label} check throws CheckFailedError, publishes nothing and records a failed_check row`, async () => {
        const error = await rejection(wh.publish(write('orders', '2024-01-01', { rows: ORDERS, checks: [check] })));
        expect(error).toBeInstanceOf(CheckFailedError);
        expect(error.message).toMatch(message);
        expect(error.message).toMatch(/^checks failed: /);
        const ledger = await wh.ledger({ node: 'orders' });
        expect(ledger).toHaveLength(1);
        expect(ledger[0]).toMatchObject({ version: 1, status: 'failed_check', rowCount: null, checksum: null, schemaHash: null, current: false });
        expect(ledger[0]!.error).toMatch(message);
      });
    }

    it('passing checks publish', async () => {
      const checks: CheckInput[] = [
        { type: 'not_null', columns: ['order_id', 'country'] },
        { type: 'unique', columns: ['order_id'] },
        { type: 'row_count', min: 3, max: 3 },
        { type: 'sql', name: 'no negative', sql: 'SELECT * FROM {{this}} WHERE amount < 0' },
      ];
      const published = await wh.publish(write('orders', '2024-01-01', { rows: ORDERS, checks }));
      expect(published.version).toBe(1);
      expect((await wh.ledger({ node: 'orders' }))[0]!.status).toBe('published');
    });

    it('a check sees only the new version of its own partition', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: [{ order_id: 1 }] }));
      // same order_id in another partition, and in the old version of this one: still unique here
      await wh.publish(write('orders', '2024-01-02', { rows: [{ order_id: 1 }], checks: [{ type: 'unique', columns: ['order_id'] }] }));
      const published = await wh.publish(
        write('orders', '2024-01-01', { runKey: 'run-2', rows: [{ order_id: 1 }], checks: [{ type: 'unique', columns: ['order_id'] }] }),
      );
      expect(published.version).toBe(2);
    });

    it('a failing check on a new version keeps the previous version published', async () => {
      await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      const error = await rejection(
        wh.publish(write('orders', '2024-01-01', { runKey: 'run-2', rows: [{ order_id: null }], checks: [{ type: 'not_null', columns: ['order_id'] }] })),
      );
      expect(error).toBeInstanceOf(CheckFailedError);
      expect(await wh.query('SELECT COUNT(*) AS n FROM orders')).toEqual([{ n: 3 }]);
      const ledger = await wh.ledger({ node: 'orders' });
      expect(ledger.map((r) => [r.version, r.status, r.current])).toEqual([
        [2, 'failed_check', false],
        [1, 'published', true],
      ]);
    });

    it('a retry after a failed check gets a version of its own; the failure stays in the ledger', async () => {
      await rejection(wh.publish(write('orders', '2024-01-01', { rows: ORDERS, checks: [{ type: 'row_count', min: 4 }] })));
      const published = await wh.publish(write('orders', '2024-01-01', { rows: [...ORDERS, { order_id: 4 }], checks: [{ type: 'row_count', min: 4 }], attempt: 2 }));
      expect(published).toMatchObject({ version: 2, previousVersion: null, rowCount: 4 });
      const ledger = await wh.ledger({ node: 'orders' });
      expect(ledger.map((r) => [r.version, r.status, r.attempt, r.current])).toEqual([
        [2, 'published', 2, true],
        [1, 'failed_check', 1, false],
      ]);
    });

    it('a check whose SQL is broken fails the check and says so, and the transaction goes on', async () => {
      const error = await rejection(
        wh.publish(
          write('orders', '2024-01-01', {
            rows: ORDERS,
            checks: [
              { type: 'sql', name: 'broken', sql: 'SELECT * FROM {{this}} WHERE nope > 1' },
              { type: 'row_count', min: 10 },
            ],
          }),
        ),
      );
      expect(error).toBeInstanceOf(CheckFailedError);
      expect(error.message).toMatch(/broken: the check's SQL failed: .*nope/);
      expect(error.message).toMatch(/row_count: 3 rows, expected at least 10/);
      expect((await wh.ledger({ node: 'orders' }))[0]).toMatchObject({ status: 'failed_check' });
    });
  });

  describe(`${kind}: check severity`, () => {
    it('a failing warn check publishes, and the warning is returned and recorded in the ledger', async () => {
      const published = await wh.publish(
        write('orders', '2024-01-01', { rows: ORDERS, checks: [{ type: 'not_null', columns: ['amount'], severity: 'warn' }] }),
      );
      expect(published).toMatchObject({ version: 1, warnings: ['not_null: 1 rows have amount NULL'] });
      expect(await wh.query('SELECT COUNT(*) AS n FROM orders')).toEqual([{ n: 3 }]);
      const [row] = await wh.ledger({ node: 'orders' });
      expect(row).toMatchObject({ status: 'published', current: true, warnings: ['not_null: 1 rows have amount NULL'], error: null });
    });

    it('an error blocks publishing even when warnings pass along; the failed row keeps both', async () => {
      const error = await rejection(
        wh.publish(
          write('orders', '2024-01-01', {
            rows: ORDERS,
            checks: [
              { type: 'unique', columns: ['country'], severity: 'warn' },
              { type: 'row_count', min: 5 },
            ],
          }),
        ),
      );
      expect(error).toBeInstanceOf(CheckFailedError);
      expect(error.message).toMatch(/row_count: 3 rows, expected at least 5/);
      expect(error.message).not.toMatch(/duplicated/);
      const [row] = await wh.ledger({ node: 'orders' });
      expect(row).toMatchObject({ status: 'failed_check', current: false, warnings: ['unique: 1 duplicated values of (country)'] });
    });

    it('a unique or not_null check on columns the output does not have names the check, the columns, those it has and a close one, without SQL; a warn one warns so', async () => {
      const error = await rejection(
        wh.publish(
          write('orders', '2024-01-01', {
            rows: ORDERS,
            checks: [
              { type: 'unique', columns: ['orderid'] },
              { type: 'not_null', name: 'ids present', columns: ['order_id', 'contry', 'zzz'] },
            ],
          }),
        ),
      );
      expect(error).toBeInstanceOf(CheckFailedError);
      expect(error.message).toBe(
        "checks failed: unique: the check's column 'orderid' is not in the output (its columns: order_id, country, amount); did you mean 'order_id'?: name a column of the output in the check, or add it to the transform's output; " +
          "ids present: the check's columns 'contry', 'zzz' are not in the output (its columns: order_id, country, amount); did you mean 'country' for 'contry'?: name columns of the output in the check, or add them to the transform's output",
      );
      expect(error.message).not.toMatch(/SELECT|GROUP BY|__this/);
      expect((await wh.ledger({ node: 'orders' }))[0]).toMatchObject({ status: 'failed_check' });
      const warned = await wh.publish(write('orders', '2024-01-01', { runKey: 'run-2', rows: ORDERS, checks: [{ type: 'unique', columns: ['order_id', 'region'], severity: 'warn' }] }));
      expect(warned.warnings).toEqual([
        "unique: the check's column 'region' is not in the output (its columns: order_id, country, amount): name a column of the output in the check, or add it to the transform's output",
      ]);
    });

    it("unique, not_null and drift look at a column named in another case (Order_ID: order_id), as the output spells it, the same on every engine", async () => {
      const rows = [{ order_id: 1, Amount: 10 }, { order_id: 1, Amount: null }];
      const checks: CheckInput[] = [
        { type: 'unique', columns: ['Order_ID'], severity: 'warn' },
        { type: 'not_null', columns: ['ORDER_ID', 'amount'], severity: 'warn' },
      ];
      const first = await wh.publish(write('cased', 'k', { rows, checks }));
      expect(first.warnings).toEqual(['unique: 1 duplicated values of (order_id)', 'not_null: 1 rows have Amount NULL']);
      const drift: CheckInput = { type: 'drift', name: 'revenue', metric: { sum: 'AMOUNT' }, maxChangePercent: 10, severity: 'warn' };
      const second = await wh.publish(write('cased', 'k', { runKey: 'run-2', rows: [{ order_id: 1, Amount: 30 }], checks: [drift] }));
      expect(second.warnings).toEqual(['revenue: sum(Amount) went from 10 to 30 (+200%), more than the 10% allowed']);
      // Backfill's own columns are in {{this}} too; any other __ name is refused as any missing column is.
      const own = await wh.publish(write('cased', 'j', { rows, checks: [{ type: 'not_null', columns: ['__partition', '__Version'] }] }));
      expect(own.warnings).toEqual([]);
      const error = await rejection(wh.publish(write('cased', 'j', { runKey: 'run-2', rows, checks: [{ type: 'not_null', columns: ['__x'] }] })));
      expect(error).toBeInstanceOf(CheckFailedError);
      expect(error.message).toBe(
        "checks failed: not_null: the check's column '__x' is not in the output (its columns: order_id, Amount): name a column of the output in the check, or add it to the transform's output",
      );
    });

    it('a warn check whose SQL is broken warns, and says why', async () => {
      const published = await wh.publish(
        write('orders', '2024-01-01', { rows: ORDERS, checks: [{ type: 'sql', name: 'broken', sql: 'SELECT * FROM {{this}} WHERE nope > 1', severity: 'warn' }] }),
      );
      expect(published.warnings).toHaveLength(1);
      expect(published.warnings[0]).toMatch(/broken: the check's SQL failed: .*nope/);
    });

    it('passing checks and a retry that finds its version published report no new warnings', async () => {
      const first = await wh.publish(write('orders', '2024-01-01', { rows: ORDERS, checks: [{ type: 'row_count', max: 1, severity: 'warn' }] }));
      expect(first.warnings).toEqual(['row_count: 3 rows, expected at most 1']);
      const again = await wh.publish(write('orders', '2024-01-01', { rows: ORDERS, attempt: 2 }));
      expect(again).toEqual({ ...first, alreadyPublished: true });
      const clean = await wh.publish(write('orders', '2024-01-02', { rows: ORDERS, checks: [{ type: 'row_count', min: 1, severity: 'warn' }] }));
      expect(clean.warnings).toEqual([]);
    });
  });

  describe(`${kind}: drift checks`, () => {
    const rows = (n: number, amount = 10) => Array.from({ length: n }, (_, i) => ({ id: i + 1, amount }));

    it('pass when the partition has no published version to compare with', async () => {
      const published = await wh.publish(write('sales', 'k', { rows: rows(5), checks: [{ type: 'drift', metric: 'row_count', maxChangePercent: 0 }] }));
      expect(published).toMatchObject({ version: 1, warnings: [] });
    });

    it('row_count beyond the allowed change blocks publishing, naming the metric, the values and the change', async () => {
      await wh.publish(write('sales', 'k', { rows: rows(10) }));
      const error = await rejection(
        wh.publish(write('sales', 'k', { runKey: 'run-2', rows: rows(16), checks: [{ type: 'drift', metric: 'row_count', maxChangePercent: 50 }] })),
      );
      expect(error).toBeInstanceOf(CheckFailedError);
      expect(error.message).toMatch(/drift: row_count went from 10 to 16 \(\+60%\), more than the 50% allowed/);
      expect(await wh.query('SELECT COUNT(*) AS n FROM sales')).toEqual([{ n: 10 }]);
      const within = await wh.publish(
        write('sales', 'k', { runKey: 'run-3', rows: rows(6), checks: [{ type: 'drift', name: 'volume', metric: 'row_count', maxChangePercent: 40 }] }),
      );
      expect(within).toMatchObject({ previousVersion: 1, warnings: [] });
    });

    it('a sum drifting as a warning publishes and records the warning', async () => {
      await wh.publish(write('sales', 'k', { rows: rows(4, 2.5) }));
      const published = await wh.publish(
        write('sales', 'k', { runKey: 'run-2', rows: rows(4, 1), checks: [{ type: 'drift', name: 'revenue', metric: { sum: 'amount' }, maxChangePercent: 25, severity: 'warn' }] }),
      );
      expect(published.warnings).toEqual(['revenue: sum(amount) went from 10 to 4 (-60%), more than the 25% allowed']);
      expect((await wh.ledger({ node: 'sales', partition: 'k' }))[0]).toMatchObject({ version: 2, current: true, warnings: published.warnings });
    });

    it('a change from zero is more than any percentage; zero to zero is none', async () => {
      await wh.publish(write('sales', 'k', { rows: [] }));
      const drift = { type: 'drift', metric: 'row_count', maxChangePercent: 1000, severity: 'warn' } as const;
      const grown = await wh.publish(write('sales', 'k', { runKey: 'run-2', rows: rows(1), checks: [drift] }));
      expect(grown.warnings).toEqual(['drift: row_count went from 0 to 1 (a change from zero), more than the 1000% allowed']);
      await wh.publish(write('sales', 'j', { rows: [{ id: 1, amount: null }] }));
      const nulls = await wh.publish(write('sales', 'j', { runKey: 'run-2', rows: [{ id: 1, amount: null }], checks: [{ ...drift, metric: { sum: 'amount' }, maxChangePercent: 0 }] }));
      expect(nulls.warnings).toEqual([]);
    });

    it('compares with the published version, not with a newer version whose checks failed', async () => {
      await wh.publish(write('sales', 'k', { rows: rows(10) }));
      await rejection(wh.publish(write('sales', 'k', { runKey: 'run-2', rows: rows(1), checks: [{ type: 'row_count', min: 5 }] })));
      const published = await wh.publish(write('sales', 'k', { runKey: 'run-3', rows: rows(11), checks: [{ type: 'drift', metric: 'row_count', maxChangePercent: 20 }] }));
      expect(published).toMatchObject({ version: 3, previousVersion: 1, warnings: [] });
    });

    it('fires when a SQL node\'s parameter changes the row count beyond the threshold', async () => {
      const series = { sql: 'WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :rows) SELECT n, n * 2 AS v FROM s' };
      const drift = [{ type: 'drift', metric: 'row_count', maxChangePercent: 30 }] as const;
      const node = (runKey: string, params: { rows: number }) =>
        write('series', '2024-01-01', { runKey, params, checks: [...drift], selects: [{ sql: series.sql, bindings: params }] });
      expect(await wh.publish(node('run-1', { rows: 10 }))).toMatchObject({ version: 1, rowCount: 10 });
      expect(await wh.publish(node('run-2', { rows: 12 }))).toMatchObject({ version: 2, rowCount: 12, warnings: [] });
      const error = await rejection(wh.publish(node('run-3', { rows: 30 })));
      expect(error).toBeInstanceOf(CheckFailedError);
      expect(error.message).toMatch(/drift: row_count went from 12 to 30 \(\+150%\), more than the 30% allowed/);
      expect((await wh.ledger({ node: 'series' }))[0]).toMatchObject({ version: 3, status: 'failed_check', params: { rows: 30 } });
    });

    it('a sum over a column that does not exist fails the check and says why, without SQL, on the first version too', async () => {
      const drift = { type: 'drift', metric: { sum: 'amout' }, maxChangePercent: 5 } as const;
      for (const runKey of ['run-1', 'run-2']) {
        const error = await rejection(wh.publish(write('sales', 'k', { runKey, rows: rows(2), checks: [drift] })));
        expect(error).toBeInstanceOf(CheckFailedError);
        expect(error.message).toBe(
          "checks failed: drift: the check's column 'amout' is not in the output (its columns: id, amount); did you mean 'amount'?: name a column of the output in the check, or add it to the transform's output",
        );
      }
    });

    it('SQL checks read the published version as {{previous}}, empty when there is none', async () => {
      const noLostIds = { type: 'sql', name: 'no lost ids', sql: 'SELECT id FROM {{previous}} WHERE id NOT IN (SELECT id FROM {{ this }})' } as const;
      expect((await wh.publish(write('sales', 'k', { rows: rows(3), checks: [noLostIds] }))).version).toBe(1);
      const error = await rejection(wh.publish(write('sales', 'k', { runKey: 'run-2', rows: rows(2), checks: [noLostIds] })));
      expect(error.message).toMatch(/no lost ids: 1 violating row(?!s)/);
    });
  });

  describe(`${kind}: spec hash in the ledger`, () => {
    it('records the spec hash a write carries, and null when it carries none', async () => {
      await wh.publish(write('orders', 'k1', { rows: ORDERS, specHash: '0123456789abcdef' }));
      await wh.publish(write('orders', 'k2', { rows: ORDERS }));
      await rejection(wh.publish(write('orders', 'k3', { rows: ORDERS, specHash: 'fedcba9876543210', checks: [{ type: 'row_count', min: 9 }] })));
      const byPartition = Object.fromEntries((await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r.specHash]));
      expect(byPartition).toEqual({ k1: '0123456789abcdef', k2: null, k3: 'fedcba9876543210' });
    });
  });

  describe(`${kind}: cost and duration in the ledger`, () => {
    it('records the cost a write reports (fractions too) and the duration, null without a cost, also for a failed check', async () => {
      const startedAt = Date.now() - 1500;
      await wh.publish(write('orders', 'k1', { rows: ORDERS, cost: 1234.5, startedAt }));
      await wh.publish(write('orders', 'k2', { rows: ORDERS }));
      await rejection(wh.publish(write('orders', 'k3', { rows: ORDERS, cost: 7, checks: [{ type: 'row_count', min: 9 }] })));
      const rows = Object.fromEntries((await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r]));
      expect(Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, r.cost]))).toEqual({ k1: 1234.5, k2: null, k3: 7 });
      expect(rows.k1!.durationMs).toBeGreaterThanOrEqual(1500);
      expect(rows.k1!.durationMs).toBe(Date.parse(rows.k1!.finishedAt) - startedAt);
    });

    it('refuses a cost that is not a number of 0 or more, and writes nothing', async () => {
      for (const cost of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
        expect((await rejection(wh.publish(write('orders', 'k', { rows: ORDERS, cost })))).message).toMatch(/orders k: a reported cost is a number of 0 or more/);
      }
      expect(await wh.ledger({ node: 'orders' })).toEqual([]);
    });
  });

  describe(`${kind}: what a backfill changed (changesBy)`, () => {
    /** bf-1 publishes k1 and k2 of orders and x of users; bf-2 publishes k1 and k2 again, and k3 anew. */
    const seed = async () => {
      const v1 = {
        k1: await wh.publish(write('orders', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1 }] })),
        k2: await wh.publish(write('orders', 'k2', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 2 }] })),
      };
      await wh.publish(write('users', 'x', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 9 }] }));
      const v2 = {
        k1: await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 10 }] })),
        k2: await wh.publish(write('orders', 'k2', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 20 }] })),
        k3: await wh.publish(write('orders', 'k3', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 30 }] })),
      };
      return { v1, v2 };
    };

    it('lists every partition the backfill published, what it replaced and what is published now', async () => {
      const { v1, v2 } = await seed();
      const page = await wh.changesBy('bf-2');
      expect(page.next).toBeNull();
      expect(page.changes).toEqual([
        { node: 'orders', partition: 'k1', version: 2, checksum: v2.k1.checksum, previousVersion: 1, previousChecksum: v1.k1.checksum, currentVersion: 2, currentBackfillId: 'bf-2' },
        { node: 'orders', partition: 'k2', version: 2, checksum: v2.k2.checksum, previousVersion: 1, previousChecksum: v1.k2.checksum, currentVersion: 2, currentBackfillId: 'bf-2' },
        { node: 'orders', partition: 'k3', version: 1, checksum: v2.k3.checksum, previousVersion: null, previousChecksum: null, currentVersion: 1, currentBackfillId: 'bf-2' },
      ]);
      expect((await wh.changesBy('bf-1')).changes.map((c) => [c.node, c.partition, c.currentBackfillId])).toEqual([
        ['orders', 'k1', 'bf-2'],
        ['orders', 'k2', 'bf-2'],
        ['users', 'x', 'bf-1'],
      ]);
      expect(await wh.changesBy('nobody')).toEqual({ changes: [], next: null });
    });

    it('pages through partitions in node and partition order, and narrows to one node', async () => {
      await seed();
      const first = await wh.changesBy('bf-1', { limit: 2 });
      expect(first.changes.map((c) => `${c.node}/${c.partition}`)).toEqual(['orders/k1', 'orders/k2']);
      expect(first.next).toEqual({ node: 'orders', partition: 'k2' });
      const second = await wh.changesBy('bf-1', { limit: 2, after: first.next! });
      expect(second.changes.map((c) => `${c.node}/${c.partition}`)).toEqual(['users/x']);
      expect(second.next).toBeNull();
      expect((await wh.changesBy('bf-1', { node: 'users' })).changes.map((c) => c.partition)).toEqual(['x']);
      expect((await wh.changesBy('bf-1', { node: 'orders', limit: 1, after: { node: 'orders', partition: 'k1' } })).changes.map((c) => c.partition)).toEqual(['k2']);
      await expect(wh.changesBy('bf-1', { limit: 0 })).rejects.toThrow(/limit must be a whole number from 1/);
    });

    it('a backfill run again goes back to what its first publish replaced; failed checks do not count', async () => {
      await wh.publish(write('orders', 'k', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1 }] }));
      await wh.publish(write('orders', 'k', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 2 }] }));
      await wh.publish(write('orders', 'k', { backfillId: 'bf-2', runKey: 'r2-again', rows: [{ id: 3 }] }));
      await rejection(wh.publish(write('orders', 'k', { backfillId: 'bf-2', runKey: 'r2-third', rows: [{ id: 4 }], checks: [{ type: 'row_count', min: 2 }] })));
      const [change] = (await wh.changesBy('bf-2')).changes;
      expect(change).toMatchObject({ version: 3, previousVersion: 1, currentVersion: 3 });
    });
  });

  describe(`${kind}: restoring a partition`, () => {
    const restoreOf = (partition: string, from: number, to: number | null, extra: Partial<RestoreRequest> = {}): RestoreRequest => ({
      rollbackId: 'rb-1',
      backfillId: 'bf-2',
      node: 'orders',
      partition,
      from,
      to,
      ...extra,
    });
    const seed = async () => {
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1, note: 'one' }] }));
      await wh.publish(write('orders', 'k2', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 2, note: 'two' }] }));
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 10, note: 'ten' }, { id: 11, note: 'eleven' }] }));
      await wh.publish(write('orders', 'k2', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 20, note: 'twenty' }] }));
      await wh.publish(write('orders', 'k3', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 30, note: 'thirty' }] }));
    };
    const ids = async () => (await wh.query('SELECT id FROM orders ORDER BY id')).map((r) => r.id);

    it('moves the published pointer back, verified by checksum, and records it in the rollback audit', async () => {
      await seed();
      const outcome = await wh.restore(restoreOf('k1', 2, 1));
      expect(outcome).toEqual({ node: 'orders', partition: 'k1', status: 'restored', found: 2, foundBackfillId: 'bf-2', to: 1, forced: false });
      expect(await ids()).toEqual([1, 20, 30]);
      const ledger = await wh.ledger({ node: 'orders', partition: 'k1' });
      expect(ledger.map((r) => [r.version, r.current])).toEqual([
        [2, false],
        [1, true],
      ]);
      const [record] = await wh.rollbacks({ backfillId: 'bf-2' });
      expect(record).toMatchObject({ rollbackId: 'rb-1', backfillId: 'bf-2', node: 'orders', partition: 'k1', fromVersion: 2, toVersion: 1, forced: false });
      expect(Number.isNaN(Date.parse(record!.at))).toBe(false);
    });

    it('restores a version written before a later one widened a column\'s type (a number, then text): its rows still hash as they did', async () => {
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1, code: 5, paid: true }] }));
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 1, code: 'A5', paid: 'yes' }] }));
      expect(await wh.restore(restoreOf('k1', 2, 1))).toMatchObject({ status: 'restored', to: 1 });
      const [row] = await wh.query('SELECT code, paid FROM orders');
      expect(String(row!.code)).toBe('5');
    });

    it('removes a partition the backfill created: the view no longer shows it, the ledger keeps its versions', async () => {
      await seed();
      expect(await wh.restore(restoreOf('k3', 1, null))).toMatchObject({ status: 'removed', found: 1, to: null });
      expect(await ids()).toEqual([10, 11, 20]);
      expect((await wh.ledger({ node: 'orders', partition: 'k3' })).map((r) => [r.version, r.current])).toEqual([[1, false]]);
      expect(await wh.rollbacks({ partition: 'k3' })).toEqual([expect.objectContaining({ fromVersion: 1, toVersion: null })]);
      expect((await wh.changesBy('bf-2', { limit: 10 })).changes.find((c) => c.partition === 'k3')).toMatchObject({ currentVersion: null, currentBackfillId: null });
    });

    it('is idempotent: the same rollback replays its outcome, another one finds it already restored', async () => {
      await seed();
      const first = await wh.restore(restoreOf('k1', 2, 1));
      expect(await wh.restore(restoreOf('k1', 2, 1))).toEqual(first);
      expect(await wh.restore(restoreOf('k1', 2, 1, { rollbackId: 'rb-2' }))).toMatchObject({ status: 'already_restored', found: 1, to: 1 });
      await wh.restore(restoreOf('k3', 1, null));
      expect(await wh.restore(restoreOf('k3', 1, null, { rollbackId: 'rb-2' }))).toMatchObject({ status: 'already_restored', found: null, to: null });
      expect(await wh.rollbacks({})).toHaveLength(2);
      expect(await ids()).toEqual([1, 20]);
    });

    it('leaves a partition a later backfill changed, and says who; force restores it', async () => {
      await seed();
      await wh.publish(write('orders', 'k2', { backfillId: 'bf-3', runKey: 'r3', rows: [{ id: 200, note: 'later' }] }));
      expect(await wh.restore(restoreOf('k2', 2, 1))).toEqual({ node: 'orders', partition: 'k2', status: 'changed_since', found: 3, foundBackfillId: 'bf-3', to: 3, forced: false });
      expect(await ids()).toEqual([10, 11, 30, 200]);
      expect(await wh.rollbacks({})).toEqual([]);
      expect(await wh.restore(restoreOf('k2', 2, 1, { force: true }))).toMatchObject({ status: 'restored', found: 3, foundBackfillId: 'bf-3', to: 1, forced: true });
      expect(await ids()).toEqual([2, 10, 11, 30]);
      expect(await wh.rollbacks({ node: 'orders', partition: 'k2' })).toEqual([expect.objectContaining({ fromVersion: 3, toVersion: 1, forced: true })]);
    });

    it('a publish after a restore replaces the restored version', async () => {
      await seed();
      await wh.restore(restoreOf('k1', 2, 1));
      expect(await wh.publish(write('orders', 'k1', { backfillId: 'bf-4', runKey: 'r4', rows: [{ id: 100 }] }))).toMatchObject({ version: 3, previousVersion: 1 });
    });

    it('refuses a version whose rows changed after publishing, loudly, and moves nothing', async () => {
      await seed();
      await raw.exec(`UPDATE ${raw.versionsTable('orders')} SET note = 'tampered' WHERE __partition = 'k1' AND __version = 1`);
      const error = await rejection(wh.restore(restoreOf('k1', 2, 1)));
      expect(error).toBeInstanceOf(ChecksumMismatchError);
      expect(error.message).toMatch(/version 1 of orders k1: its rows hash to [0-9a-f]{16}… \(1 rows\), but the ledger recorded [0-9a-f]{16}… \(1 rows\)/);
      expect(await ids()).toEqual([10, 11, 20, 30]);
      expect(await wh.rollbacks({})).toEqual([]);
    });

    it('refuses a version whose rows gained values in a column it never wrote, naming the column, and moves nothing', async () => {
      // Version 1 wrote id and amount; version 2 added note, which version 1's rows hold as NULL.
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-1', runKey: 'r1', rows: [{ id: 1, amount: 10 }] }));
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 1, amount: 99, note: 'v2' }] }));
      await raw.exec(`UPDATE ${raw.versionsTable('orders')} SET note = 'TAMPERED' WHERE __partition = 'k1' AND __version = 1`);
      const error = await rejection(wh.restore(restoreOf('k1', 2, 1)));
      expect(error).toBeInstanceOf(ChecksumMismatchError);
      expect(error.message).toMatch(/version 1 of orders k1: column note holds a value in 1 of its rows, but the version wrote no such column/);
      expect(await view('orders', 'id, amount, note', 'id')).toEqual([{ id: 1, amount: 99, note: 'v2' }]);
      expect(await wh.rollbacks({})).toEqual([]);
    });

    it('refuses a version whose integer above 2^53 changed in place by one', async () => {
      await wh.publish(write('orders', 'k1', { rows: [{ id: 9007199254740993n }] }));
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'run-2', rows: [{ id: 1 }] }));
      await raw.exec(`UPDATE ${raw.versionsTable('orders')} SET id = 9007199254740992 WHERE __partition = 'k1' AND __version = 1`);
      expect(await rejection(wh.restore(restoreOf('k1', 2, 1)))).toBeInstanceOf(ChecksumMismatchError);
      expect(await wh.rollbacks({})).toEqual([]);
    });

    it('refuses a version that is not published in the ledger', async () => {
      await seed();
      const error = await rejection(wh.restore(restoreOf('k1', 2, 7)));
      expect(error).toBeInstanceOf(ChecksumMismatchError);
      expect(error.message).toMatch(/version 7 of orders k1 is not a published version in the ledger/);
    });

    it('verifies versions published before the ledger recorded their columns, from their schema hash', async () => {
      await wh.publish(write('wide', 'k', { backfillId: 'bf-1', runKey: 'r1', rows: [{ a: 1, b: null, c: null }] }));
      await wh.publish(write('wide', 'j', { backfillId: 'bf-1', runKey: 'r1', rows: [{ a: 1, d: 'other partition' }] }));
      await wh.publish(write('wide', 'k', { backfillId: 'bf-2', runKey: 'r2', rows: [{ a: 2, b: 3, c: 4 }] }));
      await raw.exec(`UPDATE ${raw.ledgerTable} SET version_columns = NULL`);
      expect(await wh.restore({ ...restoreOf('k', 2, 1), node: 'wide' })).toMatchObject({ status: 'restored', to: 1 });
      await raw.exec(`UPDATE ${raw.versionsTable('wide')} SET d = 'x' WHERE __partition = 'k' AND __version = 2`);
      const error = await rejection(wh.restore({ ...restoreOf('k', 1, 2, { rollbackId: 'rb-2', force: true }), node: 'wide' }));
      expect(error.message).toMatch(/cannot tell which columns it wrote/);
    });

    it('refuses while another backfill leases the dataset (as a publish of another run is), naming it and the fix, and moves nothing', async () => {
      await seed();
      expect(await wh.acquireDatasets({ backfillId: 'bf-9', runKey: 'r9', nodes: ['orders'] })).toEqual({ acquired: true });
      await expect(wh.publish(write('orders', 'k4', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 40 }] }))).rejects.toBeInstanceOf(StaleRunError);
      for (const [partition, to] of [['k1', 1], ['k3', null]] as const) {
        const error = await rejection(wh.restore(restoreOf(partition, partition === 'k1' ? 2 : 1, to)));
        expect(error).toBeInstanceOf(StaleRunError);
        expect(error.message).toBe(
          `dataset orders is leased to backfill 'bf-9' (run r9), which is running and writes it, so 'bf-2' cannot be rolled back there now (orders ${partition} was not restored; ` +
            "what is restored already is skipped then). Wait for 'bf-9' to end ('backfill wait bf-9') or cancel it ('backfill cancel bf-9'), then run 'backfill rollback bf-2' again",
        );
      }
      // What rollback --dry-run reads to say the rollback would be refused now.
      expect(await wh.leaseHolders?.(['orders', 'users'])).toEqual([{ node: 'orders', backfillId: 'bf-9', runKey: 'r9' }]);
      expect(await wh.leaseHolders?.([])).toEqual([]);
      expect(await ids()).toEqual([10, 11, 20, 30]);
      expect(await wh.rollbacks({})).toEqual([]);
      // Its lease is released when the backfill ends, whatever the end: the rollback goes ahead then.
      await wh.releaseDatasets({ backfillId: 'bf-9', runKey: 'r9' });
      expect(await wh.restore(restoreOf('k1', 2, 1))).toMatchObject({ status: 'restored' });
      // A lease of the backfill being rolled back (an earlier run whose release failed) does not stop its own rollback.
      await wh.acquireDatasets({ backfillId: 'bf-2', runKey: 'r2', nodes: ['orders'] });
      expect(await wh.restore(restoreOf('k3', 1, null))).toMatchObject({ status: 'removed' });
      expect(await ids()).toEqual([1, 20]);
    });

    it('refuses dataset names that are not safe, before touching anything', async () => {
      const error = await rejection(wh.restore({ ...restoreOf('k', 2, 1), node: 'x; DROP TABLE y' }));
      expect(error).toBeInstanceOf(InvalidDatasetError);
    });
  });

  describe(`${kind}: rolling back after another rollback`, () => {
    /** What a rollback does, over the warehouse (rollbackBatch): each change restored to its target. */
    const rollBack = async (backfillId: string, force = false, rollbackId = `rb-${backfillId}`) => {
      const { changes } = await wh.changesBy(backfillId, { limit: 1000 });
      const outcomes: RestoreOutcome[] = [];
      for (const c of changes) outcomes.push(await wh.restore({ rollbackId, backfillId, node: c.node, partition: c.partition, from: c.version, to: c.previousVersion, force }));
      return outcomes;
    };
    const pub = (partition: string, backfillId: string, id: number, runKey = `r-${backfillId}`) => wh.publish(write('orders', partition, { backfillId, runKey, rows: [{ id }] }));
    const ids = async () => (await wh.query('SELECT id FROM orders ORDER BY id')).map((r) => Number(r.id));

    it('a version whose backfill was rolled back is no target: A then B, or B then A, leave the version before both', async () => {
      for (const [k, order] of [['k', ['bf-a', 'bf-b']], ['j', ['bf-b', 'bf-a']]] as const) {
        await pub(k, 'bf-x', 1);
        await pub(k, 'bf-a', 2);
        await pub(k, 'bf-b', 3);
        const [first, second] = order;
        await rollBack(first);
        await rollBack(second);
      }
      // k: the rollback of bf-a left k alone (bf-b had changed it), then bf-b's goes past bf-a's version 2 to 1.
      expect((await wh.ledger({ partition: 'k' })).find((r) => r.current)).toMatchObject({ version: 1, backfillId: 'bf-x' });
      expect((await wh.ledger({ partition: 'j' })).find((r) => r.current)).toMatchObject({ version: 1, backfillId: 'bf-x' });
      // The audit lists moves only: k moved once (by bf-b's rollback), j twice.
      expect((await wh.rollbacks({})).map((r) => [r.partition, r.backfillId, r.fromVersion, r.toVersion])).toEqual([
        ['k', 'bf-b', 3, 1],
        ['j', 'bf-b', 3, 2],
        ['j', 'bf-a', 2, 1],
      ]);
    });

    it("a backfill that ran over one rolled back while it ran: once both are rolled back, neither's rows are published", async () => {
      await pub('k1', 'bf-x', 1);
      await pub('k2', 'bf-x', 2);
      await pub('k1', 'bf-a', 10);
      await pub('k2', 'bf-a', 20);
      await wh.acquireDatasets({ backfillId: 'bf-b', runKey: 'r-bf-b', nodes: ['orders'] });
      await pub('k2', 'bf-b', 200);
      await expect(rollBack('bf-a')).rejects.toBeInstanceOf(StaleRunError);
      await wh.releaseDatasets({ backfillId: 'bf-b', runKey: 'r-bf-b' });
      expect((await rollBack('bf-a')).map((o) => [o.partition, o.status, o.foundBackfillId])).toEqual([
        ['k1', 'restored', 'bf-a'],
        ['k2', 'changed_since', 'bf-b'],
      ]);
      expect((await wh.changesBy('bf-b')).changes).toMatchObject([{ partition: 'k2', version: 3, previousVersion: 1 }]);
      expect((await rollBack('bf-b')).map((o) => [o.partition, o.status, o.to])).toEqual([['k2', 'restored', 1]]);
      expect(await ids()).toEqual([1, 2]);
    });

    it('a pointer a rollback moved is reported as moved by that rollback, and --force does not bring rolled-back rows back', async () => {
      await pub('k', 'bf-x', 1);
      await pub('k', 'bf-a', 2);
      await pub('k', 'bf-b', 3);
      expect(await rollBack('bf-a', true)).toMatchObject([{ status: 'restored', found: 3, to: 1, forced: true }]);
      expect((await wh.changesBy('bf-b')).changes).toMatchObject([{ version: 3, previousVersion: 1, currentVersion: 1, currentBackfillId: 'rollback rb-bf-a' }]);
      // bf-a's forced rollback undid bf-b's version: bf-b's rollback says so, and moves nothing, forced or not.
      const undoneBy = { rollbackId: 'rb-bf-a', backfillId: 'bf-a', forced: true };
      expect((await wh.changesBy('bf-b')).changes).toMatchObject([{ onTop: false, undoneBy }]);
      expect(await rollBack('bf-b')).toMatchObject([{ status: 'undone', to: 1, undoneBy }]);
      expect(await rollBack('bf-b', true, 'rb-bf-b-2')).toMatchObject([{ status: 'undone', to: 1, undoneBy }]);
      expect(await ids()).toEqual([1]);
      // Another backfill's rollback that finds the pointer where a rollback put it names that rollback, not bf-x.
      await pub('j', 'bf-x', 1);
      await pub('j', 'bf-c', 2);
      await pub('j', 'bf-d', 3);
      await pub('j', 'bf-e', 4);
      await wh.restore({ rollbackId: 'rb-d', backfillId: 'bf-d', node: 'orders', partition: 'j', from: 3, to: 2, force: true });
      expect(await wh.restore({ rollbackId: 'rb-x', backfillId: 'bf-x', node: 'orders', partition: 'j', from: 1, to: null })).toMatchObject({
        status: 'changed_since',
        found: 2,
        foundBackfillId: 'rollback rb-d',
      });
    });

    it('--force on a backfill rolled back already leaves a later backfill published over the restored version alone', async () => {
      await pub('k', 'bf-x', 1);
      await pub('k', 'bf-a', 2);
      await pub('k', 'bf-a', 3, 'r-bf-a-again');
      expect(await rollBack('bf-a')).toMatchObject([{ status: 'restored', to: 1 }]);
      // bf-b publishes over the version bf-a's rollback restored: nothing of bf-a is under it.
      await pub('k', 'bf-b', 4);
      for (const [force, rollbackId] of [[true, 'rb-a-2'], [false, 'rb-a-3']] as const) {
        expect(await rollBack('bf-a', force, rollbackId)).toMatchObject([{ status: 'already_restored', found: 4, to: 4, forced: false }]);
      }
      expect((await wh.ledger({ partition: 'k' })).find((r) => r.current)).toMatchObject({ version: 4, backfillId: 'bf-b' });
      expect(await ids()).toEqual([4]);
      expect((await wh.rollbacks({})).map((r) => [r.rollbackId, r.fromVersion, r.toVersion])).toEqual([['rb-bf-a', 3, 1]]);
      // A later version on top of bf-a's own is still undone by --force.
      await pub('j', 'bf-x', 1);
      await pub('j', 'bf-a', 2);
      await pub('j', 'bf-b', 3);
      expect(await rollBack('bf-a', false, 'rb-a-4')).toMatchObject([{ partition: 'j', status: 'changed_since' }, { partition: 'k', status: 'already_restored' }]);
      expect(await rollBack('bf-a', true, 'rb-a-5')).toMatchObject([{ partition: 'j', status: 'restored', found: 3, to: 1, forced: true }, { partition: 'k', status: 'already_restored' }]);
    });

    it('a backfill run again after its rollback publishes versions that are targets again', async () => {
      await pub('k', 'bf-x', 1);
      await pub('k', 'bf-a', 2);
      await rollBack('bf-a');
      await pub('k', 'bf-a', 3, 'r-bf-a-again');
      await pub('k', 'bf-b', 4);
      expect((await wh.changesBy('bf-b')).changes).toMatchObject([{ version: 4, previousVersion: 3 }]);
      expect(await rollBack('bf-b')).toMatchObject([{ status: 'restored', to: 3 }]);
      // A version the walk reaches that the rolled-back backfill published itself is skipped too.
      await pub('j', 'bf-x', 1);
      await pub('j', 'bf-c', 2);
      await pub('j', 'bf-d', 3);
      await pub('j', 'bf-c', 4, 'r-bf-c-again');
      await rollBack('bf-d');
      expect((await wh.changesBy('bf-c')).changes).toMatchObject([{ partition: 'j', version: 4, previousVersion: 1 }]);
    });
  });

  describe(`${kind}: lineage: input versions`, () => {
    it('records the published version of every upstream partition in the input range', async () => {
      await wh.publish(write('daily', '2024-01-01', { rows: [{ v: 1 }] }));
      await wh.publish(write('daily', '2024-01-02', { rows: [{ v: 2 }] }));
      await wh.publish(write('daily', '2024-01-02', { runKey: 'run-2', rows: [{ v: 22 }] }));
      await wh.publish(write('daily', '2024-01-03', { rows: [{ v: 3 }] }));
      await wh.publish(write('daily', '2024-01-09', { rows: [{ v: 9 }] }));
      await wh.publish(write('weekly', '2024-W01', { rows: [{ total: 1 }], inputs: [{ node: 'daily', from: '2024-01-01', to: '2024-01-07' }] }));
      const [row] = await wh.ledger({ node: 'weekly' });
      expect(row!.inputs).toHaveLength(1);
      expect(row!.inputs[0]).toMatchObject({
        node: 'daily',
        from: '2024-01-01',
        to: '2024-01-07',
        partitions: 3,
        versions: { '2024-01-01': 1, '2024-01-02': 2, '2024-01-03': 1 },
      });
      expect(row!.inputs[0]!.digest).toMatch(/^[0-9a-f]{16}$/);
    });

    it('the digest changes when an upstream version changes', async () => {
      await wh.publish(write('up', 'a', { rows: [{ v: 1 }] }));
      await wh.publish(write('down', 'x', { rows: [{ v: 1 }], inputs: [{ node: 'up', from: 'a', to: 'a' }] }));
      await wh.publish(write('up', 'a', { runKey: 'run-2', rows: [{ v: 2 }] }));
      await wh.publish(write('down', 'x', { runKey: 'run-2', rows: [{ v: 1 }], inputs: [{ node: 'up', from: 'a', to: 'a' }] }));
      const [second, first] = await wh.ledger({ node: 'down' });
      expect(first!.inputs[0]!.versions).toEqual({ a: 1 });
      expect(second!.inputs[0]!.versions).toEqual({ a: 2 });
      expect(second!.inputs[0]!.digest).not.toBe(first!.inputs[0]!.digest);
    });

    it('records an upstream range with nothing published as 0 partitions', async () => {
      await wh.publish(write('down', 'x', { rows: [{ v: 1 }], inputs: [{ node: 'up', from: 'a', to: 'z' }] }));
      const [row] = await wh.ledger({ node: 'down' });
      expect(row!.inputs[0]).toMatchObject({ node: 'up', partitions: 0, versions: {} });
    });

    it('records the versions of static upstream keys by name, whatever their order', async () => {
      await wh.publish(write('regions', 'us', { rows: [{ r: 'us' }] }));
      await wh.publish(write('regions', 'eu', { rows: [{ r: 'eu' }] }));
      await wh.publish(write('regions', 'apac', { rows: [{ r: 'apac' }] }));
      await wh.publish(write('totals', 'all', { rows: [{ n: 2 }], inputs: [{ node: 'regions', from: 'us', to: 'eu', keys: ['us', 'eu'] }] }));
      const [row] = await wh.ledger({ node: 'totals' });
      expect(row!.inputs).toEqual([expect.objectContaining({ node: 'regions', from: 'us', to: 'eu', partitions: 2, versions: { eu: 1, us: 1 } })]);
    });
  });

  describe(`${kind}: spec SQL cannot escape (one read-only statement)`, () => {
    const escapes = (ledger: string) => [
      `SELECT 1 AS x; COMMIT; DROP TABLE ${ledger}; --`,
      `SELECT 1 AS x) AS q; COMMIT; DROP TABLE ${ledger}; --`,
      `SELECT 1 AS x) AS __scoped) AS q; COMMIT; DROP TABLE ${ledger}; --`,
    ];

    it('a second statement in node SQL is refused before anything runs, and the ledger is intact', async () => {
      await wh.publish(write('orders', 'k', { rows: ORDERS }));
      for (const sql of escapes(raw.ledgerTable)) {
        const error = await rejection(wh.publish(write('bad', 'k', { selects: [{ sql, bindings: {} }] })));
        expect(error, sql).toBeInstanceOf(SqlError);
      }
      expect((await wh.ledger({})).map((r) => r.node)).toEqual(['orders']);
    });

    it('a second statement in check SQL is refused before anything runs, whatever its severity, and the ledger is intact', async () => {
      await wh.publish(write('orders', 'k', { rows: ORDERS }));
      const escape = `SELECT * FROM {{this}}; COMMIT; DROP TABLE ${raw.ledgerTable}; --`;
      for (const severity of ['error', 'warn'] as const) {
        const error = await rejection(wh.publish(write('orders', 'k2', { rows: ORDERS, checks: [{ type: 'sql', name: 'escape', sql: escape, severity }] })));
        expect(error).toBeInstanceOf(SqlError);
        expect(error).not.toBeInstanceOf(CheckFailedError);
      }
      // Closing the parenthesis around it changes nothing: its statements are counted before it is wrapped, as plan counts them.
      const closing = `SELECT * FROM {{this}}) AS v; COMMIT; DROP TABLE ${raw.ledgerTable}; --`;
      const broken = await rejection(wh.publish(write('orders', 'k2', { rows: ORDERS, checks: [{ type: 'sql', name: 'escape', sql: closing }] })));
      expect(broken).toBeInstanceOf(SqlError);
      expect(broken.message).toMatch(/exactly one statement, and this is 3/);
      expect((await wh.ledger({})).map((r) => [r.partition, r.status])).toEqual([['k', 'published']]);
    });

    it('query() runs one statement that only reads', async () => {
      await wh.publish(write('orders', 'k', { rows: ORDERS }));
      for (const sql of [`SELECT 1 AS x; DROP TABLE ${raw.ledgerTable}`, `DELETE FROM ${raw.ledgerTable}`, `WITH d AS (DELETE FROM ${raw.ledgerTable} RETURNING node) SELECT * FROM d`]) {
        expect(await rejection(wh.query(sql)), sql).toBeInstanceOf(SqlError);
      }
      expect(await wh.ledger({})).toHaveLength(1);
    });

    it('node SQL that writes or makes tables is refused', async () => {
      await wh.publish(write('orders', 'k', { rows: ORDERS }));
      for (const sql of [`WITH d AS (DELETE FROM ${raw.ledgerTable} RETURNING node) SELECT node FROM d`, 'SELECT 1 AS x INTO copied', `UPDATE ${raw.ledgerTable} SET attempt = 9`]) {
        expect(await rejection(wh.publish(write('bad', 'k', { selects: [{ sql, bindings: {} }] }))), sql).toBeInstanceOf(SqlError);
      }
      expect(await wh.ledger({})).toEqual([expect.objectContaining({ node: 'orders', attempt: 1 })]);
    });
  });

  describe(`${kind}: inside a partition, an upstream is read by its plain name only`, () => {
    const days = ['2024-01-01', '2024-01-02', '2024-01-03', '2024-01-04', '2024-01-05'];
    const inputs = [{ node: 'daily', from: '2024-01-02', to: '2024-01-03' }];
    const seed = async () => {
      for (const day of days) await wh.publish(write('daily', day, { rows: [{ day, revenue: 10 }] }));
      await raw.exec(`CREATE VIEW ${raw.view('my_daily')} AS SELECT * FROM ${raw.view('daily')}`);
    };
    /** Every other way to the upstream's rows or to backfill's tables. */
    const otherNames = () => [raw.view('daily'), raw.versionsTable('daily'), raw.ledgerTable, raw.scopeTable, 'my_daily'];

    it('node SQL naming it otherwise is refused, naming the fix; the plain name reads the mapped partitions', async () => {
      await seed();
      for (const name of otherNames()) {
        const error = await rejection(wh.publish(write('rolling', '2024-01-03', { selects: [{ sql: `SELECT COUNT(*) AS n FROM ${name}`, bindings: {} }], inputs })));
        expect(error, name).toBeInstanceOf(SqlError);
        expect(error.message, name).toMatch(/plain name/);
      }
      expect(await wh.ledger({ node: 'rolling' })).toEqual([]);
      await wh.publish(write('rolling', '2024-01-03', { selects: [{ sql: 'SELECT COUNT(*) AS n FROM daily', bindings: {} }], inputs }));
      expect(await wh.query('SELECT n FROM rolling')).toEqual([{ n: 2 }]);
    });

    it('a WITH of the same name does not let another way through, wherever the WITH is; WITH names of its own still read', async () => {
      await seed();
      const sneaky = [
        // A WITH elsewhere in the statement defines the name, but not where it is read.
        'SELECT COUNT(*) AS n FROM my_daily WHERE EXISTS (WITH my_daily AS (SELECT 1 AS one) SELECT one FROM my_daily)',
        // A WITH that is not recursive reads the relation of its own name.
        'WITH my_daily AS (SELECT * FROM my_daily) SELECT COUNT(*) AS n FROM my_daily',
      ];
      for (const sql of sneaky) {
        const error = await rejection(wh.publish(write('rolling', '2024-01-03', { selects: [{ sql, bindings: {} }], inputs })));
        expect(error, sql).toBeInstanceOf(SqlError);
        expect(await rejection(wh.query(sql, {}, await wh.pin(inputs))), sql).toBeInstanceOf(SqlError);
      }
      expect(await wh.ledger({ node: 'rolling' })).toEqual([]);
      const own = 'WITH counted AS (SELECT COUNT(*) AS n FROM daily), again AS (SELECT n FROM counted) SELECT n FROM again';
      await wh.publish(write('rolling', '2024-01-03', { selects: [{ sql: own, bindings: {} }], inputs }));
      expect(await wh.query('SELECT n FROM rolling')).toEqual([{ n: 2 }]);
    });

    it('check SQL and a transform\'s query() naming it otherwise are refused too; outside a partition any name reads', async () => {
      await seed();
      const check = { type: 'sql', name: 'sneaky', sql: `SELECT * FROM {{this}} WHERE n > (SELECT COUNT(*) FROM ${raw.view('daily')})` } as const;
      const error = await rejection(wh.publish(write('rolling', '2024-01-03', { rows: [{ n: 1 }], checks: [check], inputs })));
      expect(error).toBeInstanceOf(SqlError);
      expect(error).not.toBeInstanceOf(CheckFailedError);
      const pinned = await wh.pin(inputs);
      for (const name of otherNames()) expect(await rejection(wh.query(`SELECT COUNT(*) AS n FROM ${name}`, {}, pinned)), name).toBeInstanceOf(SqlError);
      expect(await wh.query('SELECT COUNT(*) AS n FROM daily', {}, pinned)).toEqual([{ n: 2 }]);
      expect(await wh.query(`SELECT COUNT(*) AS n FROM ${raw.view('daily')}`)).toEqual([{ n: 5 }]);
    });
  });

  describe(`${kind}: a node reading its own dataset`, () => {
    it('plan refuses it; when it runs it fails on a first backfill, and then reads what of itself is published', async () => {
      const sql = 'SELECT CAST(COUNT(*) + 1 AS integer) AS n FROM rolling';
      const planned = () =>
        resolveSpec({
          name: 'plan',
          partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
          nodes: [{ id: 'daily', transform: 'noop' }, { id: 'rolling', dependsOn: ['daily'], sql }],
        });
      expect(planned).toThrow("rolling's SQL reads rolling, rolling's own dataset: a node cannot depend on itself");
      await wh.publish(write('daily', '2024-01-01', { rows: [{ revenue: 10 }] }));
      const inputs = [{ node: 'daily', from: '2024-01-01', to: '2024-01-01' }];
      expect(await rejection(wh.publish(write('rolling', '2024-01-01', { selects: [{ sql, bindings: {} }], inputs })))).toBeInstanceOf(SqlError);
      // Once a version of it is published (another backfill's), each partition reads every published partition of itself.
      await wh.publish(write('rolling', '2024-01-01', { backfillId: 'earlier', runKey: 'earlier', rows: [{ n: 100 }, { n: 100 }] }));
      await wh.publish(write('rolling', '2024-01-02', { selects: [{ sql, bindings: {} }], inputs }));
      await wh.publish(write('rolling', '2024-01-03', { selects: [{ sql, bindings: {} }], inputs }));
      expect(await wh.query('SELECT n FROM rolling WHERE n < 100 ORDER BY n')).toEqual([{ n: 3 }, { n: 4 }]);
    });
  });

  describe(`${kind}: inside a partition, the engine's catalog and statistics are not a way to other partitions`, () => {
    it('node SQL, check SQL and a transform\'s query() reading them are refused', async () => {
      if (!raw.catalogReads) return;
      for (const day of ['2024-01-01', '2024-01-02', '2024-01-03']) await wh.publish(write('daily', day, { rows: Array.from({ length: 20 }, (_, i) => ({ day, revenue: i })) }));
      const inputs = [{ node: 'daily', from: '2024-01-02', to: '2024-01-02' }];
      const pinned = await wh.pin(inputs);
      const literal = (name: string) => `'${name.replaceAll("'", "''")}'`;
      const reads = raw.catalogReads.map((sql) => sql.replaceAll('{{versions}}', literal(raw.versionsTable('daily'))).replaceAll('{{ledger}}', literal(raw.ledgerTable)));
      for (const sql of reads) {
        const error = await rejection(wh.query(sql, {}, pinned));
        expect(error, sql).toBeInstanceOf(SqlError);
        expect(error.message, sql).toMatch(/plain name/);
        expect(await rejection(wh.publish(write('leak', '2024-01-02', { selects: [{ sql, bindings: {} }], inputs }))), sql).toBeInstanceOf(SqlError);
        const check = { type: 'sql', name: 'leak', sql: `SELECT * FROM {{this}} WHERE EXISTS (${sql})` } as const;
        const checked = await rejection(wh.publish(write('leak', '2024-01-02', { rows: [{ n: 1 }], checks: [check], inputs })));
        expect(checked, sql).toBeInstanceOf(SqlError);
        expect(checked, sql).not.toBeInstanceOf(CheckFailedError);
      }
      expect(await wh.ledger({ node: 'leak' })).toEqual([]);
    });
  });

  describe(`${kind}: a node named like an object backfill did not create`, () => {
    it('is refused, naming the fix, unless it adopts the view; a table is never replaced', async () => {
      await raw.exec(`CREATE VIEW ${raw.view('orders')} AS SELECT 1 AS a`);
      const error = await rejection(wh.publish(write('orders', 'k', { rows: ORDERS })));
      expect(error).toBeInstanceOf(InvalidDatasetError);
      expect(error.message).toMatch(/adopt: true/);
      expect(await wh.query('SELECT a FROM orders')).toEqual([{ a: 1 }]);
      expect(await wh.ledger({})).toEqual([]);
      await wh.publish(write('orders', 'k', { rows: ORDERS, adopt: true }));
      expect(await wh.query('SELECT order_id FROM orders ORDER BY order_id')).toEqual([{ order_id: 1 }, { order_id: 2 }, { order_id: 3 }]);

      await raw.exec(`CREATE TABLE ${raw.view('customers')} (id integer)`);
      await raw.exec(`INSERT INTO ${raw.view('customers')} (id) VALUES (7)`);
      for (const adopt of [false, true]) {
        const refused = await rejection(wh.publish(write('customers', 'k', { rows: [{ id: 1 }], adopt })));
        expect(refused).toBeInstanceOf(InvalidDatasetError);
        expect(refused.message).toMatch(/rename the node/);
      }
      expect(await wh.query('SELECT id FROM customers')).toEqual([{ id: 7 }]);
    });
  });

  describe(`${kind}: lineage facts`, () => {
    // Optional: a warehouse without lineageDataset gets events named after its location, without a schema.
    it('names a dataset for OpenLineage, and lists its columns in order once it exists', async () => {
      if (!wh.lineageDataset) return;
      const before = await wh.lineageDataset('orders');
      if (before === null) return;
      expect(before.fields).toBeUndefined();
      await wh.publish(write('orders', '2024-01-01', { rows: ORDERS }));
      const after = await wh.lineageDataset('orders');
      expect(after).toMatchObject({ namespace: before.namespace, name: before.name });
      expect(after!.namespace.length).toBeGreaterThan(0);
      expect(after!.name).toMatch(/orders$/);
      expect(after!.fields!.map((f) => f.name)).toEqual(['order_id', 'country', 'amount']);
      for (const f of after!.fields!) expect(f.type === undefined || (typeof f.type === 'string' && f.type.length > 0)).toBe(true);
      expect((await wh.lineageDataset('daily'))!.name).not.toBe(after!.name);
    });
  });

  describe(`${kind}: identity`, () => {
    it('is random and kept', async () => {
      const id = await wh.identity();
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(await wh.identity()).toBe(id);
      const other = await open();
      try {
        expect(await other.warehouse.identity()).not.toBe(id);
      } finally {
        await other.cleanup();
      }
    });
  });

  describe(`${kind}: dataset leases`, () => {
    it('leases every dataset or none, naming the runs that hold them', async () => {
      expect(await wh.acquireDatasets({ backfillId: 'a', runKey: 'a1', nodes: ['orders', 'customers'] })).toEqual({ acquired: true });
      expect(await wh.acquireDatasets({ backfillId: 'a', runKey: 'a1', nodes: ['orders'] })).toEqual({ acquired: true });
      expect(await wh.acquireDatasets({ backfillId: 'b', runKey: 'b1', nodes: ['payments', 'orders'] })).toEqual({
        acquired: false,
        holders: [{ node: 'orders', backfillId: 'a', runKey: 'a1' }],
      });
      // b got none of them: payments is free.
      expect(await wh.acquireDatasets({ backfillId: 'c', runKey: 'c1', nodes: ['payments'] })).toEqual({ acquired: true });
      await wh.releaseDatasets({ backfillId: 'a', runKey: 'a1' });
      expect(await wh.acquireDatasets({ backfillId: 'b', runKey: 'b1', nodes: ['orders', 'customers'] })).toEqual({ acquired: true });
    });

    it('two backfills racing for a dataset: exactly one gets it', async () => {
      const ids = ['x', 'y', 'z', 'w'];
      const outcomes = await Promise.all(ids.map((id) => wh.acquireDatasets({ backfillId: id, runKey: `${id}1`, nodes: [`own_${id}`, 'orders'] })));
      expect(outcomes.filter((o) => o.acquired)).toHaveLength(1);
    });

    it('only the run holding the lease publishes: a stale run of the same backfill is refused and writes nothing', async () => {
      await wh.publish(write('orders', 'k', { backfillId: 'bf-1', runKey: 'run-1', rows: ORDERS }));
      expect(await wh.acquireDatasets({ backfillId: 'bf-1', runKey: 'run-1', nodes: ['orders'] })).toEqual({ acquired: true });
      // --rerun: a new run of the same backfill takes the lease over.
      expect(await wh.acquireDatasets({ backfillId: 'bf-1', runKey: 'run-2', nodes: ['orders'] })).toEqual({ acquired: true });
      const stale = await rejection(wh.publish(write('orders', 'k2', { backfillId: 'bf-1', runKey: 'run-1', rows: ORDERS })));
      expect(stale).toBeInstanceOf(StaleRunError);
      expect(stale.message).toMatch(/run-2/);
      expect(await rejection(wh.publish(write('orders', 'k', { backfillId: 'bf-1', runKey: 'run-1', rows: ORDERS, attempt: 2 })))).toBeInstanceOf(StaleRunError);
      expect(await rejection(wh.publish(write('orders', 'k3', { backfillId: 'bf-9', runKey: 'run-9', rows: ORDERS })))).toBeInstanceOf(StaleRunError);
      expect((await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r.executions])).toEqual([['k', 1]]);
      expect(await wh.publish(write('orders', 'k2', { backfillId: 'bf-1', runKey: 'run-2', rows: ORDERS }))).toMatchObject({ version: 1 });
      await wh.releaseDatasets({ backfillId: 'bf-1', runKey: 'run-2' });
      // No lease: anyone publishes, as before leases.
      expect(await wh.publish(write('orders', 'k3', { backfillId: 'bf-9', runKey: 'run-9', rows: ORDERS }))).toMatchObject({ version: 1 });
    });
  });

  describe(`${kind}: signed starts' claims`, () => {
    const claim = (key: string, runId: string, workflowId = 'backfill/bf-1') => wh.claimSignature!({ key, backfillId: 'bf-1', workflowId, runId });

    it('the first run to claim a signature holds it for good: the same run claiming again gets itself, another gets the first', async () => {
      if (engine.keepsNoClaims) {
        expect(wh.claimSignature).toBeUndefined();
        return;
      }
      expect(wh.claimSignature, 'claimSignature (or keepsNoClaims in the kit\'s engine traits)').toBeDefined();
      const first = await claim('sha256:aa', 'run-1');
      expect(first).toEqual({ workflowId: 'backfill/bf-1', runId: 'run-1', claimedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/) });
      // An activity retried, or a replay: the run that holds it finds itself.
      expect(await claim('sha256:aa', 'run-1')).toEqual(first);
      // A copy of its input, in a later run or under another workflow id: the first run holds it.
      expect(await claim('sha256:aa', 'run-2')).toEqual(first);
      expect(await claim('sha256:aa', 'run-3', 'backfill/bf-other')).toEqual(first);
      // Another signature is another claim.
      expect(await claim('sha256:bb', 'run-2')).toMatchObject({ runId: 'run-2' });
      // Kept apart from the leases and the ledger: releasing a run's datasets leaves its claims.
      await wh.releaseDatasets({ backfillId: 'bf-1', runKey: 'run-1' });
      expect(await claim('sha256:aa', 'run-4')).toEqual(first);
    });

    it('runs racing to claim one signature: exactly one holds it, and every one is told which', async () => {
      if (engine.keepsNoClaims) return;
      const runs = ['x', 'y', 'z', 'w'];
      const holders = await Promise.all(runs.map((run) => claim('sha256:race', run)));
      expect(new Set(holders.map((h) => h.runId)).size).toBe(1);
      expect(runs).toContain(holders[0]!.runId);
    });
  });

  describe(`${kind}: staged versions`, () => {
    const staged = (node: string, partition: string, options: WriteOptions = {}) => write(node, partition, { backfillId: 'bf-s', runKey: 'rs', stage: true, ...options });
    const run = { backfillId: 'bf-s', runKey: 'rs' };
    /** Published: orders k1 (ids 1, 2) and k2 (id 3). Staged by bf-s: orders k1 (ids 1, 20), k2 (id 3, unchanged), k3 (id 4, new), and users k1. */
    const seed = async () => {
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-0', runKey: 'r0', rows: [{ id: 1, amount: 10 }, { id: 2, amount: 20 }] }));
      await wh.publish(write('orders', 'k2', { backfillId: 'bf-0', runKey: 'r0', rows: [{ id: 3, amount: 30 }] }));
      await wh.publish(staged('orders', 'k1', { rows: [{ id: 1, amount: 10 }, { id: 2, amount: 25 }, { id: 20, amount: 5 }] }));
      await wh.publish(staged('orders', 'k2', { rows: [{ id: 3, amount: 30 }] }));
      await wh.publish(staged('orders', 'k3', { rows: [{ id: 4, amount: 40 }] }));
      await wh.publish(staged('users', 'k1', { rows: [{ id: 7 }] }));
    };
    const ids = async (node = 'orders') => (await wh.query(`SELECT id FROM ${node} ORDER BY id`)).map((r) => Number(r.id));

    it('a publish racing a rollback: each staged version records the version it replaced, and no restore moves a pointer over one', async () => {
      // v1 by bf-x, v2 by bf-a, v3 staged by bf-s (no lease: a backfill from before leases); `rollback bf-a` runs while bf-s publishes.
      const parts = Array.from({ length: 160 }, (_, i) => `p${String(i).padStart(3, '0')}`);
      const all = (backfillId: string, id: number, stage = false) =>
        wh.publishMany(parts.map((p) => write('orders', p, { backfillId, runKey: `r-${backfillId}`, rows: [{ id }], ...(stage ? { stage } : {}) })));
      await all('bf-x', 1);
      await all('bf-a', 2);
      await all('bf-s', 3, true);
      const restoring = Promise.all(
        [0, 1, 2, 3].map(async (lane) => {
          for (let i = lane; i < parts.length; i += 4) await wh.restore({ rollbackId: 'rb-a', backfillId: 'bf-a', node: 'orders', partition: parts[i]!, from: 2, to: 1 });
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await wh.publishStaged({ backfillId: 'bf-s', runKey: 'r-bf-s' })).toMatchObject({ versions: parts.length });
      await restoring;
      const restored = new Set((await wh.rollbacks({ rollbackId: 'rb-a' })).map((r) => r.partition));
      const ledger = await wh.ledger({ backfillId: 'bf-s' });
      expect(ledger.filter((r) => !r.current)).toEqual([]);
      expect(ledger.filter((r) => r.previousVersion !== (restored.has(r.partition) ? 1 : 2)).map((r) => [r.partition, r.previousVersion, restored.has(r.partition)])).toEqual([]);
      expect(new Set((await wh.query('SELECT id FROM orders')).map((r) => Number(r.id)))).toEqual(new Set([3]));
    });

    it('are written and checked but not published: readers see the published versions only', async () => {
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-0', runKey: 'r0', rows: [{ id: 1 }] }));
      const out = await wh.publish(staged('orders', 'k1', { rows: [{ id: 2 }], checks: [{ type: 'row_count', min: 1 }] }));
      expect(out).toMatchObject({ version: 2, previousVersion: 1, rowCount: 1, staged: true });
      await wh.publish(staged('orders', 'k2', { rows: [{ id: 3 }] }));
      expect(await ids()).toEqual([1]);
      expect((await wh.ledger({ node: 'orders' })).map((r) => [r.partition, r.version, r.status, r.staged, r.current])).toEqual([
        ['k1', 2, 'staged', true, false],
        ['k1', 1, 'published', false, true],
        ['k2', 1, 'staged', true, false],
      ]);
      // A staged backfill changed nothing yet.
      expect((await wh.changesBy('bf-s')).changes).toEqual([]);
      // A retry finds its staged version and writes nothing.
      expect(await wh.publish(staged('orders', 'k1', { rows: [{ id: 99 }], attempt: 2 }))).toMatchObject({ version: 2, staged: true, alreadyPublished: true });
      expect(await wh.publishedBy('orders', 'k1', 'rs')).toMatchObject({ version: 2, staged: true });
    });

    it('a write of the run without stage publishes the version the run staged of the partition, writing nothing new', async () => {
      await wh.publish(write('orders', 'k0', { backfillId: 'bf-0', runKey: 'r0', rows: [{ id: 0 }] }));
      await wh.publish(staged('orders', 'k1', { rows: [{ id: 1 }] }));
      // The run went on without staging (a canary approved, say): its retry of k1 finds the staged version and publishes it.
      const out = await wh.publish(write('orders', 'k1', { ...run, rows: [{ id: 2 }], attempt: 2 }));
      expect(out).toMatchObject({ version: 1, previousVersion: null, rowCount: 1, alreadyPublished: true });
      expect(out.staged).toBeUndefined();
      expect(await ids()).toEqual([0, 1]);
      expect((await wh.ledger({ node: 'orders', partition: 'k1' })).map((r) => [r.version, r.status, r.current])).toEqual([[1, 'published', true]]);
      // Nothing is left staged for a later publish to move the pointer back to.
      expect(await wh.publishStaged(run)).toMatchObject({ versions: 0, nodes: [] });
      expect(await ids()).toEqual([0, 1]);
    });

    it('a staged version whose check fails is recorded as failed and never staged', async () => {
      const failed = await rejection(wh.publish(staged('orders', 'k1', { rows: [{ id: 1 }], checks: [{ type: 'row_count', min: 2 }] })));
      expect(failed).toBeInstanceOf(CheckFailedError);
      expect((await wh.ledger({ node: 'orders' })).map((r) => r.status)).toEqual(['failed_check']);
      expect(await wh.publishStaged(run)).toEqual({ versions: 0, before: 0, nodes: [] });
    });

    it('downstream partitions of the run read its staged upstream versions; everyone else reads the published ones', async () => {
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-0', runKey: 'r0', rows: [{ id: 1 }] }));
      await wh.publish(staged('orders', 'k1', { rows: [{ id: 2 }, { id: 3 }] }));
      const input = { node: 'orders', from: 'k1', to: 'k1' };
      expect((await wh.pin([input], { runKey: 'rs' }))[0]!.versions).toEqual([['k1', 2]]);
      expect((await wh.pin([input]))[0]!.versions).toEqual([['k1', 1]]);
      expect((await wh.pin([input], { runKey: 'someone-else' }))[0]!.versions).toEqual([['k1', 1]]);
      const totals = staged('totals', 'k1', { selects: [{ sql: 'SELECT COUNT(*) AS n FROM orders', bindings: {} }], inputs: [input] });
      await wh.publish(totals);
      await wh.publishStaged(run);
      expect(await wh.query('SELECT n FROM totals')).toEqual([{ n: 2 }]);
      expect((await wh.ledger({ node: 'totals' }))[0]!.inputs).toEqual([expect.objectContaining({ node: 'orders', versions: { k1: 2 } })]);
    });

    it('publish moves every staged pointer of the run at once, records what each replaced, and is idempotent', async () => {
      await seed();
      expect(await ids()).toEqual([1, 2, 3]);
      expect(await ids('users')).toEqual([]);
      expect(await wh.publishStaged(run)).toEqual({ versions: 4, before: 0, nodes: [{ node: 'orders', versions: 3 }, { node: 'users', versions: 1 }] });
      expect(await ids()).toEqual([1, 2, 3, 4, 20]);
      expect(await ids('users')).toEqual([7]);
      expect((await wh.ledger({ backfillId: 'bf-s' })).map((r) => [r.node, r.partition, r.version, r.status, r.staged, r.previousVersion, r.current])).toEqual([
        ['orders', 'k1', 2, 'published', true, 1, true],
        ['orders', 'k2', 2, 'published', true, 1, true],
        ['orders', 'k3', 1, 'published', true, null, true],
        ['users', 'k1', 1, 'published', true, null, true],
      ]);
      expect(await wh.publishStaged(run)).toEqual({ versions: 0, before: 4, nodes: [] });
      // Once published, it is an ordinary backfill: what it changed, and a rollback of it.
      expect((await wh.changesBy('bf-s')).changes.map((c) => [c.node, c.partition, c.previousVersion, c.currentVersion])).toEqual([
        ['orders', 'k1', 1, 2],
        ['orders', 'k2', 1, 2],
        ['orders', 'k3', null, 1],
        ['users', 'k1', null, 1],
      ]);
      expect(await wh.restore({ rollbackId: 'rb', backfillId: 'bf-s', node: 'orders', partition: 'k1', from: 2, to: 1 })).toMatchObject({ status: 'restored' });
      expect(await ids()).toEqual([1, 2, 3, 4]);
    });

    it('a reader during publish sees all of the staged versions or none', async () => {
      const partitions = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`);
      for (const p of partitions) await wh.publish(write('orders', p, { backfillId: 'bf-0', runKey: 'r0', rows: [{ id: 1, amount: 1 }] }));
      for (const p of partitions) await wh.publish(staged('orders', p, { rows: [{ id: 1, amount: 2 }] }));
      const seen = new Set<string>();
      let done = false;
      const publishing = wh.publishStaged(run).finally(() => (done = true));
      while (!done) {
        const [row] = await wh.query('SELECT SUM(amount) AS total FROM orders');
        seen.add(String(Number(row!.total)));
      }
      expect((await publishing).versions).toBe(40);
      const [after] = await wh.query('SELECT SUM(amount) AS total FROM orders');
      expect(Number(after!.total)).toBe(80);
      expect([...seen].every((t) => t === '40' || t === '80')).toBe(true);
    });

    it('only the run that staged them publishes them: another backfill id or run key moves nothing', async () => {
      await seed();
      expect(await wh.publishStaged({ backfillId: 'bf-other', runKey: 'rs' })).toEqual({ versions: 0, before: 0, nodes: [] });
      expect(await wh.publishStaged({ backfillId: 'bf-s', runKey: 'r-other' })).toEqual({ versions: 0, before: 0, nodes: [] });
      expect(await ids()).toEqual([1, 2, 3]);
    });

    it('publish is refused, moving nothing, while another run holds a dataset the run staged', async () => {
      await seed();
      expect(await wh.acquireDatasets({ backfillId: 'bf-x', runKey: 'rx', nodes: ['users'] })).toEqual({ acquired: true });
      const refused = await rejection(wh.publishStaged(run));
      expect(refused).toBeInstanceOf(StaleRunError);
      expect(refused.message).toMatch(/users is leased to run rx of .*'bf-x'/);
      expect(await ids()).toEqual([1, 2, 3]);
      expect((await wh.ledger({ backfillId: 'bf-s' })).every((r) => r.status === 'staged')).toBe(true);
      await wh.releaseDatasets({ backfillId: 'bf-x', runKey: 'rx' });
      expect(await wh.acquireDatasets({ backfillId: 'bf-s', runKey: 'rs', nodes: ['orders', 'users'] })).toEqual({ acquired: true });
      expect((await wh.publishStaged(run)).versions).toBe(4);
    });

    it('discard drops the staged rows, marks the ledger discarded, publishes nothing and is idempotent', async () => {
      await seed();
      expect(await wh.discardStaged(run)).toEqual({ versions: 4, before: 0, nodes: [{ node: 'orders', versions: 3 }, { node: 'users', versions: 1 }] });
      expect(await ids()).toEqual([1, 2, 3]);
      // Only the two published versions' rows are left in the dataset's versions table.
      expect(await raw.rows(`SELECT COUNT(*) AS n FROM ${raw.versionsTable('orders')}`)).toEqual([{ n: 3 }]);
      expect(await raw.rows(`SELECT COUNT(*) AS n FROM ${raw.versionsTable('users')}`)).toEqual([{ n: 0 }]);
      expect((await wh.ledger({ backfillId: 'bf-s' })).map((r) => r.status)).toEqual(['discarded', 'discarded', 'discarded', 'discarded']);
      expect(await wh.discardStaged(run)).toEqual({ versions: 0, before: 4, nodes: [] });
      expect(await wh.publishStaged(run)).toEqual({ versions: 0, before: 0, nodes: [] });
      expect(await ids()).toEqual([1, 2, 3]);
      // The next run of the partition takes a version number of its own.
      expect(await wh.publish(write('orders', 'k1', { backfillId: 'bf-2', runKey: 'r2', rows: [{ id: 9 }] }))).toMatchObject({ version: 3, previousVersion: 1 });
    });

    it("an ended run's discard is refused, dropping nothing, while the run still leases a dataset", async () => {
      await seed();
      expect(await wh.acquireDatasets({ backfillId: 'bf-s', runKey: 'rs', nodes: ['orders'] })).toEqual({ acquired: true });
      const refused = await rejection(wh.discardStaged(run, { ended: true }));
      expect(refused).toBeInstanceOf(StaleRunError);
      expect(refused.message).toMatch(/run rs of backfill 'bf-s' still leases dataset orders/);
      expect((await wh.ledger({ backfillId: 'bf-s' })).every((r) => r.status === 'staged')).toBe(true);
      // Another run's lease is no sign of this one running.
      await wh.releaseDatasets({ backfillId: 'bf-s', runKey: 'rs' });
      expect(await wh.acquireDatasets({ backfillId: 'bf-x', runKey: 'rx', nodes: ['users'] })).toEqual({ acquired: true });
      expect((await wh.discardStaged(run, { ended: true })).versions).toBe(4);
      expect((await wh.ledger({ backfillId: 'bf-s' })).map((r) => r.status)).toEqual(['discarded', 'discarded', 'discarded', 'discarded']);
    });

    it('diff counts rows added, removed and changed per partition, by key or by whole rows, with numeric columns', async () => {
      await seed();
      const page = await wh.diffStaged(run, { keys: { orders: ['id'] } });
      expect(page.next).toBeNull();
      expect(page.partitions.map((d) => [d.node, d.partition, d.publishedVersion, d.stagedVersion, d.rowsBefore, d.rowsAfter, d.added, d.removed, d.changed, d.key])).toEqual([
        ['orders', 'k1', 1, 2, 2, 3, 1, 0, 1, ['id']],
        ['orders', 'k2', 1, 2, 1, 1, 0, 0, 0, ['id']],
        ['orders', 'k3', null, 1, 0, 1, 1, 0, 0, ['id']],
        ['users', 'k1', null, 1, 0, 1, 1, 0, 0, null],
      ]);
      // The key column id identifies rows: it is no measure, though it holds numbers.
      expect(page.partitions[0]!.columns).toEqual([{ column: 'amount', before: { sum: 30, min: 10, max: 20 }, after: { sum: 40, min: 5, max: 25 } }]);
      // Whole rows: a changed row is one removed and one added.
      const rows = await wh.diffStaged(run, { node: 'orders' });
      expect(rows.partitions.map((d) => [d.partition, d.added, d.removed, d.changed])).toEqual([
        ['k1', 2, 1, 0],
        ['k2', 0, 0, 0],
        ['k3', 1, 0, 0],
      ]);
      // Without a key, every numeric column is one.
      expect(rows.partitions[0]!.columns).toEqual([
        { column: 'id', before: { sum: 3, min: 1, max: 2 }, after: { sum: 23, min: 1, max: 20 } },
        { column: 'amount', before: { sum: 30, min: 10, max: 20 }, after: { sum: 40, min: 5, max: 25 } },
      ]);
      const first = await wh.diffStaged(run, { limit: 2 });
      expect(first.next).toEqual({ node: 'orders', partition: 'k2' });
      expect((await wh.diffStaged(run, { limit: 2, after: first.next! })).partitions.map((d) => `${d.node}/${d.partition}`)).toEqual(['orders/k3', 'users/k1']);
      await expect(wh.diffStaged(run, { keys: { orders: ['order_no'] } })).rejects.toThrow(/key column order_no of node orders is not in the dataset \(its columns: id, amount\)/);
      // A key column named in another case is the dataset's column, on every engine.
      const cased = await wh.diffStaged(run, { keys: { orders: ['ID'] } });
      expect(cased.partitions.map((d) => [d.node, d.partition, d.added, d.removed, d.changed, d.key])).toEqual(
        page.partitions.map((d) => [d.node, d.partition, d.added, d.removed, d.changed, d.key]),
      );
      expect(cased.partitions[0]!.columns).toEqual(page.partitions[0]!.columns);
      await wh.publishStaged(run);
      expect((await wh.diffStaged(run)).partitions).toEqual([]);
    });

    it('diff counts copies: a version with every row twice (a join that fans out) is not unchanged, by whole rows or by key', async () => {
      const rows = [
        { id: 1, amount: 10 },
        { id: 2, amount: 20 },
        { id: 3, amount: 30 },
      ];
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-0', runKey: 'r0', rows }));
      await wh.publish(staged('orders', 'k1', { rows: [...rows, ...rows] }));
      for (const keys of [undefined, { orders: ['id'] }]) {
        const summary = await diffSummary((page) => wh.diffStaged(run, page), keys);
        expect(summary).toMatchObject({ rowsBefore: 3, rowsAfter: 6, added: 3, removed: 0, changed: 0 });
        expect(rowChangePercent(summary)).toBe(100);
      }
      // And back: the published version has the copies, the staged one not.
      await wh.publishStaged(run);
      await wh.publish(write('orders', 'k1', { backfillId: 'bf-t', runKey: 'rt', stage: true, rows }));
      const back = await diffSummary((page) => wh.diffStaged({ backfillId: 'bf-t', runKey: 'rt' }, page), undefined);
      expect(back).toMatchObject({ rowsBefore: 6, rowsAfter: 3, added: 0, removed: 3 });
    });

    it("diff's counts equal SQL EXCEPT counts on a changed-parameter fixture, by whole rows and by key, staged and once published", async () => {
      // One generator, one parameter: a factor that changes v of every third id, drops id 2 and adds id 100; two rows share id 1.
      const rows = (size: number, factor: number): Row[] => [
        { id: 1, grp: 'a', v: 1 },
        ...Array.from({ length: size }, (_, i) => i + 1)
          .filter((id) => factor === 1 || id !== 2)
          .map((id) => ({ id, grp: id % 2 === 0 ? 'a' : 'b', v: id % 3 === 0 ? id * factor : id })),
        ...(factor === 1 ? [] : [{ id: 100, grp: 'b', v: 100 * factor }]),
      ];
      const partitions = ['k1', 'k2', 'k3', 'k4'];
      for (const [i, p] of partitions.entries()) await wh.publish(write('facts', p, { backfillId: 'bf-0', runKey: 'r0', rows: rows(3 + 2 * i, 1) }));
      for (const [i, p] of partitions.entries()) await wh.publish(staged('facts', p, { rows: rows(3 + 2 * i, 3) }));
      await wh.publish(staged('facts', 'k5', { rows: rows(4, 3) }));

      const table = raw.versionsTable('facts');
      const version = (p: string, v: number | null, columns = 'id, grp, v') => `SELECT ${columns} FROM ${table} WHERE ${PARTITION_COLUMN} = '${p}' AND ${VERSION_COLUMN} = ${v ?? -1}`;
      const count = async (sql: string) => Number((await raw.rows(`SELECT COUNT(*) AS n FROM (${sql}) x`))[0]!.n);
      /**
       * Per partition: rows (or keys) added, removed and changed, as SQL EXCEPT counts them, and
       * copies (rows whose key another row has too) that the row counts show came or went.
       */
      const except = async (p: string, now: number, was: number | null, keyed: boolean) => {
        const copies = (await count(version(p, now))) - (await count(version(p, was)));
        const withCopies = (added: number, removed: number, changed: number) => {
          const surplus = copies - (added - removed);
          return [p, added + Math.max(0, surplus), removed + Math.max(0, -surplus), changed];
        };
        if (!keyed) return withCopies(await count(`${version(p, now)} EXCEPT ${version(p, was)}`), await count(`${version(p, was)} EXCEPT ${version(p, now)}`), 0);
        const both = `${version(p, now, 'id')} INTERSECT ${version(p, was, 'id')}`;
        const same = `SELECT id FROM (${version(p, now)} INTERSECT ${version(p, was)}) s`;
        return withCopies(await count(`${version(p, now, 'id')} EXCEPT ${version(p, was, 'id')}`), await count(`${version(p, was, 'id')} EXCEPT ${version(p, now, 'id')}`), await count(`${both} EXCEPT ${same}`));
      };
      const check = async (of: 'staged' | 'published') => {
        for (const keyed of [false, true]) {
          const page = await wh.diffStaged(run, { of, ...(keyed ? { keys: { facts: ['id'] } } : {}) });
          expect(page.partitions.map((d) => d.partition)).toEqual([...partitions, 'k5']);
          const expected = await Promise.all(page.partitions.map((d) => except(d.partition, d.stagedVersion, d.publishedVersion, keyed)));
          expect(page.partitions.map((d) => [d.partition, d.added, d.removed, d.changed])).toEqual(expected);
          // k5 is new, and two of its rows share id 1: by key, its 5 rows are added, not its 4 keys.
          if (keyed) expect(page.partitions.find((d) => d.partition === 'k5')).toMatchObject({ rowsAfter: 5, added: 5 });
          // The fixture changes something in every partition, and by key a changed row is neither added nor removed.
          expect(expected.every(([, added]) => Number(added) > 0)).toBe(true);
          if (keyed) expect(page.partitions.filter((d) => d.publishedVersion !== null).every((d) => d.added === 1 && d.removed === 1 && d.changed >= 1)).toBe(true);
        }
      };
      await check('staged');
      expect((await wh.diffStaged(run, { of: 'published' })).partitions).toEqual([]);
      await wh.publishStaged(run);
      expect((await wh.diffStaged(run)).partitions).toEqual([]);
      // Once published, the diff of what the publish changed is the diff that was staged.
      await check('published');
      const published = await wh.diffStaged(run, { of: 'published', keys: { facts: ['id'] } });
      expect(published.partitions.map((d) => [d.partition, d.stagedVersion, d.publishedVersion])).toEqual([['k1', 2, 1], ['k2', 2, 1], ['k3', 2, 1], ['k4', 2, 1], ['k5', 1, null]]);
      await expect(wh.diffStaged(run, { of: 'everything' as 'staged' })).rejects.toThrow(/of must be 'staged' or 'published'/);
    });
  });

  // Only engines that can stop a running statement say how to write one that never ends
  // (SQLite cannot: better-sqlite3 has no interrupt; docs/deploying.md says what that means).
  const runaway = engine.runaway;
  if (runaway !== undefined) describe(`${kind}: spec SQL that never ends is stopped at its deadline`, () => {
    /** Far above the deadlines below: a statement still running then was never stopped. */
    const BOUND_MS = 15_000;
    const count = async (node: string) => Number((await wh.query(`SELECT COUNT(*) AS n FROM ${node}`))[0]!.n);

    it("a node's SQL: nothing of the partition is committed, and the warehouse answers the next call", async () => {
      await wh.publish(write('orders', 'k', { rows: ORDERS }));
      const late = write('spin', 'k', { selects: [{ sql: runaway, bindings: {} }], commitBy: Date.now() + 300 });
      expect(await rejection(settledWithin(wh.publish(late), BOUND_MS))).toBeInstanceOf(CommitDeadlineError);
      expect(await wh.ledger({ node: 'spin' })).toEqual([]);
      expect(await count('orders')).toBe(3);
      // Its retry, with SQL that ends, publishes it.
      expect(await wh.publish(write('spin', 'k', { selects: [{ sql: 'SELECT 1 AS n', bindings: {} }], attempt: 2 }))).toMatchObject({ version: 1 });
    }, 30_000);

    it("a check's SQL: the publish fails as late, not as a failed check", async () => {
      const checks = [{ type: 'sql' as const, name: 'spins', sql: runaway }];
      const late = write('orders', 'k', { rows: ORDERS, checks, commitBy: Date.now() + 300 });
      expect(await rejection(settledWithin(wh.publish(late), BOUND_MS))).toBeInstanceOf(CommitDeadlineError);
      expect(await wh.ledger({ node: 'orders' })).toEqual([]);
      await wh.publish(write('orders', 'k', { rows: ORDERS }));
      expect(await count('orders')).toBe(3);
    }, 30_000);

    it("a query() with a deadline (a transform's read inside its partition)", async () => {
      await wh.publish(write('orders', 'k', { rows: ORDERS }));
      const pinned = await wh.pin([{ node: 'orders', from: 'k', to: 'k' }]);
      expect(await rejection(settledWithin(wh.query(runaway, {}, pinned, { deadline: Date.now() + 300 }), BOUND_MS))).toBeInstanceOf(CommitDeadlineError);
      expect(await count('orders')).toBe(3);
    }, 30_000);

    it('a deadline already passed: the statement does not start', async () => {
      expect(await rejection(settledWithin(wh.query(runaway, {}, undefined, { deadline: Date.now() - 1 }), BOUND_MS))).toBeInstanceOf(CommitDeadlineError);
      expect(await wh.query('SELECT 1 AS n', {}, undefined, { deadline: Date.now() + 60_000 })).toEqual([{ n: 1 }]);
    });
  });
}
