/** The pure OpenLineage event builder (core/openlineage.ts): shapes, names, partitions, checks. */
import { describe, expect, it } from 'vitest';
import {
  FACET_SCHEMA_URLS,
  MAX_LISTED_KEYS,
  RUN_EVENT_SCHEMA_URL,
  buildRunEvent,
  checkAssertions,
  countCheckFailures,
  jobName,
  nominalWindow,
  partitionSpan,
  partitionSubset,
  locationNamespace,
  postgresNamespace,
  schemaField,
  sqliteNamespace,
  terminalEventType,
  type LineageRun,
} from '../../core/openlineage.ts';
import { EmitLineageInputSchema } from '../../core/lineage-input.ts';
import { backfillEnded, backfillStarted, nodeEnded, nodeSettled, nodeStarted, type LineageBackfill, type LineageNodeProgress } from '../../core/lineage-calls.ts';
import { resolveSpec, type CheckInput } from '../../core/spec.ts';

const day = (d: string) => Date.parse(`${d}T00:00:00Z`);
const PRODUCER = 'https://www.npmjs.com/package/backfill/v/1.2.3';
const RUN_ID = '01900000-0000-7000-8000-000000000001';
const PARENT_ID = '01900000-0000-7000-8000-000000000002';

const nodeRun = (over: Partial<LineageRun> = {}): LineageRun => ({
  eventType: 'START',
  eventTime: Date.parse('2024-06-01T12:00:00.250Z'),
  producer: PRODUCER,
  runId: RUN_ID,
  job: { namespace: 'backfill', name: 'shop.orders', kind: 'node' },
  parent: { runId: PARENT_ID, job: { namespace: 'backfill', name: 'shop' } },
  engine: { name: 'backfill', version: '1.2.3' },
  inputs: [],
  outputs: [],
  ...over,
});

describe('buildRunEvent', () => {
  it('makes a RunEvent of the 2-0-2 spec with the run, the job and the engine', () => {
    const event = buildRunEvent(nodeRun());
    expect(event).toMatchObject({
      eventType: 'START',
      eventTime: '2024-06-01T12:00:00.250Z',
      producer: PRODUCER,
      schemaURL: RUN_EVENT_SCHEMA_URL,
      run: { runId: RUN_ID },
      job: { namespace: 'backfill', name: 'shop.orders' },
      inputs: [],
      outputs: [],
    });
    expect(event.run.facets.processing_engine).toEqual({ _producer: PRODUCER, _schemaURL: FACET_SCHEMA_URLS.processing_engine, name: 'backfill', version: '1.2.3' });
    expect(event.job.facets.jobType).toMatchObject({ processingType: 'BATCH', integration: 'BACKFILL', jobType: 'TASK' });
  });

  it('links a node run to its backfill as parent and as root', () => {
    const { parent } = buildRunEvent(nodeRun()).run.facets;
    const link = { run: { runId: PARENT_ID }, job: { namespace: 'backfill', name: 'shop' } };
    expect(parent).toEqual({ _producer: PRODUCER, _schemaURL: FACET_SCHEMA_URLS.parent, ...link, root: link });
  });

  it('gives the backfill run no parent, the DAG job type and its description as documentation', () => {
    const event = buildRunEvent(nodeRun({ parent: undefined, job: { namespace: 'ns', name: 'shop', kind: 'backfill', description: 'Orders → revenue' } }));
    expect(event.run.facets.parent).toBeUndefined();
    expect(event.job.facets.jobType).toMatchObject({ jobType: 'DAG' });
    expect(event.job.facets.documentation).toMatchObject({ _schemaURL: FACET_SCHEMA_URLS.documentation, description: 'Orders → revenue' });
    expect(buildRunEvent(nodeRun()).job.facets.documentation).toBeUndefined();
  });

  it('writes the nominal window as ISO times, start included and end excluded', () => {
    const event = buildRunEvent(nodeRun({ nominal: { start: day('2024-01-01'), end: day('2024-02-01') } }));
    expect(event.run.facets.nominalTime).toMatchObject({ nominalStartTime: '2024-01-01T00:00:00.000Z', nominalEndTime: '2024-02-01T00:00:00.000Z' });
    expect(buildRunEvent(nodeRun()).run.facets.nominalTime).toBeUndefined();
  });

  it('adds the error message to FAIL and ABORT only', () => {
    for (const eventType of ['FAIL', 'ABORT'] as const) {
      expect(buildRunEvent(nodeRun({ eventType, error: 'boom' })).run.facets.errorMessage).toMatchObject({ message: 'boom', programmingLanguage: 'TypeScript' });
    }
    expect(buildRunEvent(nodeRun({ eventType: 'COMPLETE', error: 'boom' })).run.facets.errorMessage).toBeUndefined();
    expect(buildRunEvent(nodeRun({ eventType: 'FAIL' })).run.facets.errorMessage).toBeUndefined();
  });

  it('describes datasets: source and schema for every one, subset on inputs and outputs, statistics and assertions on outputs', () => {
    const subset = partitionSubset(partitionSpan({ kind: 'static', keys: ['eu'] }, {})!);
    const event = buildRunEvent(
      nodeRun({
        eventType: 'COMPLETE',
        inputs: [{ namespace: 'postgres://db:5432', name: 'wh.public.raw', fields: [{ name: 'id', type: 'INTEGER' }, { name: 'note' }], subset }],
        outputs: [
          { namespace: 'postgres://db:5432', name: 'wh.public.clean', rowCount: 42, assertions: [{ assertion: 'unique', success: true }], subset },
          { namespace: 'postgres://db:5432', name: 'wh.public.other' },
        ],
      }),
    );
    const [input] = event.inputs;
    expect(input!.facets.dataSource).toMatchObject({ _schemaURL: FACET_SCHEMA_URLS.dataSource, name: 'postgres://db:5432', uri: 'postgres://db:5432' });
    expect(input!.facets.schema).toMatchObject({ _schemaURL: FACET_SCHEMA_URLS.schema, fields: [{ name: 'id', type: 'INTEGER' }, { name: 'note' }] });
    expect(input!.inputFacets.subset).toMatchObject({ _schemaURL: FACET_SCHEMA_URLS.inputSubset, inputCondition: subset });
    const [clean, other] = event.outputs;
    expect(clean!.facets.schema).toBeUndefined();
    expect(clean!.outputFacets).toMatchObject({
      subset: { _schemaURL: FACET_SCHEMA_URLS.outputSubset, outputCondition: subset },
      outputStatistics: { _schemaURL: FACET_SCHEMA_URLS.outputStatistics, rowCount: 42 },
      dataQualityAssertions: { _schemaURL: FACET_SCHEMA_URLS.dataQualityAssertions, assertions: [{ assertion: 'unique', success: true }] },
    });
    expect(other!.outputFacets).toEqual({});
  });

  it('writes 0 rows as a row count, not as nothing', () => {
    const event = buildRunEvent(nodeRun({ outputs: [{ namespace: 'n', name: 'x', rowCount: 0 }] }));
    expect(event.outputs[0]!.outputFacets.outputStatistics).toMatchObject({ rowCount: 0 });
  });

  it('stamps every facet with the producer and a schema URL of openlineage.io', () => {
    const event = buildRunEvent(nodeRun({ eventType: 'FAIL', error: 'x', nominal: { start: 0, end: 1 }, outputs: [{ namespace: 'n', name: 'x', rowCount: 1, fields: [] }] }));
    const facets = [event.run.facets, event.job.facets, ...event.outputs.flatMap((o) => [o.facets, o.outputFacets])].flatMap((f) => Object.values(f));
    expect(facets.length).toBeGreaterThan(6);
    for (const facet of facets) {
      expect(facet._producer).toBe(PRODUCER);
      expect(facet._schemaURL).toMatch(/^https:\/\/openlineage\.io\/spec\/facets\/\d+-\d+-\d+\/\w+\.json#\/\$defs\/\w+$/);
    }
  });
});

describe('terminalEventType', () => {
  it('maps a backfill end state to COMPLETE, FAIL or ABORT', () => {
    expect(terminalEventType('completed')).toBe('COMPLETE');
    expect(terminalEventType('completed_with_failures')).toBe('FAIL');
    expect(terminalEventType('failed')).toBe('FAIL');
    expect(terminalEventType('cancelled')).toBe('ABORT');
  });
});

describe('names', () => {
  it('a backfill is the job <spec>, a node run the job <spec>.<node>', () => {
    expect(jobName('shop')).toBe('shop');
    expect(jobName('shop', 'orders_raw')).toBe('shop.orders_raw');
  });

  it('PostgreSQL: postgres://host:port, without credentials, port 5432 by default', () => {
    expect(postgresNamespace('postgres://user:secret@db.example.com:6543/warehouse?sslmode=require')).toBe('postgres://db.example.com:6543');
    expect(postgresNamespace('postgresql://user@db.example.com/warehouse')).toBe('postgres://db.example.com:5432');
    expect(postgresNamespace('postgres://user:***@127.0.0.1/warehouse')).toBe('postgres://127.0.0.1:5432');
  });

  it('SQLite: sqlite://host/absolute/path, each path segment escaped', () => {
    expect(sqliteNamespace('worker-1', '/var/lib/backfill/warehouse.db')).toBe('sqlite://worker-1/var/lib/backfill/warehouse.db');
    expect(sqliteNamespace('h', '/data/my files/w#1.db')).toBe('sqlite://h/data/my%20files/w%231.db');
    expect(sqliteNamespace('h', 'relative.db')).toBe('sqlite://h/relative.db');
  });

  it("a warehouse that does not name its datasets: its location as a URI, without credentials, query or fragment", () => {
    expect(locationNamespace('bigquery', 'bigquery://user:secret@my-project/analytics?key=abc#x')).toBe('bigquery://my-project/analytics');
    expect(locationNamespace('kit', 'kit:/tmp/warehouse.db')).toBe('kit:///tmp/warehouse.db');
    expect(locationNamespace('kit', '/tmp/warehouse.db')).toBe('kit:/tmp/warehouse.db');
    expect(locationNamespace('kit', 'C:\\data\\warehouse.db')).toBe('kit:C:\\data\\warehouse.db');
  });

  it('a column of the schema facet: its declared type upper-cased, or none', () => {
    expect(schemaField('amount', 'integer')).toEqual({ name: 'amount', type: 'INTEGER' });
    expect(schemaField('raw', '')).toEqual({ name: 'raw' });
    expect(schemaField('raw', null)).toEqual({ name: 'raw' });
  });
});

describe('partitions', () => {
  const days = { kind: 'time', grain: 'day', start: day('2024-01-01'), end: day('2024-02-01') } as const;

  it('a span is the partitions within the range: count, first and last key, window', () => {
    expect(partitionSpan(days, {})).toEqual({ count: 31, first: '2024-01-01', last: '2024-01-31', kind: 'time', window: { start: day('2024-01-01'), end: day('2024-02-01') } });
    expect(partitionSpan(days, { from: day('2024-01-10'), to: day('2024-01-12') })).toMatchObject({ count: 2, first: '2024-01-10', last: '2024-01-11' });
    expect(partitionSpan(days, { from: day('2025-01-01') })).toBeUndefined();
  });

  it('a coarser grain keeps the whole periods the range touches', () => {
    const months = { kind: 'time', grain: 'month', start: day('2024-01-01'), end: day('2025-01-01') } as const;
    expect(partitionSpan(months, { from: day('2024-03-10'), to: day('2024-03-11') })).toMatchObject({ count: 1, first: '2024-03', last: '2024-03', window: { start: day('2024-03-01'), end: day('2024-04-01') } });
  });

  it('time partitions are a key range; one partition, an equality', () => {
    expect(partitionSubset(partitionSpan(days, {})!)).toEqual({
      type: 'binary',
      operator: 'AND',
      left: { type: 'compare', left: { type: 'field', field: 'partition' }, comparison: 'GREATER_EQUAL_THAN', right: { type: 'literal', value: '2024-01-01' } },
      right: { type: 'compare', left: { type: 'field', field: 'partition' }, comparison: 'LESS_EQUAL_THAN', right: { type: 'literal', value: '2024-01-31' } },
    });
    expect(partitionSubset(partitionSpan(days, { from: day('2024-01-05'), to: day('2024-01-06') })!)).toEqual({
      type: 'compare',
      left: { type: 'field', field: 'partition' },
      comparison: 'EQUAL',
      right: { type: 'literal', value: '2024-01-05' },
    });
  });

  it('static keys are listed, up to a limit, then given as a range of keys', () => {
    expect(partitionSubset(partitionSpan({ kind: 'static', keys: ['eu', 'us'] }, {})!)).toEqual({
      type: 'partition',
      partitions: [
        { identifier: 'eu', dimensions: { partition: 'eu' } },
        { identifier: 'us', dimensions: { partition: 'us' } },
      ],
    });
    const many = Array.from({ length: MAX_LISTED_KEYS + 1 }, (_, i) => `k${String(i).padStart(5, '0')}`);
    const span = partitionSpan({ kind: 'static', keys: many }, {})!;
    expect(span).toMatchObject({ count: MAX_LISTED_KEYS + 1, first: 'k00000', last: `k0${MAX_LISTED_KEYS}`, kind: 'static' });
    expect(span.keys).toBeUndefined();
    expect(partitionSubset(span)).toMatchObject({ type: 'binary', operator: 'AND' });
  });

  it('the nominal window holds every time span, and there is none for static keys alone', () => {
    const a = partitionSpan(days, {});
    const b = partitionSpan({ kind: 'time', grain: 'month', start: day('2023-12-01'), end: day('2024-01-01') }, {});
    const s = partitionSpan({ kind: 'static', keys: ['x'] }, {});
    expect(nominalWindow([a, b, s, undefined])).toEqual({ start: day('2023-12-01'), end: day('2024-02-01') });
    expect(nominalWindow([s])).toBeUndefined();
    expect(nominalWindow([])).toBeUndefined();
  });
});

describe('checks', () => {
  const checks: CheckInput[] = [
    { type: 'row_count', min: 1, max: 1000 },
    { type: 'not_null', columns: ['order_id'] },
    { type: 'not_null', columns: ['a', 'b'], name: 'keys present', severity: 'warn' },
    { type: 'unique', columns: ['order_id'] },
    { type: 'sql', name: 'revenue is positive', sql: 'SELECT * FROM {{this}} WHERE revenue <= 0' },
    { type: 'drift', metric: { sum: 'revenue' }, maxChangePercent: 20 },
  ];

  it('failures count for the checks whose label starts a part of their message, by partitions', () => {
    const counts = countCheckFailures(checks, [
      { message: 'checks failed: revenue is positive: 2 violating rows; not_null: 1 rows have order_id NULL', partitions: 3 },
      { message: 'revenue is positive: 1 violating rows', partitions: 1 },
      { message: 'keys present: 3 rows have a NULL', partitions: 1 },
      { message: 'row_countish: not this one', partitions: 9 },
      { message: 'connection reset', partitions: 2 },
    ]);
    expect(Object.fromEntries(counts)).toEqual({ 'revenue is positive': 4, not_null: 3, 'keys present': 1 });
    // Counts add to what is there already.
    expect(countCheckFailures(checks, [{ message: 'unique: 2 duplicated values of (order_id)', partitions: 1 }], new Map([['unique', 4]])).get('unique')).toBe(5);
  });

  it('one assertion per check, failed when any partition failed it', () => {
    const assertions = checkAssertions(checks, new Map([['revenue is positive', 2], ['keys present', 1]]));
    expect(assertions).toEqual([
      { assertion: 'row_count', success: true, name: 'row_count', severity: 'error', description: 'rows per partition within bounds', expected: '>= 1 and <= 1000' },
      { assertion: 'not_null', success: true, name: 'not_null', severity: 'error', description: 'order_id never NULL', column: 'order_id' },
      { assertion: 'not_null', success: false, name: 'keys present', severity: 'warn', description: 'a, b never NULL', actual: 'failed on 1 partition' },
      { assertion: 'unique', success: true, name: 'unique', severity: 'error', description: '(order_id) unique within a partition', column: 'order_id' },
      {
        assertion: 'custom_sql',
        success: false,
        name: 'revenue is positive',
        severity: 'error',
        description: 'no rows returned by the check query',
        actual: 'failed on 2 partitions',
        content: 'SELECT * FROM {{this}} WHERE revenue <= 0',
        contentType: 'sql',
      },
      { assertion: 'drift', success: true, name: 'drift', severity: 'error', description: 'sum(revenue) changes by at most 20% from the published version', expected: 'within ±20%' },
    ]);
  });

  it('no checks, no assertions', () => {
    expect(checkAssertions([], new Map([['anything', 1]]))).toEqual([]);
  });
});

describe('EmitLineageInputSchema', () => {
  const spec = resolveSpec(
    {
      name: 'shop',
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-02-01' },
      nodes: [
        { id: 'a', transform: 'noop', checks: [{ type: 'row_count', min: 1 }] },
        { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', mapping: 'all' }], partitions: { keys: ['eu', 'us'] } },
      ],
    },
    new Set(['noop']),
  );
  const input = { eventType: 'START', eventTime: 1, backfillId: 'bf', runKey: 'rk', startedAt: 1, spec: { name: 'shop' }, range: {} };

  it('takes the resolved spec\'s nodes as they are, for the backfill and for one node', () => {
    expect(EmitLineageInputSchema.parse({ ...input, run: { kind: 'backfill', nodes: spec.nodes } }).run).toMatchObject({ kind: 'backfill', nodes: [{ id: 'a' }, { id: 'b' }] });
    const parsed = EmitLineageInputSchema.parse({ ...input, eventType: 'ABORT', error: 'cancelled', run: { kind: 'node', node: spec.nodes[1] } });
    expect(parsed.run).toMatchObject({ kind: 'node', node: { id: 'b', partitions: { kind: 'static', keys: ['eu', 'us'] }, dependsOn: [{ node: 'a' }] } });
  });

  it('refuses what is not an event of a known type for a known run', () => {
    const refused = (value: unknown) => EmitLineageInputSchema.safeParse(value).error?.issues.map((i) => i.path.join('.'));
    expect(refused({ ...input, eventType: 'RUNNING', run: { kind: 'backfill', nodes: spec.nodes } })).toEqual(['eventType']);
    expect(refused({ ...input, run: { kind: 'backfill', nodes: [] } })).toEqual(['run.nodes']);
    expect(refused({ ...input, run: { kind: 'job', node: spec.nodes[0] } })).toEqual(['run.kind']);
    expect(refused({ ...input, runKey: '', run: { kind: 'node', node: { ...spec.nodes[0], partitions: { kind: 'time', grain: 'year', start: 0, end: 1 } } } })).toEqual(['runKey', 'run.node.partitions']);
  });
});

describe('what a workflow passes at each transition', () => {
  const spec = resolveSpec({ name: 'shop', description: 'd', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-08' }, nodes: [{ id: 'a', transform: 'noop' }] }, new Set(['noop']));
  const backfill: LineageBackfill = { backfillId: 'bf', runKey: 'rk', startedAt: 5, spec, range: { from: 7 } };
  const node = spec.nodes[0]!;
  const progress = (over: Partial<LineageNodeProgress> = {}): LineageNodeProgress => ({ total: 7, done: 7, failed: 0, blocked: 0, pending: 0, running: 0, failures: [], ...over });
  const parse = (input: unknown) => EmitLineageInputSchema.parse(input);

  it('the backfill starts and ends: COMPLETE, FAIL with the failed count or the reason, ABORT', () => {
    expect(parse(backfillStarted(backfill, 10))).toEqual({
      eventType: 'START',
      eventTime: 10,
      backfillId: 'bf',
      runKey: 'rk',
      startedAt: 5,
      spec: { name: 'shop', description: 'd' },
      range: { from: 7 },
      run: { kind: 'backfill', nodes: spec.nodes },
    });
    expect(backfillEnded(backfill, 20, { state: 'completed' })).toMatchObject({ eventType: 'COMPLETE', eventTime: 20 });
    expect(backfillEnded(backfill, 20, { state: 'completed' }).error).toBeUndefined();
    expect(backfillEnded(backfill, 20, { state: 'completed_with_failures', failedPartitions: 3 })).toMatchObject({ eventType: 'FAIL', error: '3 partition(s) failed' });
    expect(backfillEnded(backfill, 20, { state: 'failed', why: 'node workflow lost' })).toMatchObject({ eventType: 'FAIL', error: 'node workflow lost' });
    expect(backfillEnded(backfill, 20, { state: 'cancelled' })).toMatchObject({ eventType: 'ABORT', error: 'the backfill was cancelled' });
    for (const state of ['completed', 'completed_with_failures', 'failed', 'cancelled'] as const) expect(() => parse(backfillEnded(backfill, 1, { state }))).not.toThrow();
  });

  it('a node starts, and ends once nothing of it is pending or running', () => {
    expect(parse(nodeStarted(backfill, node, 11))).toMatchObject({ eventType: 'START', run: { kind: 'node', node: { id: 'a' } } });
    expect(nodeSettled(progress())).toBe(true);
    expect(nodeSettled(progress({ done: 5, failed: 1, blocked: 1 }))).toBe(true);
    expect(nodeSettled(progress({ done: 6, pending: 1 }))).toBe(false);
    expect(nodeSettled(progress({ done: 6, running: 1 }))).toBe(false);
    expect(nodeEnded(backfill, node, 30, progress())).toMatchObject({ eventType: 'COMPLETE' });
    expect(nodeEnded(backfill, node, 30, progress()).run).toEqual({ kind: 'node', node });
    expect(nodeEnded(backfill, node, 30, progress({ done: 4, failed: 2, blocked: 1, failures: [{ message: 'row_count: 0 rows', partitions: 2 }] }))).toMatchObject({
      eventType: 'FAIL',
      error: '2 of 7 partitions failed, 1 blocked by failed upstream partitions; first failure: row_count: 0 rows',
      run: { kind: 'node', node, failures: [{ message: 'row_count: 0 rows', partitions: 2 }] },
    });
    expect(nodeEnded(backfill, node, 30, progress({ done: 6, blocked: 1 }))).toMatchObject({ eventType: 'FAIL', error: '1 blocked by failed upstream partitions' });
    expect(nodeEnded(backfill, node, 30, progress({ done: 3, pending: 4 }), { cancelled: true })).toMatchObject({ eventType: 'ABORT', error: 'cancelled with 3 of 7 partitions done' });
    expect(nodeEnded(backfill, node, 30, progress({ done: 7 }), { cancelled: true, why: 'discarded' })).toMatchObject({ eventType: 'ABORT', error: 'discarded' });
  });

  it('a node whose partitions did not all run (or were never published) does not COMPLETE: ABORT, saying why', () => {
    // The backfill failed elsewhere (or was refused) before this node's partitions ran.
    expect(nodeEnded(backfill, node, 30, progress({ done: 0, pending: 7 }))).toMatchObject({ eventType: 'ABORT', error: 'stopped with 0 of 7 partitions done' });
    expect(nodeEnded(backfill, node, 30, progress({ done: 2, pending: 4, running: 1 }), { why: 'node workflow lost' })).toMatchObject({
      eventType: 'ABORT',
      error: 'stopped with 2 of 7 partitions done: node workflow lost',
    });
    // A canary stopped by a failure in its slice: this node's slice passed, staged, and the rest never ran.
    expect(nodeEnded(backfill, node, 30, progress({ done: 1, pending: 6 }), { unpublished: true, why: 'the canary failed' })).toMatchObject({
      eventType: 'ABORT',
      error: 'stopped with 1 of 7 partitions done (none published): the canary failed',
    });
    // Every partition was in the slice: all done, but staged only.
    expect(nodeEnded(backfill, node, 30, progress(), { unpublished: true })).toMatchObject({ eventType: 'ABORT', error: 'stopped with 7 of 7 partitions done (none published)' });
    // Failed partitions still say FAIL, whatever else stopped the backfill; every partition done still says COMPLETE.
    expect(nodeEnded(backfill, node, 30, progress({ done: 1, failed: 1, pending: 5 }), { unpublished: true, why: 'the canary failed' })).toMatchObject({ eventType: 'FAIL', error: '1 of 7 partitions failed' });
    expect(nodeEnded(backfill, node, 30, progress(), { why: 'another node failed' })).toMatchObject({ eventType: 'COMPLETE' });
    expect(nodeEnded(backfill, node, 30, progress(), { why: 'another node failed' }).error).toBeUndefined();
    expect(() => parse(nodeEnded(backfill, node, 30, progress({ done: 0, pending: 7 })))).not.toThrow();
  });
});
