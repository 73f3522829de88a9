/**
 * The emitLineage activity on a real SQLite warehouse, after the real partition activity
 * wrote into it (test/lineage/scenario.ts): what each event says, that the same input gives
 * the same event, and that nothing it meets fails the caller.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLineageActivities, producerUri } from '../../activities/lineage/activity.ts';
import { lineageRunId } from '../../activities/lineage/run-ids.ts';
import { LakeWarehouse } from '../../activities/warehouse/lake/lake-dialect.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import type { EmitLineageInput, EmitLineageResult } from '../../core/lineage-input.ts';
import { sqliteNamespace, type RunEvent } from '../../core/openlineage.ts';
import { CollectingTransport, DAYS, SPEC, STARTED_AT, runScenario } from '../lineage/scenario.ts';

describe('lineageRunId', () => {
  it('is a UUIDv7 whose time is the backfill start, the same for the same run key and node', () => {
    const id = lineageRunId(STARTED_AT, 'run-1', 'orders');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(STARTED_AT);
    expect(lineageRunId(STARTED_AT, 'run-1', 'orders')).toBe(id);
    const others = [lineageRunId(STARTED_AT, 'run-1'), lineageRunId(STARTED_AT, 'run-2', 'orders'), lineageRunId(STARTED_AT, 'run-1', 'daily'), lineageRunId(STARTED_AT + 1, 'run-1', 'orders')];
    expect(new Set([id, ...others]).size).toBe(5);
  });

  it('sorts by the backfill start', () => {
    expect(lineageRunId(1000, 'zzz') < lineageRunId(2000, 'aaa')).toBe(true);
  });
});

describe('producerUri', () => {
  it('is the package at its version on the npm registry', () => {
    expect(producerUri('durable-backfill', '1.2.0')).toBe('https://www.npmjs.com/package/durable-backfill/v/1.2.0');
    expect(producerUri('@acme/backfill', '1.0.0-rc.1')).toBe('https://www.npmjs.com/package/@acme%2Fbackfill/v/1.0.0-rc.1');
  });
});

describe('emitLineage on SQLite', () => {
  let dir: string;
  let warehouse: SqliteWarehouse;
  let transport: CollectingTransport;
  let events: RunEvent[];
  const logged: string[] = [];
  const record = (level: string) => (message: string, meta?: Record<string, unknown>) => void logged.push(`${level} ${message} ${JSON.stringify(meta ?? {})}`);
  const logger: Logger = { log: (level, message, meta) => record(level)(message, meta), trace: record('TRACE'), debug: record('DEBUG'), info: record('INFO'), warn: record('WARN'), error: record('ERROR') };

  beforeEach(async () => {
    logged.length = 0;
    dir = mkdtempSync(join(tmpdir(), 'backfill-lineage-'));
    warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
    transport = new CollectingTransport();
    await runScenario({ warehouse, transport, runKey: 'run-1', logger });
    events = transport.events;
  });
  afterEach(async () => {
    await warehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const find = (eventType: string, job: string) => events.find((e) => e.eventType === eventType && e.job.name === job)!;
  const namespace = () => sqliteNamespace(hostname(), join(dir, 'warehouse.db'));

  it('sends START and an end for the backfill and for each node, in the order of the calls', () => {
    expect(events.map((e) => `${e.eventType} ${e.job.namespace}/${e.job.name}`)).toEqual([
      'START backfill/shop',
      'START backfill/shop.orders',
      'START backfill/shop.daily',
      'START backfill/shop.flagged',
      'COMPLETE backfill/shop.orders',
      'COMPLETE backfill/shop.daily',
      'FAIL backfill/shop.flagged',
      'FAIL backfill/shop',
    ]);
    expect(logged.filter((l) => l.startsWith('WARN') && l.includes('lineage'))).toEqual([]);
    expect(logged.filter((l) => l.startsWith('DEBUG lineage event sent'))).toHaveLength(events.length);
  });

  it('gives each run one id, derived from the run key and the node, and links node runs to the backfill run', () => {
    const backfillRun = lineageRunId(STARTED_AT, 'run-1');
    for (const e of events.filter((x) => x.job.name === 'shop')) expect(e.run.runId).toBe(backfillRun);
    for (const n of SPEC.nodes) {
      const runs = events.filter((e) => e.job.name === `shop.${n.id}`);
      expect(runs).toHaveLength(2);
      for (const e of runs) {
        expect(e.run.runId).toBe(lineageRunId(STARTED_AT, 'run-1', n.id));
        expect(e.run.facets.parent).toMatchObject({ run: { runId: backfillRun }, job: { namespace: 'backfill', name: 'shop' }, root: { run: { runId: backfillRun } } });
      }
    }
  });

  it('names datasets after the SQLite file and its main schema, with their columns as the warehouse has them', async () => {
    const end = find('COMPLETE', 'shop.orders');
    expect(end.outputs).toHaveLength(1);
    expect(end.outputs[0]).toMatchObject({ namespace: namespace(), name: 'main.orders' });
    // The view's declared types, as SQLite reports them (SQL results are stored without affinity: BLOB).
    const declared = await warehouse.query("SELECT name, type FROM pragma_table_info('orders') ORDER BY cid");
    expect(declared.map((c) => c.name)).toEqual(['order_id', 'amount_cents', 'day']);
    expect(end.outputs[0]!.facets.schema).toMatchObject({ fields: declared.map((c) => ({ name: c.name, type: String(c.type).toUpperCase() })) });
    expect(end.outputs[0]!.facets.dataSource).toMatchObject({ name: namespace(), uri: namespace() });
  });

  it('reads a node\'s upstream datasets as its inputs', () => {
    const daily = find('COMPLETE', 'shop.daily');
    expect(daily.inputs.map((d) => `${d.namespace}|${d.name}`)).toEqual([`${namespace()}|main.orders`]);
    expect(daily.inputs[0]!.facets.schema).toBeDefined();
    expect(find('START', 'shop.orders').inputs).toEqual([]);
  });

  it('counts the rows the run published, from the ledger, at the end only', async () => {
    expect(find('START', 'shop.orders').outputs[0]!.outputFacets.outputStatistics).toBeUndefined();
    expect(find('COMPLETE', 'shop.orders').outputs[0]!.outputFacets.outputStatistics).toMatchObject({ rowCount: 15 });
    expect(find('COMPLETE', 'shop.daily').outputs[0]!.outputFacets.outputStatistics).toMatchObject({ rowCount: 3 });
    expect(find('FAIL', 'shop.flagged').outputs[0]!.outputFacets.outputStatistics).toMatchObject({ rowCount: 0 });
    const [{ n }] = (await warehouse.query('SELECT COUNT(*) AS n FROM orders')) as [{ n: number }];
    expect(n).toBe(15);
    const backfillEnd = find('FAIL', 'shop');
    expect(backfillEnd.outputs.map((o) => [o.name, (o.outputFacets.outputStatistics as { rowCount?: number } | undefined)?.rowCount])).toEqual([
      ['main.orders', 15],
      ['main.daily', 3],
      ['main.flagged', 0],
    ]);
  });

  it('reports each check as an assertion: passed, failed as a warning, failed as an error', () => {
    const assertions = (e: RunEvent) => (e.outputs[0]!.outputFacets.dataQualityAssertions as unknown as { assertions: Array<{ name: string; success: boolean; severity: string }> }).assertions.map((a) => [a.name, a.success, a.severity]);
    expect(assertions(find('COMPLETE', 'shop.orders'))).toEqual([
      ['row_count', true, 'error'],
      ['not_null', true, 'error'],
      ['unique', true, 'error'],
    ]);
    expect(assertions(find('COMPLETE', 'shop.daily'))).toEqual([['quiet day', false, 'warn']]);
    expect(assertions(find('FAIL', 'shop.flagged'))).toEqual([['row_count', false, 'error']]);
    expect(find('START', 'shop.orders').outputs[0]!.outputFacets.dataQualityAssertions).toBeUndefined();
    // Checks run in the nodes' runs: the backfill's run reports rows only.
    for (const output of find('FAIL', 'shop').outputs) expect(output.outputFacets.dataQualityAssertions).toBeUndefined();
  });

  it('gives the partition range as a subset and as the nominal time', () => {
    const e = find('COMPLETE', 'shop.orders');
    expect(e.outputs[0]!.outputFacets.subset).toMatchObject({ outputCondition: { type: 'binary', left: { right: { value: DAYS[0] } }, right: { right: { value: DAYS[2] } } } });
    expect(e.run.facets.nominalTime).toMatchObject({ nominalStartTime: '2024-01-01T00:00:00.000Z', nominalEndTime: '2024-01-04T00:00:00.000Z' });
    expect(find('START', 'shop').run.facets.nominalTime).toMatchObject({ nominalStartTime: '2024-01-01T00:00:00.000Z', nominalEndTime: '2024-01-04T00:00:00.000Z' });
  });

  it('says why a run failed', () => {
    expect(find('FAIL', 'shop.flagged').run.facets.errorMessage).toMatchObject({ message: '3 of 3 partitions failed; first failure: checks failed: row_count: 5 rows, expected at most 0' });
    expect(find('FAIL', 'shop').run.facets.errorMessage).toMatchObject({ message: '3 partition(s) failed' });
    expect(find('COMPLETE', 'shop.orders').run.facets.errorMessage).toBeUndefined();
  });

  it('makes the same event again from the same input (a retried emit)', async () => {
    const lineage = createLineageActivities({
      warehouse,
      settings: { enabled: true, namespace: 'backfill', transport: { type: 'console' }, source: 'test' },
      producer: 'https://www.npmjs.com/package/backfill/v/0.1.0',
      engineVersion: '0.1.0',
      transport,
    });
    const input: EmitLineageInput = {
      eventType: 'COMPLETE',
      eventTime: Date.parse('2024-06-01T08:00:05Z'),
      backfillId: 'bf-lineage',
      runKey: 'run-1',
      startedAt: STARTED_AT,
      spec: { name: 'shop', description: 'Orders and their daily revenue' },
      range: {},
      run: { kind: 'node', node: SPEC.nodes[0]! },
    };
    const env = new MockActivityEnvironment({ attempt: 1 }, { logger });
    await env.run(lineage.emitLineage, input);
    await env.run(lineage.emitLineage, input);
    const [a, b] = transport.events.slice(-2);
    expect(a).toEqual(b);
    expect(a).toEqual(find('COMPLETE', 'shop.orders'));
  });
});

describe('emitLineage never fails the backfill', () => {
  let dir: string;
  let warehouse: SqliteWarehouse;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-lineage-'));
    warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
  });
  afterEach(async () => {
    await warehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const warnings: string[] = [];
  const record = (level: string) => (message: string, meta?: Record<string, unknown>) => void (level === 'WARN' && warnings.push(`${message} ${JSON.stringify(meta ?? {})}`));
  const logger: Logger = { log: (level, message, meta) => record(level)(message, meta), trace: record('TRACE'), debug: record('DEBUG'), info: record('INFO'), warn: record('WARN'), error: record('ERROR') };
  const input = (over: Partial<EmitLineageInput> = {}): EmitLineageInput => ({
    eventType: 'START',
    eventTime: STARTED_AT,
    backfillId: 'bf',
    runKey: 'run-1',
    startedAt: STARTED_AT,
    spec: { name: 'shop' },
    range: {},
    run: { kind: 'backfill', nodes: SPEC.nodes },
    ...over,
  });
  const emit = (lineage: ReturnType<typeof createLineageActivities>, value: unknown) =>
    new MockActivityEnvironment({ attempt: 1 }, { logger }).run(lineage.emitLineage, value as EmitLineageInput) as Promise<EmitLineageResult>;
  const deps = { warehouse: undefined as unknown as SqliteWarehouse, producer: 'https://www.npmjs.com/package/backfill/v/0', engineVersion: '0' };

  it('an endpoint that is down: the event is lost with a warning, the call succeeds', async () => {
    warnings.length = 0;
    const lineage = createLineageActivities({
      ...deps,
      warehouse,
      settings: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'http', url: 'http://127.0.0.1:9/api/v1/lineage', timeoutMs: 1000, headers: {}, attempts: 2 } },
    });
    const result = await emit(lineage, input());
    expect(result).toMatchObject({ events: 1, sent: false, transport: 'POST http://127.0.0.1:9/api/v1/lineage', error: expect.stringMatching(/failed after 2 attempt\(s\)/) });
    expect(warnings).toEqual([expect.stringMatching(/^lineage event lost: the backfill goes on without it .*"eventType":"START","job":"shop"/)]);
  });

  it('a bad input: nothing is sent, the problem is logged and returned', async () => {
    warnings.length = 0;
    const transport = new CollectingTransport();
    const lineage = createLineageActivities({ ...deps, warehouse, settings: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'console' } }, transport });
    const result = await emit(lineage, { ...input(), eventType: 'RUNNING', runKey: '' });
    expect(result).toMatchObject({ events: 0, sent: false, error: expect.stringContaining('bad input') });
    expect(result.error).toMatch(/eventType/);
    expect(result.error).toMatch(/runKey/);
    expect(transport.events).toEqual([]);
    expect(warnings).toHaveLength(1);
  });

  it('a warehouse that cannot answer: nothing is sent, and the next event asks it again', async () => {
    const transport = new CollectingTransport();
    let calls = 0;
    const flaky = Object.create(warehouse) as SqliteWarehouse;
    flaky.lineageDataset = async (node: string) => {
      if (calls++ === 0) throw new Error('database is locked');
      return warehouse.lineageDataset(node);
    };
    const lineage = createLineageActivities({ ...deps, warehouse: flaky, settings: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'console' } }, transport });
    expect(await emit(lineage, input())).toMatchObject({ sent: false, error: 'database is locked' });
    expect(await emit(lineage, input())).toMatchObject({ sent: true });
    expect(transport.events).toHaveLength(1);
  });

  it('a failed read of the warehouse: the event is not made until every other read of it has ended', async () => {
    let slowEnded = false;
    const failing = Object.create(warehouse) as SqliteWarehouse;
    failing.lineageDataset = async (node: string) => {
      if (node === 'orders') throw new Error('database is locked');
      await new Promise((resolve) => setTimeout(resolve, 200));
      slowEnded = true;
      return warehouse.lineageDataset(node);
    };
    const lineage = createLineageActivities({ ...deps, warehouse: failing, settings: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'console' } }, transport: new CollectingTransport() });
    expect(await emit(lineage, input())).toMatchObject({ sent: false, error: 'database is locked' });
    // The worker may close the warehouse now: nothing of the event still reads it.
    expect(slowEnded).toBe(true);
  });

  it('lineage off: no event is made and the warehouse is not asked', async () => {
    const transport = new CollectingTransport();
    const lineage = createLineageActivities({ ...deps, settings: { enabled: false, why: 'OPENLINEAGE_DISABLED=true' }, transport });
    expect(await emit(lineage, input())).toEqual({ events: 0, sent: false, transport: 'off' });
    expect(transport.events).toEqual([]);
  });
});

describe('emitLineage on a warehouse other than SQLite and PostgreSQL', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-lineage-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const find = (events: RunEvent[], eventType: string, job: string) => events.find((e) => e.eventType === eventType && e.job.name === job)!;

  it('a lake: every event, its datasets named as OpenLineage names local files (file, the dataset\'s directory), with their columns', async () => {
    const root = join(dir, 'lake');
    const warehouse = new LakeWarehouse(root);
    const transport = new CollectingTransport();
    try {
      const emitted = await runScenario({ warehouse, transport, runKey: 'run-1' });
      expect(emitted.map((e) => e.result.error ?? 'ok')).toEqual(emitted.map(() => 'ok'));
      expect(transport.events).toHaveLength(8);
      const end = find(transport.events, 'COMPLETE', 'shop.daily');
      expect(end.outputs[0]).toMatchObject({ namespace: 'file', name: join(root, 'daily') });
      expect(end.outputs[0]!.facets.schema).toMatchObject({ fields: [{ name: 'day', type: 'VARCHAR' }, { name: 'orders', type: 'BIGINT' }, { name: 'revenue_cents' }] });
      expect(end.inputs.map((d) => `${d.namespace}|${d.name}`)).toEqual([`file|${join(root, 'orders')}`]);
      expect(end.outputs[0]!.outputFacets.outputStatistics).toMatchObject({ rowCount: 3 });
    } finally {
      await warehouse.close();
    }
  }, 60_000);

  it("an adapter that does not name its datasets: every event, its datasets named after the warehouse's location, without a schema", async () => {
    const sqlite = new SqliteWarehouse(join(dir, 'warehouse.db'));
    // An adapter written before the optional lineageDataset: every other method, its own kind and location.
    const own: Record<string, unknown> = { lineageDataset: undefined, kind: 'kit', location: 'kit://user:secret@analytics.example/warehouse?token=abc' };
    const adapter = new Proxy(sqlite, {
      get: (target, key) => {
        if (typeof key === 'string' && key in own) return own[key];
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Warehouse;
    const transport = new CollectingTransport();
    try {
      const emitted = await runScenario({ warehouse: adapter, transport, runKey: 'run-1' });
      expect(emitted.map((e) => e.result.error ?? 'ok')).toEqual(emitted.map(() => 'ok'));
      expect(transport.events).toHaveLength(8);
      const end = find(transport.events, 'COMPLETE', 'shop.daily');
      expect(end.outputs[0]).toMatchObject({ namespace: 'kit://analytics.example/warehouse', name: 'daily' });
      expect(end.outputs[0]!.facets.schema).toBeUndefined();
      expect(end.inputs.map((d) => d.name)).toEqual(['orders']);
      expect(JSON.stringify(transport.events)).not.toMatch(/secret|token=abc/);
    } finally {
      await sqlite.close();
    }
  });
});
