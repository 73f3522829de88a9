import { describe, it, expect } from 'vitest';
import {
  parseRange,
  resolveSpec,
  RetrySchema,
  SettingsSchema,
  SPEC_EXAMPLE,
  type ResolvedSpec,
} from '../../core/spec.ts';
import { parse } from 'yaml';
import { BackfillError, type ErrorCode } from '../../core/errors.ts';
import { grainOf } from '../../core/mapping.ts';

const at = (date: string) => Date.parse(`${date}T00:00:00Z`);

/** A realistic spec: raw events by hour, daily and weekly rollups, a 7-day rolling average, a static dimension. */
const realistic = () => ({
  name: 'daily-revenue',
  description: 'Revenue rollups for 2024',
  transforms: ['./transforms.ts'],
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-04-01' },
  defaults: { concurrency: 8, rate: 20, retry: { maxAttempts: 5 } },
  nodes: [
    { id: 'raw_events', transform: 'noop', partitions: { grain: 'hour' }, params: { source: 's3://bucket/events' } },
    {
      id: 'daily_revenue',
      sql: 'SELECT day, sum(amount) FROM raw_events GROUP BY day',
      dependsOn: ['raw_events'],
      checks: [{ type: 'row_count', min: 1 }, { type: 'not_null', columns: ['day'] }],
    },
    { id: 'weekly_revenue', transform: 'noop', partitions: { grain: 'week' }, dependsOn: ['daily_revenue'] },
    {
      id: 'rolling_7d',
      transform: 'noop',
      dependsOn: [{ node: 'daily_revenue', mapping: { lag: { from: -6, to: 0 } } }],
      retry: { initialInterval: '5s' },
      concurrency: 2,
      rate: null,
    },
    { id: 'regions', transform: 'noop', partitions: { keys: ['eu', 'us', 'apac'] } },
    { id: 'region_totals', transform: 'noop', partitions: { keys: ['eu', 'us', 'apac'] }, dependsOn: ['regions'] },
    { id: 'report', transform: 'noop', partitions: { grain: 'month' }, dependsOn: ['daily_revenue', 'regions'] },
  ],
});

const minimal = (nodes: unknown[], partitions: unknown = { grain: 'day', start: '2024-01-01', end: '2024-02-01' }) => ({
  name: 'x',
  partitions,
  nodes,
});

/** Runs resolveSpec expecting a BackfillError; returns it for further checks. */
function rejects(document: unknown, code: ErrorCode, path: string | RegExp, known?: ReadonlySet<string>): BackfillError {
  let caught: unknown;
  try {
    resolveSpec(document, known);
  } catch (error) {
    caught = error;
  }
  expect(caught, 'resolveSpec should throw').toBeInstanceOf(BackfillError);
  const error = caught as BackfillError;
  expect(error.code).toBe(code);
  if (typeof path === 'string') expect(error.path).toBe(path);
  else expect(error.path).toMatch(path);
  // The message starts with the path, so a user sees where the problem is.
  if (error.path) expect(error.message.startsWith(`${error.path}: `)).toBe(true);
  return error;
}

const node = (spec: ResolvedSpec, id: string) => {
  const n = spec.nodes.find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id}`);
  return n;
};

describe('resolveSpec: a realistic spec', () => {
  const spec = resolveSpec(realistic(), new Set(['noop', 'sql']));

  it('keeps the name, description, transforms and node order', () => {
    expect(spec.name).toBe('daily-revenue');
    expect(spec.description).toBe('Revenue rollups for 2024');
    expect(spec.transforms).toEqual(['./transforms.ts']);
    expect(spec.nodes.map((n) => n.id)).toEqual([
      'raw_events',
      'daily_revenue',
      'weekly_revenue',
      'rolling_7d',
      'regions',
      'region_totals',
      'report',
    ]);
    expect(spec.rate).toBeNull();
    expect(spec.concurrency).toBeNull();
  });

  it('inherits partitions from the spec and lets a node override part of them', () => {
    expect(node(spec, 'raw_events').partitions).toEqual({ kind: 'time', grain: 'hour', start: at('2024-01-01'), end: at('2024-04-01') });
    expect(node(spec, 'daily_revenue').partitions).toEqual({ kind: 'time', grain: 'day', start: at('2024-01-01'), end: at('2024-04-01') });
    expect(node(spec, 'weekly_revenue').partitions).toMatchObject({ kind: 'time', grain: 'week' });
    expect(node(spec, 'regions').partitions).toEqual({ kind: 'static', keys: ['eu', 'us', 'apac'] });
    expect(grainOf(node(spec, 'regions').partitions)).toBe('static');
    expect(grainOf(node(spec, 'report').partitions)).toBe('month');
  });

  it('infers the sql transform from sql and keeps params and checks', () => {
    const daily = node(spec, 'daily_revenue');
    expect(daily.transform).toBe('sql');
    expect(daily.sql).toContain('SELECT day');
    expect(daily.checks).toEqual([
      { type: 'row_count', min: 1, severity: 'error' },
      { type: 'not_null', columns: ['day'], severity: 'error' },
    ]);
    expect(node(spec, 'raw_events').params).toEqual({ source: 's3://bucket/events' });
    expect(node(spec, 'weekly_revenue').params).toEqual({});
    expect(node(spec, 'weekly_revenue').checks).toEqual([]);
    expect('sql' in node(spec, 'weekly_revenue')).toBe(false);
  });

  it('defaults mappings: window when time grains differ, identity when equal, all when static meets time', () => {
    expect(node(spec, 'daily_revenue').dependsOn).toEqual([{ node: 'raw_events', mapping: 'window' }]);
    expect(node(spec, 'weekly_revenue').dependsOn).toEqual([{ node: 'daily_revenue', mapping: 'window' }]);
    expect(node(spec, 'rolling_7d').dependsOn).toEqual([{ node: 'daily_revenue', mapping: { lag: { from: -6, to: 0 } } }]);
    expect(node(spec, 'region_totals').dependsOn).toEqual([{ node: 'regions', mapping: 'identity' }]);
    expect(node(spec, 'report').dependsOn).toEqual([
      { node: 'daily_revenue', mapping: 'window' },
      { node: 'regions', mapping: 'all' },
    ]);
  });

  it('fills settings from defaults and lets nodes override them', () => {
    const raw = node(spec, 'raw_events');
    expect(raw.concurrency).toBe(8);
    expect(raw.rate).toBe(20);
    expect(raw.retry).toEqual({ maxAttempts: 5, maxThrottles: 50, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' });
    const rolling = node(spec, 'rolling_7d');
    expect(rolling.concurrency).toBe(2);
    expect(rolling.rate).toBeNull(); // an explicit null (unlimited) overrides the default rate
    // A partial retry merges field by field with defaults.retry, then with the built-in defaults.
    expect(rolling.retry).toEqual({ maxAttempts: 5, maxThrottles: 50, initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m' });
  });

  it('is plain JSON (what a workflow receives)', () => {
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
  });
});

describe('resolveSpec: defaults', () => {
  it('fills every built-in default', () => {
    const spec = resolveSpec(minimal([{ id: 'a', transform: 'noop' }]));
    const a = spec.nodes[0]!;
    expect(a.concurrency).toBe(4);
    expect(a.rate).toBeNull();
    expect(a.burst).toBeNull();
    expect(a.retry).toEqual({ maxAttempts: 3, maxThrottles: 50, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' });
    expect(a.taskQueue).toBe('backfill');
    expect(a.batchSize).toBe('auto');
    expect(a.batchTarget).toBe('2s');
    expect(a.pace).toEqual({});
    expect(a.timeout).toBe('10m');
    expect(a.heartbeatTimeout).toBe('30s');
    expect(a.params).toEqual({});
    expect(a.dependsOn).toEqual([]);
    expect(a.checks).toEqual([]);
    expect(spec.transforms).toEqual([]);
    expect(spec.rate).toBeNull();
    expect(spec.concurrency).toBeNull();
    expect('description' in spec).toBe(false);
  });

  it('the schemas agree with those defaults', () => {
    expect(RetrySchema.parse({})).toEqual({ maxAttempts: 3, maxThrottles: 50, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' });
    expect(SettingsSchema.parse({})).toMatchObject({ concurrency: 4, rate: null, taskQueue: 'backfill', batchSize: 'auto', batchTarget: '2s', pace: {}, timeout: '10m' });
  });

  it('node settings override defaults, which override built-ins', () => {
    const spec = resolveSpec({
      ...minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', concurrency: 1, taskQueue: 'warehouse', batchSize: 10, timeout: '1h', burst: 3, heartbeatTimeout: '5s' },
      ]),
      defaults: { concurrency: 16, taskQueue: 'shared', batchSize: 5, timeout: '2m', rate: 2.5, burst: 10 },
      rate: 50,
      concurrency: 100,
    });
    expect(spec.rate).toBe(50);
    expect(spec.concurrency).toBe(100);
    expect(spec.nodes[0]).toMatchObject({ concurrency: 16, taskQueue: 'shared', batchSize: 5, timeout: '2m', rate: 2.5, burst: 10, heartbeatTimeout: '30s' });
    expect(spec.nodes[1]).toMatchObject({ concurrency: 1, taskQueue: 'warehouse', batchSize: 10, timeout: '1h', rate: 2.5, burst: 3, heartbeatTimeout: '5s' });
  });

  it('merges partial retry objects field by field', () => {
    const spec = resolveSpec({
      ...minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', retry: { backoffCoefficient: 3 } },
        { id: 'c', transform: 'noop', retry: { maxAttempts: 1, maximumInterval: '10s' } },
      ]),
      defaults: { retry: { maxAttempts: 7, maxThrottles: 50, initialInterval: '2s' } },
    });
    expect(spec.nodes[0]!.retry).toEqual({ maxAttempts: 7, maxThrottles: 50, initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m' });
    expect(spec.nodes[1]!.retry).toEqual({ maxAttempts: 7, maxThrottles: 50, initialInterval: '2s', backoffCoefficient: 3, maximumInterval: '1m' });
    expect(spec.nodes[2]!.retry).toEqual({ maxAttempts: 1, maxThrottles: 50, initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '10s' });
  });

  it('a node retry without defaults.retry merges with the built-in retry', () => {
    const spec = resolveSpec(minimal([{ id: 'a', transform: 'noop', retry: { maxAttempts: 10 } }]));
    expect(spec.nodes[0]!.retry).toEqual({ maxAttempts: 10, maxThrottles: 50, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' });
  });

  it('identity is the default between equal grains, window between different time grains', () => {
    for (const [up, down, expected] of [
      ['day', 'day', 'identity'],
      ['hour', 'hour', 'identity'],
      ['week', 'week', 'identity'],
      ['month', 'month', 'identity'],
      ['hour', 'day', 'window'],
      ['day', 'week', 'window'],
      ['day', 'month', 'window'],
      ['hour', 'month', 'window'],
      ['day', 'hour', 'window'],
    ] as const) {
      const spec = resolveSpec(
        minimal([
          { id: 'up', transform: 'noop', partitions: { grain: up } },
          { id: 'down', transform: 'noop', partitions: { grain: down }, dependsOn: ['up'] },
        ]),
      );
      expect(spec.nodes[1]!.dependsOn, `${up} -> ${down}`).toEqual([{ node: 'up', mapping: expected }]);
    }
  });

  it('all is the default between static keys and time partitions, either way', () => {
    const spec = resolveSpec(
      minimal([
        { id: 'dims', transform: 'noop', partitions: { keys: ['a', 'b'] } },
        { id: 'facts', transform: 'noop', dependsOn: ['dims'] },
        { id: 'per_key', transform: 'noop', partitions: { keys: ['a', 'b'] }, dependsOn: ['facts'] },
      ]),
    );
    expect(spec.nodes[1]!.dependsOn).toEqual([{ node: 'dims', mapping: 'all' }]);
    expect(spec.nodes[2]!.dependsOn).toEqual([{ node: 'facts', mapping: 'all' }]);
  });

  it('accepts explicit mappings that fit', () => {
    const spec = resolveSpec(
      minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', mapping: 'identity' }] },
        { id: 'c', transform: 'noop', partitions: { grain: 'week' }, dependsOn: [{ node: 'a', mapping: 'all' }, { node: 'b' }] },
        { id: 'd', transform: 'noop', partitions: { grain: 'month' }, dependsOn: [{ node: 'a', mapping: { lag: { from: -1, to: 0 } } }] },
        { id: 'e', transform: 'noop', partitions: { grain: 'month' }, dependsOn: [{ node: 'c', mapping: 'all' }] },
      ]),
    );
    expect(spec.nodes[2]!.dependsOn).toEqual([
      { node: 'a', mapping: 'all' },
      { node: 'b', mapping: 'window' },
    ]);
    expect(spec.nodes[3]!.dependsOn).toEqual([{ node: 'a', mapping: { lag: { from: -1, to: 0 } } }]);
    expect(spec.nodes[4]!.dependsOn).toEqual([{ node: 'c', mapping: 'all' }]);
  });

  it('accepts period keys, hours and Date objects as bounds', () => {
    const spec = resolveSpec(
      minimal([{ id: 'a', transform: 'noop' }], { grain: 'week', start: '2024-W02', end: new Date(Date.UTC(2024, 2, 1)) }),
    );
    expect(spec.nodes[0]!.partitions).toEqual({ kind: 'time', grain: 'week', start: at('2024-01-08'), end: at('2024-03-01') });
    const hourly = resolveSpec(minimal([{ id: 'a', transform: 'noop' }], { grain: 'hour', start: '2024-03-01T05', end: '2024-04' }));
    expect(hourly.nodes[0]!.partitions).toEqual({
      kind: 'time',
      grain: 'hour',
      start: Date.parse('2024-03-01T05:00:00Z'),
      end: at('2024-04-01'),
    });
  });

  it('a node may define all its partitions when the spec has none', () => {
    const spec = resolveSpec({
      name: 'x',
      nodes: [
        { id: 'a', transform: 'noop', partitions: { grain: 'month', start: '2023-01-01', end: '2024-01-01' } },
        { id: 'b', transform: 'noop', partitions: { keys: ['k1'] } },
      ],
    });
    expect(spec.nodes[0]!.partitions).toEqual({ kind: 'time', grain: 'month', start: at('2023-01-01'), end: at('2024-01-01') });
    expect(spec.nodes[1]!.partitions).toEqual({ kind: 'static', keys: ['k1'] });
  });

  it('static keys on the spec are inherited by every node', () => {
    const spec = resolveSpec({ name: 'x', partitions: { keys: ['eu', 'us'] }, nodes: [{ id: 'a', transform: 'noop' }] });
    expect(spec.nodes[0]!.partitions).toEqual({ kind: 'static', keys: ['eu', 'us'] });
  });

  it('knownTransforms accepts the names it lists', () => {
    expect(() => resolveSpec(minimal([{ id: 'a', transform: 'noop' }, { id: 'b', sql: 'SELECT 1' }]), new Set(['noop', 'sql']))).not.toThrow();
  });
});

describe('resolveSpec: bad input names the problem, the place and the fix', () => {
  it('an unknown dependency', () => {
    const error = rejects(
      minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: ['a', 'nope'] },
      ]),
      'unknown_node',
      'nodes[1].dependsOn[1]',
    );
    expect(error.message).toContain("'nope'");
    expect(error.message).toContain('nodes: a, b'); // lists what exists
  });

  it('an unknown dependency in object form', () => {
    rejects(minimal([{ id: 'a', transform: 'noop', dependsOn: [{ node: 'ghost', mapping: 'all' }] }]), 'unknown_node', 'nodes[0].dependsOn[0]');
  });

  it('a cycle of three nodes', () => {
    const error = rejects(
      minimal([
        { id: 'a', transform: 'noop', dependsOn: ['c'] },
        { id: 'b', transform: 'noop', dependsOn: ['a'] },
        { id: 'c', transform: 'noop', dependsOn: ['b'] },
      ]),
      'cycle',
      'nodes[0].dependsOn[0]',
    );
    expect(error.message).toContain('a → c → b → a');
    expect(error.message).toMatch(/remove one of these edges/);
  });

  it('a cycle among later nodes points at an edge of the cycle', () => {
    const error = rejects(
      minimal([
        { id: 'root', transform: 'noop' },
        { id: 'x', transform: 'noop', dependsOn: ['root', 'y'] },
        { id: 'y', transform: 'noop', dependsOn: ['x'] },
      ]),
      'cycle',
      'nodes[1].dependsOn[1]',
    );
    expect(error.message).toContain('x → y → x');
  });

  it('a self-dependency', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'noop', dependsOn: ['a'] }]), 'cycle', 'nodes[0].dependsOn[0]');
    expect(error.message).toContain("'a' depends on itself");
  });

  it('an unknown transform when the known ones are given', () => {
    const error = rejects(
      minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'sparkle' },
      ]),
      'unknown_transform',
      'nodes[1].transform',
      new Set(['noop', 'sql', 'sleep']),
    );
    expect(error.message).toContain("'sparkle'");
    expect(error.message).toContain('known: noop, sleep, sql');
    expect(error.message).toMatch(/fix the name|transforms/);
    expect(error.message).not.toContain('did you mean');
  });

  it('a misspelt transform names the registered one it is likely a typo of', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'gen_evnts' }]), 'unknown_transform', 'nodes[0].transform', new Set(['gen_events', 'noop', 'sql', 'sleep']));
    expect(error.message).toBe(
      "nodes[0].transform: 'gen_evnts' is not a registered transform (known: gen_events, noop, sleep, sql): fix the name (did you mean 'gen_events'?), or list the module that registers it under 'transforms'",
    );
  });

  it('does not check transform names when none are given', () => {
    expect(() => resolveSpec(minimal([{ id: 'a', transform: 'sparkle' }]))).not.toThrow();
  });

  it('a bad date', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'day', start: '2024-02-30', end: '2024-03-10' }), 'invalid_date', 'partitions.start');
    expect(error.message).toMatch(/YYYY-MM-DD, YYYY-MM-DDTHH .*YYYY-MM \(a month\) or YYYY-Www/);
    rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'day', start: '2024-01-01', end: '2023-02-29' }), 'invalid_date', 'partitions.end');
    rejects(
      minimal([{ id: 'a', transform: 'noop', partitions: { start: 'yesterday' } }]),
      'invalid_date',
      'nodes[0].partitions.start',
    );
  });

  it('an invalid Date object is rejected, not thrown as a RangeError', () => {
    rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'day', start: new Date('garbage'), end: '2024-03-10' }), 'invalid_spec', 'partitions.start');
  });

  it('an end before (or equal to) the start, named where it was written', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'day', start: '2024-03-01', end: '2024-02-01' }), 'invalid_date', 'partitions.end');
    expect(error.message).toBe('partitions.end: (2024-02-01) must be after start (2024-03-01); end is exclusive');
    rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'day', start: '2024-03-01', end: '2024-03-01' }), 'invalid_date', 'partitions.end');
    const own = rejects({ name: 'x', nodes: [{ id: 'a', transform: 'noop', partitions: { grain: 'day', start: '2024-03-04', end: '2024-03-01' } }] }, 'invalid_date', 'nodes[0].partitions.end');
    expect(own.message).toBe('nodes[0].partitions.end: (2024-03-01) must be after start (2024-03-04); end is exclusive');
    const mixed = rejects(minimal([{ id: 'a', transform: 'noop', partitions: { end: '2024-02-01' } }], { grain: 'day', start: '2024-03-01', end: '2024-04-01' }), 'invalid_date', 'nodes[0].partitions.end');
    expect(mixed.message).toBe('nodes[0].partitions.end: (2024-02-01) must be after start (2024-03-01 at partitions.start); end is exclusive');
  });

  it('a missing start or end, named where it would be written', () => {
    const noStart = rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'day', end: '2024-03-01' }), 'invalid_date', 'partitions.start');
    expect(noStart.message).toMatch(/is required/);
    rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'day', start: '2024-03-01' }), 'invalid_date', 'partitions.end');
    rejects({ name: 'x', nodes: [{ id: 'a', transform: 'noop', partitions: { grain: 'day', start: '2024-03-01' } }] }, 'invalid_date', 'nodes[0].partitions.end');
    rejects(minimal([{ id: 'a', transform: 'noop', partitions: { grain: 'day' } }], { start: '2024-03-01' }), 'invalid_date', 'nodes[0].partitions.end');
  });

  it('a missing grain', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'noop' }], { start: '2024-01-01', end: '2024-02-01' }), 'invalid_spec', 'partitions.grain');
    expect(error.message).toContain('hour|day|week|month');
  });

  it('a grain that does not exist', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'year', start: '2024-01-01', end: '2025-01-01' }), 'invalid_spec', 'partitions.grain');
    expect(error.message).toContain('hour, day, week, month');
  });

  it('identity between day and week', () => {
    const error = rejects(
      minimal([
        { id: 'days', transform: 'noop' },
        { id: 'weeks', transform: 'noop', partitions: { grain: 'week' }, dependsOn: [{ node: 'days', mapping: 'identity' }] },
      ]),
      'mapping_mismatch',
      'nodes[1].dependsOn[0].mapping',
    );
    expect(error.message).toContain('this node is week, days is day');
    expect(error.message).toContain("use mapping 'window'");
  });

  it('identity between static keys and time partitions', () => {
    const error = rejects(
      minimal([
        { id: 'dims', transform: 'noop', partitions: { keys: ['a'] } },
        { id: 'facts', transform: 'noop', dependsOn: [{ node: 'dims', mapping: 'identity' }] },
      ]),
      'mapping_mismatch',
      'nodes[1].dependsOn[0].mapping',
    );
    expect(error.message).toContain("use mapping 'all'");
  });

  it('window between week and month, explicit or defaulted', () => {
    const explicit = rejects(
      minimal([
        { id: 'weeks', transform: 'noop', partitions: { grain: 'week' } },
        { id: 'months', transform: 'noop', partitions: { grain: 'month' }, dependsOn: [{ node: 'weeks', mapping: 'window' }] },
      ]),
      'mapping_mismatch',
      'nodes[1].dependsOn[0].mapping',
    );
    expect(explicit.message).toMatch(/nest/);
    expect(explicit.message).toContain("mapping 'all'");
    rejects(
      minimal([
        { id: 'months', transform: 'noop', partitions: { grain: 'month' } },
        { id: 'weeks', transform: 'noop', partitions: { grain: 'week' }, dependsOn: ['months'] },
      ]),
      'mapping_mismatch',
      'nodes[1].dependsOn[0].mapping',
    );
  });

  it('lag on week and month does not fit either', () => {
    rejects(
      minimal([
        { id: 'weeks', transform: 'noop', partitions: { grain: 'week' } },
        { id: 'months', transform: 'noop', partitions: { grain: 'month' }, dependsOn: [{ node: 'weeks', mapping: { lag: { from: -1, to: 0 } } }] },
      ]),
      'mapping_mismatch',
      'nodes[1].dependsOn[0].mapping',
    );
  });

  it('lag or window on static keys', () => {
    const lag = rejects(
      minimal(
        [
          { id: 'a', transform: 'noop' },
          { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', mapping: { lag: { from: -1, to: 0 } } }] },
        ],
        { keys: ['x', 'y'] },
      ),
      'mapping_mismatch',
      'nodes[1].dependsOn[0].mapping',
    );
    expect(lag.message).toContain('time partitions');
    rejects(
      minimal(
        [
          { id: 'a', transform: 'noop' },
          { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', mapping: 'window' }] },
        ],
        { keys: ['x', 'y'] },
      ),
      'mapping_mismatch',
      'nodes[1].dependsOn[0].mapping',
    );
  });

  it('a lag whose from is after its to', () => {
    const error = rejects(
      minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', mapping: { lag: { from: 1, to: -1 } } }] },
      ]),
      'invalid_spec',
      'nodes[1].dependsOn[0].mapping.lag',
    );
    expect(error.message).toContain('from <= to');
  });

  it('a mapping that does not exist', () => {
    const error = rejects(
      minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', mapping: 'same' }] },
      ]),
      'invalid_spec',
      'nodes[1].dependsOn[0].mapping',
    );
    expect(error.message).toContain("'identity', 'window', 'all'");
  });

  it('a dependency listed twice', () => {
    rejects(
      minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: ['a', { node: 'a', mapping: 'all' }] },
      ]),
      'invalid_spec',
      'nodes[1].dependsOn[1]',
    );
  });

  it('duplicate node ids', () => {
    const error = rejects(
      minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop' },
        { id: 'a', transform: 'noop' },
      ]),
      'invalid_spec',
      'nodes[2].id',
    );
    expect(error.message).toContain('also nodes[0]');
    expect(error.message).toContain('unique');
  });

  it('bad node ids', () => {
    for (const id of ['Bad', '1abc', 'has-dash', 'has space', '', '_x']) {
      const error = rejects(minimal([{ id, transform: 'noop' }]), 'invalid_spec', 'nodes[0].id');
      expect(error.message).toContain('lowercase');
    }
  });

  it('node ids that collide with internal or database names', () => {
    const cases: Array<[string, RegExp]> = [
      ['backfill_ledger', /starts with 'backfill_', which is reserved .*: rename the node/],
      ['backfill_partitions', /starts with 'backfill_'/],
      ['sqlite_master', /starts with 'sqlite_', which is reserved/],
      ['pg_class', /starts with 'pg_', which is reserved/],
      ['orders__versions', /contains '__', which is reserved for backfill's internal tables \(such as <node>__versions\): rename the node/],
      ['a__b', /contains '__'/],
      ['rollback', /is reserved: a backfill's rollback workflow is backfill\/<id>\/rollback.*rename the node/],
    ];
    for (const [id, message] of cases) {
      const error = rejects(minimal([{ id: 'fine', transform: 'noop' }, { id, transform: 'noop' }]), 'invalid_spec', 'nodes[1].id');
      expect(error.message, id).toMatch(message);
    }
    // Only the prefixes are reserved: the same words elsewhere in an id are fine.
    for (const id of ['my_backfill_ledger', 'orders_pg_', 'last_sqlite_copy', 'a_b_c', 'rollbacks', 'rollback_daily']) {
      expect(() => resolveSpec(minimal([{ id, transform: 'noop' }])), id).not.toThrow();
    }
  });

  it('node ids longer than 53 characters (PostgreSQL names are 63 bytes, and __versions is appended)', () => {
    expect(() => resolveSpec(minimal([{ id: 'a'.repeat(53), transform: 'noop' }]))).not.toThrow();
    for (const id of ['a'.repeat(54), 'a'.repeat(64), `x${'_y'.repeat(40)}`]) {
      const error = rejects(minimal([{ id, transform: 'noop' }]), 'invalid_spec', 'nodes[0].id');
      expect(error.message).toContain(`is ${id.length} characters long: at most 53`);
    }
  });

  it('an unknown field with the known one it is likely a typo of', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'noop' }, { id: 'b', transform: 'noop', dependOn: ['a'] }]), 'invalid_spec', 'nodes[1]');
    expect(error.message).toBe("nodes[1]: has unknown field(s) 'dependOn' (did you mean 'dependsOn'?)");
    const two = rejects(minimal([{ id: 'a', transform: 'noop', paramz: {}, colour: 'red' }]), 'invalid_spec', 'nodes[0]');
    expect(two.message).toBe("nodes[0]: has unknown field(s) 'paramz' (did you mean 'params'?), 'colour'");
    const check = rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'row_count', mn: 1 }] }]), 'invalid_spec', 'nodes[0].checks[0]');
    expect(check.message).toMatch(/'mn' \(did you mean '(min|max)'\?\)/);
  });

  it('a missing field beside an unknown one, which is likely it under another name (it said only "is required")', () => {
    const label = rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'sql', label: 'complete day', sql: 'SELECT 1 FROM {{this}}' }] }]), 'invalid_spec', 'nodes[0].checks[0].name');
    expect(label.message).toBe("nodes[0].checks[0].name: is required; 'label' is no field here: is it meant as name?");
    const two = rejects(minimal([{ ident: 'a', tag: 'x', transform: 'noop' }]), 'invalid_spec', 'nodes[0].id');
    expect(two.message).toBe("nodes[0].id: is required; 'ident', 'tag' are no fields here: is one of them meant as id?");
    // Without an unknown field beside it, or with one elsewhere, it stays as it was.
    const alone = rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'sql', sql: 'SELECT 1 FROM {{this}}' }] }]), 'invalid_spec', 'nodes[0].checks[0].name');
    expect(alone.message).toBe('nodes[0].checks[0].name: is required');
  });

  it("an empty sql or transform says what to write (it said zod's 'Too small: expected string to have >=1 characters')", () => {
    expect(rejects(minimal([{ id: 'a', sql: '' }]), 'invalid_spec', 'nodes[0].sql').message).toBe("nodes[0].sql: is empty: write the node's query, e.g. SELECT * FROM <upstream> WHERE ...");
    expect(rejects(minimal([{ id: 'a', transform: '' }]), 'invalid_spec', 'nodes[0].transform').message).toMatch(/^nodes\[0\]\.transform: is empty: name a registered transform/);
    const check = rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'sql', name: 'x', sql: '' }] }]), 'invalid_spec', 'nodes[0].checks[0].sql');
    expect(check.message).toMatch(/^nodes\[0\]\.checks\[0\]\.sql: is empty: write the query that returns the rows violating the check/);
  });

  it("an empty task queue, an empty list of check columns and a negative row count say what to write, not zod's 'Too small'", () => {
    expect(rejects(minimal([{ id: 'a', transform: 'noop', taskQueue: '' }]), 'invalid_spec', 'nodes[0].taskQueue').message).toMatch(/^nodes\[0\]\.taskQueue: is empty: name the task queue/);
    expect(rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'unique', columns: [] }] }]), 'invalid_spec', 'nodes[0].checks[0].columns').message).toBe(
      'nodes[0].checks[0].columns: is empty: name the columns to check, e.g. columns: [order_id]',
    );
    expect(rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'row_count', min: -1 }] }]), 'invalid_spec', 'nodes[0].checks[0].min').message).toBe(
      'nodes[0].checks[0].min: must be a whole number of rows, 0 or more',
    );
  });

  it("a check's type that is a typo of one, with the type meant", () => {
    const uniq = rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'uniq', columns: ['id'] }] }]), 'invalid_spec', 'nodes[0].checks[0].type');
    expect(uniq.message).toBe("nodes[0].checks[0].type: must have type 'row_count', 'not_null', 'unique', 'sql' or 'drift' (did you mean 'unique'?)");
    const far = rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'freshness' }] }]), 'invalid_spec', 'nodes[0].checks[0].type');
    expect(far.message).toBe("nodes[0].checks[0].type: must have type 'row_count', 'not_null', 'unique', 'sql' or 'drift'");
  });

  it('unknown fields, at every level', () => {
    const top = rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), colour: 'red' }, 'invalid_spec', 'spec');
    expect(top.message).toBe("spec: has unknown field(s) 'colour'");
    const inNode = rejects(minimal([{ id: 'a', transform: 'noop', dependson: ['b'] }]), 'invalid_spec', 'nodes[0]');
    expect(inNode.message).toContain("unknown field(s) 'dependson'");
    const inPartitions = rejects(minimal([{ id: 'a', transform: 'noop' }], { grain: 'day', start: '2024-01-01', end: '2024-02-01', step: 2 }), 'invalid_spec', 'partitions');
    expect(inPartitions.message).toContain("'step'");
    const inDefaults = rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { concurency: 3 } }, 'invalid_spec', 'defaults');
    expect(inDefaults.message).toBe("defaults: has unknown field(s) 'concurency' (did you mean 'concurrency'?)");
    rejects(minimal([{ id: 'a', transform: 'noop', retry: { attempts: 3 } }]), 'invalid_spec', 'nodes[0].retry');
    rejects(
      minimal([
        { id: 'a', transform: 'noop' },
        { id: 'b', transform: 'noop', dependsOn: [{ node: 'a', map: 'all' }] },
      ]),
      'invalid_spec',
      'nodes[1].dependsOn[0]',
    );
  });

  it('a sql transform without sql', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'sql' }]), 'invalid_spec', 'nodes[0].sql');
    expect(error.message).toContain('SELECT');
  });

  it('a node with neither transform nor sql', () => {
    const error = rejects(minimal([{ id: 'a' }]), 'invalid_spec', 'nodes[0].transform');
    expect(error.message).toContain("'sql'");
  });

  it('a missing name and an empty node list', () => {
    rejects({ partitions: { grain: 'day', start: '2024-01-01', end: '2024-02-01' }, nodes: [{ id: 'a', transform: 'noop' }] }, 'invalid_spec', 'name');
    rejects({ name: '', nodes: [{ id: 'a', transform: 'noop' }] }, 'invalid_spec', 'name');
    const error = rejects({ name: 'x', nodes: [] }, 'invalid_spec', 'nodes');
    expect(error.message).toContain('at least one node');
  });

  it('a value of the wrong type says what type it must be, not that it is missing', () => {
    const name = rejects({ name: 5, nodes: [{ id: 'a', transform: 'noop' }] }, 'invalid_spec', 'name');
    expect(name.message).toBe("name: must be text naming the backfill, e.g. name: daily-revenue (quote a name of digits: name: '5')");
    const concurrency = rejects(minimal([{ id: 'a', transform: 'noop', concurrency: 'four' }]), 'invalid_spec', 'nodes[0].concurrency');
    expect(concurrency.message).toBe('nodes[0].concurrency: must be a whole number from 1 to 1000');
    const nodes = rejects({ name: 'x', nodes: {} }, 'invalid_spec', 'nodes');
    expect(nodes.message).toBe('nodes: must be a list of nodes, e.g. nodes: [{ id: orders, transform: noop }]');
    const missing = rejects({ name: 'x' }, 'invalid_spec', 'nodes');
    expect(missing.message).toBe('nodes: is required');
  });

  it('a value of the wrong type says, in plain words, what to write, with an example', () => {
    const node = (fields: Record<string, unknown>) => minimal([{ id: 'a', transform: 'noop' }, { id: 'b', transform: 'noop', ...fields }]);
    const cases: Array<[string, unknown, string]> = [
      ['an empty spec file', null, `spec: is empty: write the backfill's name, partitions and nodes, e.g. ${SPEC_EXAMPLE}`],
      ['a list for a spec', ['a'], `spec: must be a mapping of the backfill's fields, not a list: write its name, partitions and nodes, e.g. ${SPEC_EXAMPLE}`],
      ['a number for a name', { ...minimal([{ id: 'a', transform: 'noop' }]), name: 123 }, "name: must be text naming the backfill, e.g. name: daily-revenue (quote a name of digits: name: '123')"],
      ['one module path for transforms', { ...minimal([{ id: 'a', transform: 'noop' }]), transforms: './t.ts' }, 'transforms: must be a list of module paths, e.g. transforms: [./t.ts]'],
      ['one node id for dependsOn', node({ dependsOn: 'a' }), 'nodes[1].dependsOn: must be a list of node ids, e.g. dependsOn: [a]'],
      ['a list for params', minimal([{ id: 'a', transform: 'noop', params: [1] }]), 'nodes[0].params: must be a mapping of names to values, e.g. params: { region: eu }'],
      ['a timeout without a unit', node({ timeout: 10 }), 'nodes[1].timeout: (10) has no unit: write a number and a unit, e.g. 10s or 10m (from 1s to 7d)'],
      ['a defaults timeout of another type', { ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { timeout: ['10m'] } }, 'defaults.timeout: is not a duration: write a number and a unit, e.g. 500ms, 30s, 10m, 2h (from 1s to 7d)'],
      ['a number for defaults', { ...minimal([{ id: 'a', transform: 'noop' }]), defaults: 5 }, 'defaults: must be a mapping of settings every node inherits, e.g. defaults: { concurrency: 4, timeout: 10m }'],
      ['a number for a node id', minimal([{ id: 5, transform: 'noop' }]), 'nodes[0].id: must be a name starting with a lowercase letter, e.g. id: orders'],
      ['a text for a node', minimal(['a']), 'nodes[0]: must be a node, a mapping such as { id: orders, transform: noop }'],
      ['a retry of another type on defaults', { ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { retry: 3 } }, 'defaults.retry: must be a mapping of retry settings, e.g. retry: { maxAttempts: 5 }'],
      // Other fields: the type in plain words, with the example the value written gives.
      ['one column for not_null', minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'not_null', columns: 'day' }] }]), 'nodes[0].checks[0].columns: must be a list, e.g. columns: [day]'],
      ['a number for a check name', minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'not_null', name: 7, columns: ['day'] }] }]), "nodes[0].checks[0].name: must be text, e.g. name: '7'"],
    ];
    for (const [what, document, message] of cases) expect(rejects(document, 'invalid_spec', /./).message, what).toBe(message);
  });

  it("the empty spec's example is a spec", () => {
    expect(resolveSpec(parse(SPEC_EXAMPLE)).nodes.map((n) => n.id)).toEqual(['orders']);
  });

  it('out-of-range settings', () => {
    rejects(minimal([{ id: 'a', transform: 'noop', concurrency: 0 }]), 'invalid_spec', 'nodes[0].concurrency');
    rejects(minimal([{ id: 'a', transform: 'noop', concurrency: 1001 }]), 'invalid_spec', 'nodes[0].concurrency');
    rejects(minimal([{ id: 'a', transform: 'noop', concurrency: 1.5 }]), 'invalid_spec', 'nodes[0].concurrency');
    rejects(minimal([{ id: 'a', transform: 'noop', rate: 0 }]), 'invalid_spec', 'nodes[0].rate');
    rejects(minimal([{ id: 'a', transform: 'noop', rate: -1 }]), 'invalid_spec', 'nodes[0].rate');
    rejects(minimal([{ id: 'a', transform: 'noop', batchSize: 0 }]), 'invalid_spec', 'nodes[0].batchSize');
    expect(rejects(minimal([{ id: 'a', transform: 'noop', batchSize: 'big' }]), 'invalid_spec', 'nodes[0].batchSize').message).toBe(
      "nodes[0].batchSize: must be 'auto' or a whole number from 1 to 1000",
    );
    rejects(minimal([{ id: 'a', transform: 'noop', batchTarget: '10ms' }]), 'invalid_spec', 'nodes[0].batchTarget');
    rejects(minimal([{ id: 'a', transform: 'noop', batchTarget: '2h' }]), 'invalid_spec', 'nodes[0].batchTarget');
    expect(rejects(minimal([{ id: 'a', transform: 'noop', pace: { latencyTarget: 'fast' } }]), 'invalid_spec', 'nodes[0].pace.latencyTarget').message).toMatch(/500ms/);
    rejects(minimal([{ id: 'a', transform: 'noop', pace: { latencyTarget: '1ms' } }]), 'invalid_spec', 'nodes[0].pace.latencyTarget');
    rejects(minimal([{ id: 'a', transform: 'noop', pace: { latency: '500ms' } }]), 'invalid_spec', 'nodes[0].pace');
    // A pace without its target paced nothing, silently.
    expect(rejects(minimal([{ id: 'a', transform: 'noop', pace: {} }]), 'invalid_spec', 'nodes[0].pace').message).toMatch(/has no latencyTarget, so it would pace nothing: write pace: \{ latencyTarget: 500ms \}/);
    rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { pace: {} } }, 'invalid_spec', 'defaults.pace');
    rejects(minimal([{ id: 'a', transform: 'noop', retry: { maxAttempts: 0 } }]), 'invalid_spec', 'nodes[0].retry.maxAttempts');
    const timeout = rejects(minimal([{ id: 'a', transform: 'noop', timeout: '10 minutes' }]), 'invalid_spec', 'nodes[0].timeout');
    expect(timeout.message).toContain('30s');
    rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { retry: { initialInterval: 'soon' } } }, 'invalid_spec', 'defaults.retry.initialInterval');
  });

  it('a rate slower than one partition a day is refused wherever a spec writes one, and one a day is taken', () => {
    const slow = 1 / 86_400 / 2;
    const message = /is slower than one partition a day \(0\.0000116\/s\), the slowest a backfill takes: raise it, or hold partitions back with a run window/;
    expect(rejects(minimal([{ id: 'a', transform: 'noop', rate: slow }]), 'invalid_spec', 'nodes[0].rate').message).toMatch(message);
    rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { rate: 1e-9 } }, 'invalid_spec', 'defaults.rate');
    rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), rate: 1e-9 }, 'invalid_spec', 'rate');
    const windows = (allow: unknown, outside: unknown = 'pause') => ({ ...minimal([{ id: 'a', transform: 'noop' }]), windows: { allow, outside } });
    rejects(windows([{ from: '22:00', to: '06:00' }, { from: '12:00', to: '13:00', rate: slow }]), 'invalid_spec', 'windows.allow[1].rate');
    rejects(windows([{ from: '22:00', to: '06:00' }], { rate: slow }), 'invalid_spec', 'windows.outside.rate');
    const daily = resolveSpec({ ...windows([{ from: '22:00', to: '06:00', rate: 1 / 86_400 }], { rate: 1 / 86_400 }), rate: 1 / 86_400, defaults: { rate: 1 / 86_400 } });
    expect(daily.rate).toBe(1 / 86_400);
    expect(daily.nodes[0]!.rate).toBe(1 / 86_400);
  });

  it('a batchTarget that sizes no batch (batchSize is a number) is refused, naming where the number comes from', () => {
    const node = (fields: Record<string, unknown>) => ({ id: 'a', transform: 'noop', ...fields });
    expect(rejects(minimal([node({ batchSize: 5, batchTarget: '3s' })]), 'invalid_spec', 'nodes[0].batchTarget').message).toBe(
      "nodes[0].batchTarget: (3s) sizes only batchSize: auto, and this node's batchSize is 5: remove batchTarget, or set batchSize: auto",
    );
    expect(rejects({ ...minimal([node({ batchTarget: '3s' })]), defaults: { batchSize: 5 } }, 'invalid_spec', 'nodes[0].batchTarget').message).toMatch(/batchSize is 5 \(from defaults\)/);
    // The defaults' target sizes nothing when every node that takes it runs a number.
    rejects({ ...minimal([node({ batchSize: 5 }), node({ id: 'b', batchSize: 'auto', batchTarget: '1s' })]), defaults: { batchTarget: '3s' } }, 'invalid_spec', 'defaults.batchTarget');
    // Taken: a node's own target with auto; the defaults' target when one node runs auto with it.
    expect(resolveSpec(minimal([node({ batchSize: 'auto', batchTarget: '3s' })])).nodes[0]!.batchTarget).toBe('3s');
    const mixed = resolveSpec({ ...minimal([node({ batchSize: 5 }), node({ id: 'b' })]), defaults: { batchTarget: '3s' } });
    expect(mixed.nodes.map((n) => [n.batchSize, n.batchTarget])).toEqual([[5, '3s'], ['auto', '3s']]);
  });

  it('durations and retry settings have bounds: the error names the field, the bounds and an example', () => {
    const node = (fields: Record<string, unknown>) => minimal([{ id: 'a', transform: 'noop', ...fields }]);
    // A timeout of 0 makes the server refuse every activity: the node would wedge for ever.
    expect(rejects(node({ timeout: '0s' }), 'invalid_spec', 'nodes[0].timeout').message).toBe('nodes[0].timeout: must be from 1s to 7d (got 0s), e.g. 10m');
    rejects(node({ timeout: '30d' }), 'invalid_spec', 'nodes[0].timeout');
    expect(rejects(node({ heartbeatTimeout: '0ms' }), 'invalid_spec', 'nodes[0].heartbeatTimeout').message).toMatch(/from 1s to 1d/);
    rejects(node({ heartbeatTimeout: '400d' }), 'invalid_spec', 'nodes[0].heartbeatTimeout');
    rejects(node({ retry: { initialInterval: '0s' } }), 'invalid_spec', 'nodes[0].retry.initialInterval');
    rejects(node({ retry: { maximumInterval: '0ms' } }), 'invalid_spec', 'nodes[0].retry.maximumInterval');
    rejects(node({ retry: { maximumInterval: '2d' } }), 'invalid_spec', 'nodes[0].retry.maximumInterval');
    rejects(node({ retry: { backoffCoefficient: 0.5 } }), 'invalid_spec', 'nodes[0].retry.backoffCoefficient');
    rejects(node({ retry: { maxAttempts: 101 } }), 'invalid_spec', 'nodes[0].retry.maxAttempts');
    rejects(node({ retry: { maxThrottles: -1 } }), 'invalid_spec', 'nodes[0].retry.maxThrottles');
    // Temporal's SDK parses a duration as written: space around it made every partition of the node fail unrun.
    for (const text of [' 30s', '30s ', '30\ts']) {
      expect(rejects(node({ heartbeatTimeout: text }), 'invalid_spec', 'nodes[0].heartbeatTimeout').message, JSON.stringify(text)).toMatch(/is not a duration/);
      rejects(node({ retry: { initialInterval: text } }), 'invalid_spec', 'nodes[0].retry.initialInterval');
    }
    expect(resolveSpec(node({ heartbeatTimeout: '30 s' })).nodes[0]!.heartbeatTimeout).toBe('30 s');
    expect(rejects(node({ taskQueue: '/_sys/backfill' }), 'invalid_spec', 'nodes[0].taskQueue').message).toMatch(/starts with \/_sys\/, which Temporal reserves/);
    // The SDK refuses to poll a queue under __temporal_: the node's partitions would never run.
    expect(rejects(node({ taskQueue: '__temporal_warehouse' }), 'invalid_spec', 'nodes[0].taskQueue').message).toBe(
      "nodes[0].taskQueue: starts with __temporal_, which Temporal reserves for its own task queues: choose a name without that prefix",
    );
    expect(rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { taskQueue: '__temporal_x' } }, 'invalid_spec', 'defaults.taskQueue').message).toMatch(/reserves for its own task queues/);
    expect(resolveSpec(node({ taskQueue: 'team__temporal_x' })).nodes[0]!.taskQueue).toBe('team__temporal_x');
    rejects(node({ taskQueue: 'q'.repeat(1001) }), 'invalid_spec', 'nodes[0].taskQueue');
    // A row_count check no count can pass fails every partition after computing it.
    expect(rejects(node({ checks: [{ type: 'row_count', min: 10, max: 5 }] }), 'invalid_spec', 'nodes[0].checks[0].max').message).toMatch(/min is above max/);
    expect(resolveSpec(node({ checks: [{ type: 'row_count', min: 5, max: 5 }] })).nodes[0]!.checks).toEqual([expect.objectContaining({ min: 5, max: 5 })]);
    rejects(node({ burst: 0 }), 'invalid_spec', 'nodes[0].burst');
    rejects(node({ burst: 1e9 }), 'invalid_spec', 'nodes[0].burst');
    rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { timeout: '0s' } }, 'invalid_spec', 'defaults.timeout');
  });

  it('settings that disagree are refused where they were written: on the node, or in defaults', () => {
    const inverted = rejects(minimal([{ id: 'a', transform: 'noop', retry: { initialInterval: '5m' } }]), 'invalid_spec', 'nodes[0].retry.initialInterval');
    expect(inverted.message).toBe('nodes[0].retry.initialInterval: (5m) is above retry.maximumInterval (1m): lower initialInterval or raise maximumInterval');
    rejects(
      { ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { retry: { initialInterval: '2m', maximumInterval: '1m' } } },
      'invalid_spec',
      'defaults.retry.initialInterval',
    );
    const heartbeat = rejects(minimal([{ id: 'a', transform: 'noop', timeout: '10s', heartbeatTimeout: '1m' }]), 'invalid_spec', 'nodes[0].heartbeatTimeout');
    expect(heartbeat.message).toMatch(/longer than timeout \(10s\), so it could never fire: lower heartbeatTimeout or raise timeout/);
    rejects({ ...minimal([{ id: 'a', transform: 'noop' }]), defaults: { timeout: '5s' } }, 'invalid_spec', 'defaults.heartbeatTimeout');
    // Within bounds and in order: accepted.
    const ok = resolveSpec(minimal([{ id: 'a', transform: 'noop', timeout: '1s', heartbeatTimeout: '1s', retry: { initialInterval: '100ms', maximumInterval: '100ms' } }]));
    expect(ok.nodes[0]).toMatchObject({ timeout: '1s', heartbeatTimeout: '1s' });
  });

  it('bad static keys', () => {
    rejects(minimal([{ id: 'a', transform: 'noop' }], { keys: [] }), 'invalid_spec', 'partitions.keys');
    const dup = rejects(minimal([{ id: 'a', transform: 'noop' }], { keys: ['eu', 'eu'] }), 'invalid_spec', 'partitions.keys');
    expect(dup.message).toContain('unique');
    rejects(minimal([{ id: 'a', transform: 'noop' }], { keys: ['ok', 'not ok'] }), 'invalid_spec', 'partitions.keys[1]');
  });

  it('time bounds on a node whose spec partitions are static keys', () => {
    const error = rejects(
      minimal([{ id: 'a', transform: 'noop', partitions: { grain: 'day' } }], { keys: ['eu'] }),
      'invalid_spec',
      'nodes[0].partitions',
    );
    expect(error.message).toContain('static keys');
  });

  it('a bad check and a bad dependency entry', () => {
    rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'vibes' }] }]), 'invalid_spec', 'nodes[0].checks[0].type');
    rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'not_null', columns: [] }] }]), 'invalid_spec', 'nodes[0].checks[0].columns');
    const empty = rejects(minimal([{ id: 'a', transform: 'noop', checks: [{ type: 'unique', columns: ['day', ''] }] }]), 'invalid_spec', 'nodes[0].checks[0].columns[1]');
    expect(empty.message).toBe("nodes[0].checks[0].columns[1]: is an empty column name: name a column of the node's output, e.g. columns: [order_id]");
    rejects(minimal([{ id: 'a', transform: 'noop', dependsOn: [42] }]), 'invalid_spec', 'nodes[0].dependsOn[0]');
  });

  it('a check severity other than error or warn, and a drift check without its metric or threshold', () => {
    const bad = (check: unknown, path: string, text: RegExp) =>
      expect(rejects(minimal([{ id: 'a', transform: 'noop', checks: [check] }]), 'invalid_spec', path).message).toMatch(text);
    bad({ type: 'row_count', min: 1, severity: 'fatal' }, 'nodes[0].checks[0].severity', /'error'.*'warn'/);
    bad({ type: 'drift', maxChangePercent: 10 }, 'nodes[0].checks[0].metric', /must be 'row_count' or/);
    bad({ type: 'drift', metric: 'mean', maxChangePercent: 10 }, 'nodes[0].checks[0].metric', /'row_count' or \{ sum: <column> \}/);
    bad({ type: 'drift', metric: { sum: 'amount' } }, 'nodes[0].checks[0].maxChangePercent', /required/);
    bad({ type: 'drift', metric: 'row_count', maxChangePercent: -5 }, 'nodes[0].checks[0].maxChangePercent', /0 or more/);
    bad({ type: 'drift', metric: 'row_count', maxChangePercent: 5, columns: ['x'] }, 'nodes[0].checks[0]', /unknown field.*'columns'/);
  });

  it('a document that is not an object', () => {
    for (const doc of [null, 'name: x', 42, []]) {
      expect(() => resolveSpec(doc)).toThrow(BackfillError);
    }
  });

  it('errors serialise to the --json shape', () => {
    const error = rejects(minimal([{ id: 'a', transform: 'noop', dependsOn: ['b'] }]), 'unknown_node', 'nodes[0].dependsOn[0]');
    expect(error.toJSON()).toEqual({ code: 'unknown_node', message: error.message, path: 'nodes[0].dependsOn[0]' });
  });
});

describe('resolveSpec: key columns', () => {
  it('keeps a node\'s key columns, and leaves them out of a node without', () => {
    const spec = resolveSpec(minimal([{ id: 'orders', transform: 'noop', key: ['order_id', 'line'] }, { id: 'plain', transform: 'noop' }]));
    expect(node(spec, 'orders').key).toEqual(['order_id', 'line']);
    expect('key' in node(spec, 'plain')).toBe(false);
  });

  const refused: Array<[string, unknown, string, RegExp]> = [
    ['an empty list', [], 'nodes[0].key', /needs at least one column: list the columns that identify a row .* or leave key out to compare whole rows/],
    ['a column listed twice', ['id', 'day', 'id'], 'nodes[0].key[2]', /'id' is listed twice \(also key\[0\]\): list each key column once/],
    ['an empty column name', ['id', ''], 'nodes[0].key[1]', /is an empty column name/],
    ['a column of backfill\'s own', ['__partition'], 'nodes[0].key[0]', /starts with __: .*name a column of the dataset/],
    ['one name, not a list', 'id', 'nodes[0].key', /must be a list of column names/],
    ['a number for a name', [7], 'nodes[0].key[0]', /must be a column name/],
  ];
  for (const [what, key, path, message] of refused) {
    it(`refuses ${what}, naming the field and the fix`, () => {
      const error = rejects(minimal([{ id: 'orders', transform: 'noop', key }]), 'invalid_spec', path);
      expect(error.message).toMatch(message);
    });
  }
});

describe('parseRange', () => {
  it('parses open and closed ranges', () => {
    expect(parseRange(undefined, undefined)).toEqual({});
    expect(parseRange('2024-01-01', undefined)).toEqual({ from: at('2024-01-01') });
    expect(parseRange(undefined, '2024-02-01')).toEqual({ to: at('2024-02-01') });
    expect(parseRange('2024-01-01T05', '2024-02')).toEqual({ from: at('2024-01-01') + 5 * 3_600_000, to: at('2024-02-01') });
    expect(parseRange('2024-W02', '2024-W03')).toEqual({ from: at('2024-01-08'), to: at('2024-01-15') });
  });

  it('rejects bad dates with the flag that holds them', () => {
    const check = (from: string | undefined, to: string | undefined, path: string, text: RegExp) => {
      let caught: unknown;
      try {
        parseRange(from, to);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(BackfillError);
      const error = caught as BackfillError;
      expect(error.code).toBe('invalid_date');
      expect(error.path).toBe(path);
      expect(error.message).toMatch(text);
    };
    check('2024-02-30', undefined, 'from', /--from '2024-02-30'.*YYYY-MM-DD/);
    check('2024-01-01', 'tomorrow', 'to', /--to 'tomorrow'/);
    check('2024-02-01', '2024-01-01', 'to', /must be after --from.*exclusive/);
    check('2024-02-01', '2024-02-01', 'to', /must be after/);
  });

  it('names every form --from and --to take, and what is wrong with a week key', () => {
    const message = (from: string) => {
      try {
        parseRange(from, undefined);
      } catch (error) {
        return (error as BackfillError).message;
      }
      return 'accepted';
    };
    for (const accepted of ['2024-03-01', '2024-03-01T05', '2024-03-01T05:30:00Z', '2024-03', '2024-W10', '2020-W53']) expect(message(accepted), accepted).toBe('accepted');
    expect(message('tomorrow')).toBe(
      "--from 'tomorrow' is not a valid UTC date: write YYYY-MM-DD, YYYY-MM-DDTHH (minutes and seconds may follow), YYYY-MM (a month) or YYYY-Www (an ISO week, upper-case W), e.g. 2024-03-01, 2024-03-01T05, 2024-03 or 2024-W10",
    );
    expect(message('2024-w10')).toBe("--from '2024-w10' is not a valid UTC date: a week key takes an upper-case W: write 2024-W10");
    expect(message('2024-W53')).toBe("--from '2024-W53' is not a valid UTC date: 2024 has 52 ISO weeks: write a week from 2024-W01 to 2024-W52");
    expect(message('2024-w53')).toMatch(/2024 has 52 ISO weeks/);
    expect(message('2024-W00')).toMatch(/2024 has 52 ISO weeks/);
    expect(message('2024-13')).toMatch(/YYYY-MM \(a month\)/);
  });
});

describe('check severity and drift', () => {
  it('every check defaults to severity error; warn and drift checks resolve as written', () => {
    const spec = resolveSpec(
      minimal([
        {
          id: 'a',
          transform: 'noop',
          checks: [
            { type: 'unique', columns: ['id'] },
            { type: 'sql', name: 'no negatives', sql: 'SELECT * FROM {{this}} WHERE v < 0', severity: 'warn' },
            { type: 'drift', metric: 'row_count', maxChangePercent: 20 },
            { type: 'drift', name: 'revenue', metric: { sum: 'amount' }, maxChangePercent: 5.5, severity: 'warn' },
          ],
        },
      ]),
    );
    expect(spec.nodes[0]!.checks).toEqual([
      { type: 'unique', columns: ['id'], severity: 'error' },
      { type: 'sql', name: 'no negatives', sql: 'SELECT * FROM {{this}} WHERE v < 0', severity: 'warn' },
      { type: 'drift', metric: 'row_count', maxChangePercent: 20, severity: 'error' },
      { type: 'drift', name: 'revenue', metric: { sum: 'amount' }, maxChangePercent: 5.5, severity: 'warn' },
    ]);
  });
});
