/**
 * The backfill spec: one zod schema, the types derived from it, and `resolveSpec`, which
 * validates a parsed document and fills in every default so that the workflows receive a
 * complete, plain-JSON `ResolvedSpec` and never parse anything themselves.
 */
import { z } from 'zod';
import { DEFAULT_BATCH_TARGET } from './batching.ts';
import { closestNames } from './closest.ts';
import { GRAINS, INSTANT_FORMS, formatInstant, grainsFit, instantFix, parseInstant, type Grain } from './calendar.ts';
import { isExactDuration, parseDuration } from './duration.ts';
import { BackfillError, formatPath, type ErrorCode } from './errors.ts';
import { findCycle } from './graph.ts';
import { BackfillConcurrencySchema, NodeConcurrencySchema, RateSchema, SpecRateSchema } from './limits.ts';
import { grainOf, mappingKind } from './mapping.ts';
import { nodeIdProblem } from './names.ts';
import { undeclaredRead } from './sql-reads.ts';
import { unrunnableSql } from './sql-runs.ts';
import { reservedPrefixProblem } from './task-queue.ts';
import { WindowsSchema, type Windows } from './windows.ts';
import { suggestingFields, zodProblem } from './zod-errors.ts';

const STATIC_KEY = /^[A-Za-z0-9][A-Za-z0-9._:=-]{0,127}$/;

const dateText = z.preprocess(
  // A Date (a TypeScript spec, or YAML 1.1 timestamps) becomes `2024-03-01T00:00:00Z`, a form parseInstant reads.
  (v) => (v instanceof Date && !Number.isNaN(v.getTime()) ? formatInstant(v.getTime()) : v),
  z.string().refine((s) => parseInstant(s) !== undefined, {
    message: `is not a valid UTC date: write ${INSTANT_FORMS}`,
  }),
);

/**
 * A duration from `min` to `max` (both written as durations), with why the bounds matter: an
 * activity timeout of 0 makes the server refuse every activity, an interval of 0 retries in a
 * tight loop, and a timeout of years leaves a lost partition unnoticed for as long.
 */
const duration = (min: string, max: string, example: string) => {
  const notDuration = `is not a duration: write a number and a unit, e.g. 500ms, 30s, 10m, 2h (from ${min} to ${max})`;
  return z
    .string({
      // `timeout: 10` arrives as a number: the unit is what is missing. A missing value keeps "is required".
      error: ({ input }) =>
        input === undefined ? undefined : typeof input === 'number' ? `(${input}) has no unit: write a number and a unit, e.g. ${input}s or ${input}m (from ${min} to ${max})` : notDuration,
    })
    .superRefine((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined || !isExactDuration(text)) {
        ctx.addIssue({ code: 'custom', message: notDuration });
      } else if (ms < parseDuration(min)! || ms > parseDuration(max)!) {
        ctx.addIssue({ code: 'custom', message: `must be from ${min} to ${max} (got ${text}), e.g. ${example}` });
      }
    });
};


export const TimePartitionsSchema = z.strictObject({
  grain: z.enum(GRAINS, { message: `must be one of ${GRAINS.join(', ')}` }).optional(),
  start: dateText.optional(),
  end: dateText.optional(),
});

export const StaticPartitionsSchema = z.strictObject({
  keys: z
    .array(z.string().regex(STATIC_KEY, { message: 'must be letters, digits and . _ : = - (at most 128)' }))
    .min(1, { message: 'needs at least one key' })
    .refine((keys) => new Set(keys).size === keys.length, { message: 'has a key twice: keys must be unique' }),
});

export const PartitionsSchema = z.union([StaticPartitionsSchema, TimePartitionsSchema], {
  message: 'must be { grain, start, end } for time partitions or { keys: [...] } for a static set',
});

export const MappingSchema = z.union(
  [
    z.enum(['identity', 'window', 'all']),
    z.strictObject({
      lag: z
        .strictObject({ from: z.number().int(), to: z.number().int() })
        .refine((l) => l.from <= l.to, { message: 'needs from <= to, e.g. { from: -6, to: 0 }' }),
    }),
  ],
  { message: "must be 'identity', 'window', 'all' or { lag: { from, to } }" },
);

export const DependencySchema = z.union(
  [z.string(), z.strictObject({ node: z.string(), mapping: MappingSchema.optional() })],
  { message: 'must be a node id or { node, mapping }' },
);

const retryFields = {
  maxAttempts: z.number().int({ message: 'must be a whole number from 1 to 100' }).min(1, { message: 'must be a whole number from 1 to 100' }).max(100, { message: 'must be a whole number from 1 to 100' }),
  /** Times one partition may be throttled (ThrottledError) before it fails. */
  maxThrottles: z.number().int({ message: 'must be a whole number from 0 to 100000' }).min(0, { message: 'must be a whole number from 0 to 100000' }).max(100_000, { message: 'must be a whole number from 0 to 100000' }),
  /** The wait before the first retry (then multiplied by backoffCoefficient, up to maximumInterval). */
  initialInterval: duration('100ms', '1h', '1s'),
  backoffCoefficient: z.number({ message: 'must be a number from 1 to 10' }).min(1, { message: 'must be a number from 1 to 10' }).max(10, { message: 'must be a number from 1 to 10' }),
  maximumInterval: duration('100ms', '1d', '1m'),
};

export const RetrySchema = z.strictObject({
  maxAttempts: retryFields.maxAttempts.default(3),
  maxThrottles: retryFields.maxThrottles.default(50),
  initialInterval: retryFields.initialInterval.default('1s'),
  backoffCoefficient: retryFields.backoffCoefficient.default(2),
  maximumInterval: retryFields.maximumInterval.default('1m'),
});

/** What a failed check does: `error` blocks publishing the partition, `warn` publishes it and records a warning. */
export const SeveritySchema = z
  .enum(['error', 'warn'], { message: "must be 'error' (a failure blocks publishing) or 'warn' (publish and record a warning)" })
  .default('error');

/** What a drift check compares between the new version and the published one: its row count, or a column's sum. */
export const DriftMetricSchema = z.union([z.literal('row_count'), z.strictObject({ sum: z.string().min(1, { message: 'names the column to sum' }) })], {
  message: "must be 'row_count' or { sum: <column> }",
});

/** The columns a `not_null` or `unique` check looks at: names of the node's output, matched in any case when a partition runs. */
const CheckColumnsSchema = z
  .array(z.string().min(1, { message: "is an empty column name: name a column of the node's output, e.g. columns: [order_id]" }))
  .min(1, { message: "is empty: name the columns to check, e.g. columns: [order_id]" });

const CHECK_TYPES = ['row_count', 'not_null', 'unique', 'sql', 'drift'] as const;

/** ` (did you mean 'unique'?)` for a check whose type is a typo of one. */
function checkTypeHint(check: unknown): string {
  const type = typeof check === 'object' && check !== null ? (check as { type?: unknown }).type : undefined;
  const [near] = typeof type === 'string' ? closestNames(type, CHECK_TYPES, 1) : [];
  return near === undefined ? '' : ` (did you mean '${near}'?)`;
}

export const CheckSchema = z.discriminatedUnion(
  'type',
  [
    z
      .strictObject({
        type: z.literal('row_count'),
        name: z.string().optional(),
        min: z.number().int({ message: 'must be a whole number of rows, 0 or more' }).min(0, { message: 'must be a whole number of rows, 0 or more' }).optional(),
        max: z.number().int({ message: 'must be a whole number of rows, 0 or more' }).min(0, { message: 'must be a whole number of rows, 0 or more' }).optional(),
        severity: SeveritySchema,
      })
      .refine((c) => c.min === undefined || c.max === undefined || c.min <= c.max, {
        message: 'min is above max: no row count passes such a check, so every partition would fail it',
        path: ['max'],
      }),
    z.strictObject({ type: z.literal('not_null'), name: z.string().optional(), columns: CheckColumnsSchema, severity: SeveritySchema }),
    z.strictObject({ type: z.literal('unique'), name: z.string().optional(), columns: CheckColumnsSchema, severity: SeveritySchema }),
    z.strictObject({
      type: z.literal('sql'),
      name: z.string(),
      /** A query over `{{this}}` (the new version of the partition) returning the rows that violate the check; `{{previous}}` is the published version it replaces. */
      sql: z.string().min(1, { message: 'is empty: write the query that returns the rows violating the check, e.g. SELECT * FROM {{this}} WHERE amount < 0' }),
      severity: SeveritySchema,
    }),
    z.strictObject({
      /** The new version against the partition's published version: no published version, nothing to compare, the check passes. */
      type: z.literal('drift'),
      name: z.string().optional(),
      metric: DriftMetricSchema,
      maxChangePercent: z.number().min(0, { message: 'must be a percentage of 0 or more, e.g. 20 for ±20%' }),
      severity: SeveritySchema,
    }),
  ],
  { error: (issue) => `must have type ${CHECK_TYPES.map((t) => `'${t}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')}${checkTypeHint(issue.input)}` },
);

const BATCH_SIZE_MESSAGE = "must be 'auto' or a whole number from 1 to 1000";

const settingFields = {
  concurrency: NodeConcurrencySchema,
  rate: RateSchema,
  burst: z.number().int({ message: 'must be a whole number from 1 to 100000' }).min(1, { message: 'must be a whole number from 1 to 100000' }).max(100_000, { message: 'must be a whole number from 1 to 100000' }).nullable(),
  // As Temporal's server takes a task queue's name: every activity on a name it refuses would fail to schedule.
  taskQueue: z
    .string()
    .min(1, { message: "is empty: name the task queue the node's workers poll, e.g. taskQueue: warehouse-heavy (or leave it out for 'backfill')" })
    .max(1000, { message: 'is longer than the 1,000 characters a Temporal task queue name may have' })
    .superRefine((name, ctx) => {
      const problem = reservedPrefixProblem(name);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    }),
  /** Partitions per activity, or `auto`: as many as the partitions' measured durations fit in `batchTarget` (core/batching.ts). */
  batchSize: z.union(
    [
      z.literal('auto'),
      z.number().int({ message: BATCH_SIZE_MESSAGE }).min(1, { message: BATCH_SIZE_MESSAGE }).max(1000, { message: BATCH_SIZE_MESSAGE }),
    ],
    { message: BATCH_SIZE_MESSAGE },
  ),
  /** With `batchSize: auto`, about how long one activity runs. */
  batchTarget: duration('100ms', '1h', '2s'),
  /** Pacing on measured load: the node slows down when the p95 latency of its partitions goes over `latencyTarget`. */
  pace: z.strictObject({ latencyTarget: duration('10ms', '1h', '500ms').optional() }),
  /** How long one partition may run (an activity of `batchSize` partitions gets that many times as long). */
  timeout: duration('1s', '7d', '10m'),
  /** How long a running partition may go without a heartbeat before its attempt counts as lost. */
  heartbeatTimeout: duration('1s', '1d', '30s'),
};

/** Execution settings a node inherits from `defaults` and may override. */
export const SettingsSchema = z.strictObject({
  concurrency: settingFields.concurrency.default(4),
  rate: settingFields.rate.default(null),
  burst: settingFields.burst.default(null),
  retry: RetrySchema.default(RetrySchema.parse({})),
  taskQueue: settingFields.taskQueue.default('backfill'),
  batchSize: settingFields.batchSize.default('auto'),
  batchTarget: settingFields.batchTarget.default(DEFAULT_BATCH_TARGET),
  pace: settingFields.pace.default({}),
  timeout: settingFields.timeout.default('10m'),
  heartbeatTimeout: settingFields.heartbeatTimeout.default('30s'),
});

/**
 * Settings as `resolveSpec` leaves them, every field present and none filled in: what a resolved
 * node carries in a message. A default here would change a node that came without its settings
 * (made by hand), for example to the default task queue, where no worker of its warehouse listens.
 */
export const ResolvedSettingsSchema = z.strictObject({
  concurrency: settingFields.concurrency,
  rate: settingFields.rate,
  burst: settingFields.burst,
  retry: z.strictObject(retryFields),
  taskQueue: settingFields.taskQueue,
  batchSize: settingFields.batchSize,
  batchTarget: settingFields.batchTarget,
  pace: settingFields.pace,
  timeout: settingFields.timeout,
  heartbeatTimeout: settingFields.heartbeatTimeout,
});

const PartialSettingsSchema = z.strictObject({
  concurrency: settingFields.concurrency.optional(),
  // As written in a spec, with the floor (resolved specs in workflows' histories keep RateSchema's bounds).
  rate: SpecRateSchema.nullable().optional(),
  burst: settingFields.burst.optional(),
  retry: z
    .strictObject({
      maxAttempts: retryFields.maxAttempts.optional(),
      maxThrottles: retryFields.maxThrottles.optional(),
      initialInterval: retryFields.initialInterval.optional(),
      backoffCoefficient: retryFields.backoffCoefficient.optional(),
      maximumInterval: retryFields.maximumInterval.optional(),
    })
    .optional(),
  taskQueue: settingFields.taskQueue.optional(),
  batchSize: settingFields.batchSize.optional(),
  batchTarget: settingFields.batchTarget.optional(),
  // As written in a spec: a pace without its target paces nothing (a resolved node's `{}` is no pace).
  pace: settingFields.pace
    .refine((pace) => pace.latencyTarget !== undefined, { message: 'has no latencyTarget, so it would pace nothing: write pace: { latencyTarget: 500ms } (10ms to 1h), or leave pace out' })
    .optional(),
  timeout: settingFields.timeout.optional(),
  heartbeatTimeout: settingFields.heartbeatTimeout.optional(),
});

const KEY_HINT = 'list the columns that identify a row of a partition, e.g. key: [order_id], or leave key out to compare whole rows';

/**
 * A node's key columns: what identifies a row of one of its partitions. `backfill diff` counts a
 * row whose key is in both versions but whose other columns differ as changed (without a key, as
 * one row removed and one added). Checked against the dataset's columns when it is compared.
 */
export const KeySchema = z
  .array(
    z
      .string({ message: `must be a column name: ${KEY_HINT}` })
      .min(1, { message: `is an empty column name: ${KEY_HINT}` })
      .max(128, { message: 'is longer than 128 characters: name a column of the dataset' })
      .refine((column) => !column.startsWith('__'), { message: "starts with __: names starting with __ belong to backfill's own columns; name a column of the dataset" }),
    { message: `must be a list of column names: ${KEY_HINT}` },
  )
  .min(1, { message: `needs at least one column: ${KEY_HINT}` })
  .max(32, { message: 'lists more than 32 columns: a key needs only the columns that identify a row' })
  .superRefine((columns, ctx) => {
    columns.forEach((column, i) => {
      const first = columns.indexOf(column);
      if (first !== i) ctx.addIssue({ code: 'custom', path: [i], message: `'${column}' is listed twice (also key[${first}]): list each key column once` });
    });
  });

export const NodeSchema = PartialSettingsSchema.extend({
  id: z.string().superRefine((id, ctx) => {
    // The id names a view, a table and a workflow: besides its shape, it must avoid names the warehouse, the databases and backfill keep.
    const problem = nodeIdProblem(id);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  transform: z.string().min(1, { message: "is empty: name a registered transform (sql, noop, sleep, or one of the spec's transforms modules)" }).optional(),
  sql: z.string().min(1, { message: "is empty: write the node's query, e.g. SELECT * FROM <upstream> WHERE ..." }).optional(),
  params: z.record(z.string(), z.unknown()).default({}),
  partitions: PartitionsSchema.optional(),
  dependsOn: z.array(DependencySchema).default([]),
  checks: z.array(CheckSchema).default([]),
  /** Key columns: `diff` compares rows by them (else whole rows). */
  key: KeySchema.optional(),
  /** Take over an existing view named after the node, which backfill did not create (else the node is refused). */
  adopt: z.boolean().optional(),
});

/** `maxRowChange: '5%'`: rows added, removed and changed, in percent of the rows published before. */
const PERCENT = /^(\d{1,6})(\.\d{1,4})?%$/;

/**
 * `canary:` (or `start --canary N`): the backfill first runs `partitions` partitions per node
 * (picked newest, oldest or spread over the range) and everything they need upstream, as staged
 * versions, then waits for `backfill approve` or `backfill discard`; with `auto`, it goes on by
 * itself when every check passed and each dataset's diff is within the bounds.
 */
export const CanarySchema = z.strictObject({
  partitions: z
    .number({ message: 'must be a whole number of partitions per node, e.g. 3' })
    .int({ message: 'must be a whole number of partitions per node, e.g. 3' })
    .min(1, { message: 'must be 1 or more partitions per node' })
    .max(1000, { message: 'must be at most 1000 partitions per node: a canary is a slice, not the backfill' }),
  pick: z.enum(['newest', 'oldest', 'spread'], { message: "must be newest, oldest or spread" }).default('newest'),
  auto: z
    .strictObject({
      maxRowChange: z.string({ message: "must be a percentage such as '5%'" }).regex(PERCENT, { message: "must be a percentage such as '5%' (rows added, removed and changed per dataset, of the rows published before)" }),
    })
    .optional(),
});
export type Canary = z.output<typeof CanarySchema>;
export type CanaryInput = z.input<typeof CanarySchema>;

/** The percentage of `maxRowChange: '5%'` (5). */
export function percentOf(text: string): number {
  return Number(text.slice(0, -1));
}

export const SpecSchema = z.strictObject({
  name: z.string().min(1, { message: 'is required: name the backfill, e.g. name: daily-revenue' }),
  description: z.string().optional(),
  /** Modules (paths relative to the spec) that register the spec's custom transforms. */
  transforms: z.array(z.string()).default([]),
  partitions: PartitionsSchema.optional(),
  defaults: PartialSettingsSchema.default({}),
  /** Backfill-wide limits, shared by all nodes (each node keeps its own limits too). */
  rate: SpecRateSchema.nullable().default(null),
  concurrency: BackfillConcurrencySchema.default(null),
  /** When partitions may start (wall-clock windows in a time zone); the policy's windows apply too. */
  windows: WindowsSchema.superRefine((windows, ctx) => {
    // A spec's window rates take the spec's floor (a policy's windows, and a running backfill's, keep the schema's).
    const floor = (rate: number | undefined, path: PropertyKey[]) => {
      if (rate === undefined) return;
      const parsed = SpecRateSchema.safeParse(rate);
      if (!parsed.success) ctx.addIssue({ code: 'custom', path, message: parsed.error.issues[0]!.message });
    };
    windows.allow.forEach((window, i) => floor(window.rate, ['allow', i, 'rate']));
    if (windows.outside !== 'pause') floor(windows.outside.rate, ['outside', 'rate']);
  }).optional(),
  /** Run a slice first, staged, and wait for an approval (see CanarySchema). */
  canary: CanarySchema.optional(),
  nodes: z.array(NodeSchema).min(1, { message: 'needs at least one node' }),
});

export type SpecInput = z.input<typeof SpecSchema>;
export type Spec = z.output<typeof SpecSchema>;
export type NodeSpec = z.output<typeof NodeSchema>;
export type Mapping = z.output<typeof MappingSchema>;
export type Check = z.output<typeof CheckSchema>;
/** A check as written, `severity` optional: what the warehouse accepts (and what workflows started before severities existed carry). */
export type CheckInput = z.input<typeof CheckSchema>;
export type Severity = z.output<typeof SeveritySchema>;
export type DriftMetric = z.output<typeof DriftMetricSchema>;
export type Settings = z.output<typeof SettingsSchema>;
export type RetrySettings = z.output<typeof RetrySchema>;

/** Partitions of a node after inheritance: a UTC time range of one grain, or a static set of keys. */
export type ResolvedPartitions =
  | { kind: 'time'; grain: Grain; start: number; end: number }
  | { kind: 'static'; keys: string[] };

export type MappingKind = 'identity' | 'window' | 'all' | 'lag';
export type ResolvedDependency = { node: string; mapping: Mapping };

export type ResolvedNode = Settings & {
  id: string;
  transform: string;
  sql?: string;
  params: Record<string, unknown>;
  partitions: ResolvedPartitions;
  dependsOn: ResolvedDependency[];
  checks: Check[];
  /** Key columns: absent, rows are compared whole. */
  key?: NonNullable<NodeSpec['key']>;
  adopt?: boolean;
};

export type ResolvedSpec = {
  name: string;
  description?: string;
  transforms: string[];
  rate: number | null;
  concurrency: number | null;
  /** Run windows: absent when the spec sets none. */
  windows?: Windows;
  /** A canary slice first: absent when the spec sets none. */
  canary?: Canary;
  nodes: ResolvedNode[];
};

function fail(code: ErrorCode, path: ReadonlyArray<PropertyKey>, message: string): never {
  const where = formatPath(path) || 'spec';
  throw new BackfillError(code, `${where}: ${message}`, where);
}

/** A whole spec on one line (YAML's flow style): what an empty or shapeless spec file is shown to write. */
export const SPEC_EXAMPLE = "{ name: daily-revenue, partitions: { grain: day, start: 2024-01-01, end: 2024-02-01 }, nodes: [{ id: orders, sql: 'SELECT 1 AS n' }] }";

/** A value of the wrong type in plain words: `a list` where zod says array. */
function plainType(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'string') return 'text';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'boolean') return 'true or false';
  return `a ${typeof value}`;
}

/**
 * What a field of the spec must be and an example (by its path, indices as `*`), for a value of
 * the wrong type: zod's `must be array` names a type, not what to write. `input` is the value written.
 */
const FIELD_TYPES: Record<string, (input: unknown) => string> = {
  name: (input) => `must be text naming the backfill, e.g. name: daily-revenue${typeof input === 'number' ? ` (quote a name of digits: name: '${input}')` : ''}`,
  description: () => "must be text, e.g. description: 'Daily revenue since 2024'",
  transforms: (input) => `must be a list of module paths, e.g. transforms: [${typeof input === 'string' && input !== '' ? input : './transforms.ts'}]`,
  defaults: () => 'must be a mapping of settings every node inherits, e.g. defaults: { concurrency: 4, timeout: 10m }',
  nodes: () => 'must be a list of nodes, e.g. nodes: [{ id: orders, transform: noop }]',
  'nodes.*': () => 'must be a node, a mapping such as { id: orders, transform: noop }',
  'nodes.*.id': () => 'must be a name starting with a lowercase letter, e.g. id: orders',
  'nodes.*.transform': () => 'must be the name of a registered transform, e.g. transform: noop',
  'nodes.*.sql': () => "must be the text of a SELECT, e.g. sql: 'SELECT 1 AS n'",
  'nodes.*.params': () => 'must be a mapping of names to values, e.g. params: { region: eu }',
  'nodes.*.dependsOn': (input) => `must be a list of node ids, e.g. dependsOn: [${typeof input === 'string' && input !== '' ? input : 'orders'}]`,
  'nodes.*.checks': () => 'must be a list of checks, e.g. checks: [{ type: row_count, min: 1 }]',
  'nodes.*.retry': () => 'must be a mapping of retry settings, e.g. retry: { maxAttempts: 5 }',
  'nodes.*.pace': () => 'must be a mapping, e.g. pace: { latencyTarget: 500ms }',
  'nodes.*.adopt': () => 'must be true or false, e.g. adopt: true',
};

/** The expected type of any other field in plain words, with an example where the value written gives one. */
function plainExpected(expected: string, field: PropertyKey | undefined, input: unknown): string | undefined {
  const scalar = typeof input === 'number' || typeof input === 'boolean' || (typeof input === 'string' && input !== '');
  const example = (value: string) => (typeof field === 'string' ? `, e.g. ${field}: ${value}` : '');
  switch (expected) {
    case 'array':
      return `must be a list${scalar ? example(`[${String(input)}]`) : ''}`;
    case 'string':
      return `must be text${typeof input === 'number' || typeof input === 'boolean' ? example(`'${String(input)}'`) : ''}`;
    case 'number':
      return `must be a number${typeof input === 'string' && Number.isFinite(Number(input)) && input.trim() !== '' ? example(input.trim()) : ''}`;
    case 'boolean':
      return `must be true or false${example('true')}`;
    case 'object':
      return 'must be a mapping of fields';
    case 'record':
      return 'must be a mapping of names to values';
    default:
      return undefined;
  }
}

/**
 * The spec's error map: a value of the wrong type says what to write, with an example (the
 * field's entry in FIELD_TYPES, else the expected type in plain words); an unknown field names
 * the known one it is likely a typo of (`suggestingFields`).
 */
export function specErrors(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code !== 'invalid_type') return suggestingFields(issue);
  const path = issue.path ?? [];
  const input = issue.input;
  if (path.length === 0) {
    return input === null || input === undefined
      ? `is empty: write the backfill's name, partitions and nodes, e.g. ${SPEC_EXAMPLE}`
      : `must be a mapping of the backfill's fields, not ${plainType(input)}: write its name, partitions and nodes, e.g. ${SPEC_EXAMPLE}`;
  }
  if (input === undefined) return undefined;
  // The defaults' settings read as a node's.
  const pattern = path
    .map((key) => (typeof key === 'number' ? '*' : String(key)))
    .join('.')
    .replace(/^defaults\./, 'nodes.*.');
  return FIELD_TYPES[pattern]?.(input) ?? plainExpected(issue.expected, path[path.length - 1], input);
}

function zodFailure(error: z.ZodError): never {
  const { path, message } = zodProblem(error);
  const code: ErrorCode = /date/.test(message) ? 'invalid_date' : 'invalid_spec';
  fail(code, path, message);
}

/** `object` without its undefined entries, so that spreading it never erases a value. */
function defined<T extends object>(object: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(object ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * What is wrong with settings whose fields are each within bounds but disagree with each other
 * (null when nothing): the field to fix, relative to the node, and why.
 */
export function settingsProblem(settings: Settings): { field: string[]; message: string } | null {
  const initial = parseDuration(settings.retry.initialInterval)!;
  const maximum = parseDuration(settings.retry.maximumInterval)!;
  if (initial > maximum) {
    return {
      field: ['retry', 'initialInterval'],
      message: `(${settings.retry.initialInterval}) is above retry.maximumInterval (${settings.retry.maximumInterval}): lower initialInterval or raise maximumInterval`,
    };
  }
  if (parseDuration(settings.heartbeatTimeout)! > parseDuration(settings.timeout)!) {
    return {
      field: ['heartbeatTimeout'],
      message: `(${settings.heartbeatTimeout}) is longer than timeout (${settings.timeout}), so it could never fire: lower heartbeatTimeout or raise timeout`,
    };
  }
  return null;
}

/**
 * A written `batchTarget` that sizes no node's batches (it applies to `batchSize: auto` only): the
 * field and why, or null. The defaults' counts when one node that does not set its own runs auto.
 */
function idleBatchTarget(spec: Spec, nodes: readonly Settings[]): { path: PropertyKey[]; message: string } | null {
  for (const [i, node] of spec.nodes.entries()) {
    const batchSize = nodes[i]!.batchSize;
    if (node.batchTarget !== undefined && batchSize !== 'auto') {
      const where = node.batchSize !== undefined ? '' : ' (from defaults)';
      return { path: ['nodes', i, 'batchTarget'], message: `(${node.batchTarget}) sizes only batchSize: auto, and this node's batchSize is ${batchSize}${where}: remove batchTarget, or set batchSize: auto` };
    }
  }
  const target = spec.defaults.batchTarget;
  if (target !== undefined && !spec.nodes.some((node, i) => node.batchTarget === undefined && nodes[i]!.batchSize === 'auto')) {
    return { path: ['defaults', 'batchTarget'], message: `(${target}) sizes only batchSize: auto, and no node that takes it from defaults has batchSize: auto: remove batchTarget, or set batchSize: auto` };
  }
  return null;
}

function resolveSettings(defaults: Spec['defaults'], node: NodeSpec): Settings {
  const pick = <K extends keyof Spec['defaults']>(key: K) => (node[key] !== undefined ? node[key] : defaults[key]);
  return SettingsSchema.parse({
    concurrency: pick('concurrency'),
    rate: pick('rate'),
    burst: pick('burst'),
    retry: { ...defined(defaults.retry), ...defined(node.retry) },
    taskQueue: pick('taskQueue'),
    batchSize: pick('batchSize'),
    batchTarget: pick('batchTarget'),
    pace: pick('pace'),
    timeout: pick('timeout'),
    heartbeatTimeout: pick('heartbeatTimeout'),
  });
}

function resolvePartitions(spec: Spec, node: NodeSpec, index: number): ResolvedPartitions {
  const own = node.partitions;
  const path = ['nodes', index, 'partitions'];
  if (own && 'keys' in own) return { kind: 'static', keys: own.keys };
  const base = spec.partitions;
  if (base && 'keys' in base) {
    if (own) fail('invalid_spec', path, 'cannot inherit time bounds from a spec whose partitions are static keys');
    return { kind: 'static', keys: base.keys };
  }
  const grain = own?.grain ?? base?.grain;
  const start = own?.start ?? base?.start;
  const end = own?.end ?? base?.end;
  // Name the field where the value was written: on the node, else on the spec's partitions; a missing one where it would be written.
  const at = (field: 'grain' | 'start' | 'end'): PropertyKey[] => {
    const onSpec = own?.[field] === undefined && (base?.[field] !== undefined || (own === undefined && base !== undefined));
    return onSpec ? ['partitions', field] : [...path, field];
  };
  if (!grain) fail('invalid_spec', at('grain'), `is required: set partitions.grain (${GRAINS.join('|')}) on the spec or the node`);
  if (!start) fail('invalid_date', at('start'), 'is required: set partitions.start (e.g. 2024-01-01) on the spec or the node');
  if (!end) fail('invalid_date', at('end'), 'is required: set partitions.end (exclusive, e.g. 2025-01-01) on the spec or the node');
  const startMs = parseInstant(start)!;
  const endMs = parseInstant(end)!;
  if (endMs <= startMs) {
    const startAt = at('start');
    const elsewhere = startAt[0] === at('end')[0] ? '' : ` at ${formatPath(startAt)}`;
    fail('invalid_date', at('end'), `(${end}) must be after start (${start}${elsewhere}); end is exclusive`);
  }
  return { kind: 'time', grain, start: startMs, end: endMs };
}

function checkMapping(
  down: ResolvedPartitions,
  up: ResolvedPartitions,
  mapping: Mapping,
  path: ReadonlyArray<PropertyKey>,
  upId: string,
): void {
  const kind = mappingKind(mapping);
  if (kind === 'all') return;
  const downGrain = grainOf(down);
  const upGrain = grainOf(up);
  const grains = `this node is ${downGrain}, ${upId} is ${upGrain}`;
  if (kind === 'identity') {
    if (downGrain !== upGrain) {
      const fix = downGrain === 'static' || upGrain === 'static' ? "use mapping 'all'" : "use mapping 'window'";
      fail('mapping_mismatch', path, `identity needs equal grains (${grains}): ${fix}`);
    }
    return;
  }
  if (down.kind === 'static' || up.kind === 'static') {
    fail('mapping_mismatch', path, `${kind} needs time partitions on both sides (${grains}): use mapping 'all' or 'identity'`);
  }
  if (!grainsFit(down.grain, up.grain)) {
    fail(
      'mapping_mismatch',
      path,
      `${kind} needs grains that nest (${grains}; a ${up.grain} does not fit in a ${down.grain}): make one of them day or hour, or use mapping 'all'`,
    );
  }
}

/**
 * Validates a parsed spec document (from YAML, JSON or a TypeScript object) and returns it
 * with every default filled in. `knownTransforms`, when given, is the set of transform names
 * available; a node naming another one is an error.
 */
export function resolveSpec(document: unknown, knownTransforms?: ReadonlySet<string>): ResolvedSpec {
  // reportInput: an invalid_type issue then tells a missing field from a value of the wrong type.
  const parsed = SpecSchema.safeParse(document, { reportInput: true, error: specErrors });
  if (!parsed.success) zodFailure(parsed.error);
  const spec = parsed.data;

  const ids = new Map<string, number>();
  spec.nodes.forEach((node, i) => {
    if (ids.has(node.id)) fail('invalid_spec', ['nodes', i, 'id'], `'${node.id}' is used twice (also nodes[${ids.get(node.id)}]): node ids must be unique`);
    ids.set(node.id, i);
  });

  const nodes: ResolvedNode[] = spec.nodes.map((node, i) => {
    const transform = node.transform ?? (node.sql !== undefined ? 'sql' : undefined);
    if (!transform) fail('invalid_spec', ['nodes', i, 'transform'], "is required: name a registered transform, or give 'sql' to run SQL");
    if (transform === 'sql' && node.sql === undefined) {
      fail('invalid_spec', ['nodes', i, 'sql'], 'is required by the sql transform: give the SELECT that produces one partition');
    }
    if (knownTransforms && !knownTransforms.has(transform)) {
      const known = [...knownTransforms].sort();
      const [closest] = closestNames(transform, known, 1);
      const fix = closest === undefined ? 'fix the name' : `fix the name (did you mean '${closest}'?)`;
      fail(
        'unknown_transform',
        ['nodes', i, 'transform'],
        `'${transform}' is not a registered transform (known: ${known.join(', ')}): ${fix}, or list the module that registers it under 'transforms'`,
      );
    }
    const dependsOn = node.dependsOn.map((dep, d): { node: string; mapping?: Mapping } => {
      const entry = typeof dep === 'string' ? { node: dep } : dep;
      if (!ids.has(entry.node)) {
        const known = [...ids.keys()].join(', ');
        fail('unknown_node', ['nodes', i, 'dependsOn', d], `'${entry.node}' is not a node of this spec (nodes: ${known})`);
      }
      if (entry.node === node.id) fail('cycle', ['nodes', i, 'dependsOn', d], `'${node.id}' depends on itself`);
      return entry;
    });
    const seen = new Set<string>();
    dependsOn.forEach((dep, d) => {
      if (seen.has(dep.node)) fail('invalid_spec', ['nodes', i, 'dependsOn', d], `'${dep.node}' is listed twice: give one entry per upstream node`);
      seen.add(dep.node);
    });
    const settings = resolveSettings(spec.defaults, node);
    const problem = settingsProblem(settings);
    if (problem) {
      // Name the field where the value was written: on the node, or inherited from defaults.
      const [first, second] = problem.field as [keyof NodeSpec, string | undefined];
      const own = (value: Record<string, unknown> | undefined, key: string) => value !== undefined && value[key] !== undefined;
      const related = first === 'retry' ? ['initialInterval', 'maximumInterval'] : ['heartbeatTimeout', 'timeout'];
      const onNode = first === 'retry' ? related.some((k) => own(node.retry, k)) : related.some((k) => own(node as Record<string, unknown>, k));
      fail('invalid_spec', [...(onNode ? ['nodes', i] : ['defaults']), first, ...(second ? [second] : [])], problem.message);
    }
    return {
      ...settings,
      id: node.id,
      transform,
      ...(node.sql !== undefined ? { sql: node.sql } : {}),
      params: node.params,
      partitions: resolvePartitions(spec, node, i),
      dependsOn: dependsOn as ResolvedDependency[],
      checks: node.checks,
      ...(node.key ? { key: node.key } : {}),
      ...(node.adopt ? { adopt: true } : {}),
    };
  });

  const idle = idleBatchTarget(spec, nodes);
  if (idle) fail('invalid_spec', idle.path, idle.message);

  const cycle = findCycle(nodes.map((n) => ({ id: n.id, upstream: n.dependsOn.map((d) => d.node) })));
  if (cycle) {
    const first = ids.get(cycle[0]!)!;
    const d = nodes[first]!.dependsOn.findIndex((dep) => dep.node === cycle[1]);
    fail('cycle', ['nodes', first, 'dependsOn', d], `dependency cycle ${cycle.join(' → ')}: remove one of these edges`);
  }

  // Mappings are checked (and defaulted) once every node's partitions are known.
  const byId = new Map(nodes.map((n) => [n.id, n]));
  nodes.forEach((node, i) => {
    node.dependsOn = node.dependsOn.map((dep, d) => {
      const up = byId.get(dep.node)!;
      const path = ['nodes', i, 'dependsOn', d, 'mapping'];
      const sameGrain = grainOf(node.partitions) === grainOf(up.partitions);
      const mapping: Mapping | undefined = (dep as { mapping?: Mapping }).mapping;
      const resolved: Mapping = mapping ?? (sameGrain ? 'identity' : node.partitions.kind === 'time' && up.partitions.kind === 'time' ? 'window' : 'all');
      checkMapping(node.partitions, up.partitions, resolved, path, up.id);
      return { node: dep.node, mapping: resolved };
    });
  });

  // SQL that no partition could run (two statements, an unbound parameter) fails here rather than in every partition (core/sql-runs.ts).
  const unrunnable = unrunnableSql(nodes);
  if (unrunnable) fail('invalid_spec', unrunnable.path, unrunnable.message);

  // SQL reading a node it does not depend on, itself, or a dataset by another name than its plain one would read the wrong partitions (core/sql-reads.ts).
  const read = undeclaredRead(nodes);
  if (read) fail('invalid_spec', read.path, read.message);

  return {
    name: spec.name,
    ...(spec.description !== undefined ? { description: spec.description } : {}),
    transforms: spec.transforms,
    rate: spec.rate,
    concurrency: spec.concurrency,
    ...(spec.windows !== undefined ? { windows: spec.windows } : {}),
    ...(spec.canary !== undefined ? { canary: spec.canary } : {}),
    nodes,
  };
}

/** A partition range narrowing a backfill (`--from`, `--to`); either end may be open. */
export type PartitionRange = { from?: number; to?: number };

export function parseRange(from: string | undefined, to: string | undefined): PartitionRange {
  const range: PartitionRange = {};
  if (from !== undefined) {
    const ms = parseInstant(from);
    if (ms === undefined) throw new BackfillError('invalid_date', `--from '${from}' is not a valid UTC date: ${instantFix(from)}`, 'from');
    range.from = ms;
  }
  if (to !== undefined) {
    const ms = parseInstant(to);
    if (ms === undefined) throw new BackfillError('invalid_date', `--to '${to}' is not a valid UTC date: ${instantFix(to)}`, 'to');
    range.to = ms;
  }
  if (range.from !== undefined && range.to !== undefined && range.to <= range.from) {
    throw new BackfillError('invalid_date', `--to (${to}) must be after --from (${from}); --to is exclusive`, 'to');
  }
  return range;
}
