/**
 * Transforms: functions registered by name in the worker that produce one partition.
 * A transform returns the partition's rows, or adds them through `ctx.warehouse`
 * (`insert(rows)`, or `insertFrom(sql)` to compute them inside the warehouse).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { BackfillError } from '../core/errors.ts';
import { PARTITION_PARAMETERS, boundParam } from '../core/sql-parameters.ts';
import { NonRetryableError, ThrottledError } from './errors.ts';
import { importModule } from './modules.ts';
import type { PartitionInput } from '../core/protocol.ts';
import type { Bindings, PartitionData, Row, SqlValue } from './warehouse/types.ts';

/** What a transform sees of the warehouse while it produces a partition. */
export type PartitionSession = {
  /** Reads data (upstream datasets are views named after their node). */
  query(sql: string, bindings?: Bindings): Promise<Row[]>;
  /** Adds rows to the new version of the partition. */
  insert(rows: Row[]): void;
  /** Adds the rows a SELECT returns, computed inside the warehouse. */
  insertFrom(sql: string, bindings?: Bindings): void;
};

export type TransformContext = {
  node: string;
  partition: string;
  /** The partition's UTC window (ISO 8601), or null for static keys. */
  window: { start: string; end: string } | null;
  /** The node's params, as written in the spec: read-only (frozen; assigning to them throws), the ledger records them. */
  params: Readonly<Record<string, unknown>>;
  /** The node's SQL, for SQL transforms. */
  sql: string | undefined;
  /** The upstream partitions this one depends on, as key ranges (static keys listed). */
  inputs: PartitionInput[];
  /** The SQL parameters of this partition: :partition, :start, :end, :start_date, :end_date and the node's scalar params. */
  bindings: Bindings;
  warehouse: PartitionSession;
  /** Aborted when the activity is cancelled (a cancelled backfill): stop and throw. */
  signal: AbortSignal;
  /** 1 on the first try of this partition's activity, 2 on its first retry, ... */
  attempt: number;
  /** How many times this partition was throttled (ThrottledError) before this run. */
  throttled: number;
  /** Heartbeats at once; the details go beside the activity's checkpoint (under `user`) for the Web UI, and are not handed back to a retry. */
  heartbeat(details?: unknown): void;
  /**
   * Reports what producing this partition cost, in the unit the policy's cost budget names
   * (`budgets.cost: { metric: reported, unit: bytes scanned }`): bytes scanned, credits, a
   * query's price. Calls add up; the ledger records the partition's total, and the backfill's
   * cost budget counts it. A transform that never calls it costs 0.
   */
  reportCost(amount: number): void;
  /**
   * Reports how long the system this transform calls took to answer (a query's time, in ms).
   * A node with `pace: { latencyTarget }` slows down when the p95 of these goes over its target;
   * a partition counts the highest latency it reported, or without any, its own duration.
   */
  reportLatency(ms: number): void;
};

export type Transform = ((ctx: TransformContext) => Promise<Row[] | void> | Row[] | void) & {
  /** A dry run: the partition is not written, versioned or recorded (the `noop` transform). */
  readonly dryRun?: true;
};
export type TransformRegistry = ReadonlyMap<string, Transform>;

/** Declares transforms in a module the worker loads (`--transforms path/to/module.ts`). */
export function defineTransforms<T extends Record<string, Transform>>(transforms: T): T {
  return transforms;
}

/** Appends one by one: `push(...rows)` passes each row as an argument, and overflows the stack above about 125,000. */
export function appendRows(target: unknown[], rows: readonly unknown[]): void {
  for (const row of rows) target.push(row);
}

export function collectData(): { data: PartitionData; session: Omit<PartitionSession, 'query'> } {
  const data: PartitionData = { rows: [], selects: [] };
  return {
    data,
    session: {
      insert: (rows) => appendRows(data.rows, rows),
      insertFrom: (sql, bindings = {}) => void data.selects.push({ sql, bindings }),
    },
  };
}

/** A number in [0, 1) fixed by the text: deterministic "randomness" for failure injection and data generation. */
export function unitHash(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 2 ** 32;
}

/** Calls in flight per node, for the simulated downstream latency of `sleep`. */
const inFlightCalls = new Map<string, number>();

/**
 * A call to a simulated service whose latency grows with its load: `base` × (1 + calls in
 * flight / `capacity`), the calls in flight counted in this worker process, this one included.
 * It reports the latency it took to the node's latency pacing.
 */
async function loadedCall(ctx: TransformContext, base: number, capacity: number): Promise<void> {
  const inFlight = (inFlightCalls.get(ctx.node) ?? 0) + 1;
  inFlightCalls.set(ctx.node, inFlight);
  const started = Date.now();
  try {
    await delay(base * (1 + inFlight / capacity), undefined, { signal: ctx.signal });
  } finally {
    inFlightCalls.set(ctx.node, (inFlightCalls.get(ctx.node) ?? 1) - 1);
  }
  ctx.reportLatency(Date.now() - started);
}

/** Recent call times per node, for the simulated downstream capacity of `sleep`. */
const recentCalls = new Map<string, number[]>();
function admit(node: string, perSecond: number): boolean {
  const now = Date.now();
  const calls = (recentCalls.get(node) ?? []).filter((t) => t > now - 1000);
  const ok = calls.length < perSecond;
  if (ok) calls.push(now);
  recentCalls.set(node, calls);
  return ok;
}

const asStrings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);

/**
 * `sleep`: waits `ms` (default 0) and writes nothing; for dry runs, load tests and chaos
 * drills. Deterministic failure injection through params:
 *   failKeys: [keys]       always fails these partitions (non-retryable when permanent: true)
 *   failRate: 0.1          fails this fraction of partitions, chosen by a hash of the key
 *   failAttempts: 2        fails the first N attempts of each failing partition's activity, then succeeds
 *   throttleKeys: [keys]   throws ThrottledError for these partitions, the first throttleTimes (default 1) times they run
 *   throttleRate: 0.1      the same for this fraction of partitions
 *   capacityPerSecond: 10  acts as a downstream system that throttles calls beyond this many per second (per worker)
 *   latencyBase: 50,       then calls a downstream system whose latency grows with its load: latencyBase ms ×
 *   latencyCapacity: 4     (1 + calls in flight / latencyCapacity), in flight per worker; it reports that latency
 *   hangKeys: [keys]       never finishes ('await': keeps heartbeating; hang: 'busy' blocks the process)
 *   crashKeys: [keys]      kills the worker process on the first attempt
 *   cost: 5                reports this cost per partition (ctx.reportCost), for cost budgets
 * Crashes and hangs happen only on a worker started with --allow-fault-injection
 * (`faultInjection`); elsewhere such a partition fails for good and the worker lives on.
 */
async function runSleep(ctx: TransformContext, faultInjection: boolean): Promise<void> {
  const p = ctx.params;
  const key = ctx.partition;
  const ms = typeof p.ms === 'number' ? p.ms : 0;
  const chosen = (keys: unknown, rate: unknown) =>
    asStrings(keys).includes(key) || (typeof rate === 'number' && unitHash(`${ctx.node}/${key}`) < rate);

  for (const [param, effect] of [['crashKeys', 'kill'], ['hangKeys', 'hang']] as const) {
    if (!faultInjection && chosen(p[param], undefined) && ctx.attempt === 1) {
      throw new NonRetryableError(
        `${ctx.node} ${key}: the sleep transform's ${param} would ${effect} this worker, and fault injection is off: start the worker with --allow-fault-injection (chaos drills only), or remove ${param} from the node's params`,
      );
    }
  }
  if (chosen(p.crashKeys, undefined) && ctx.attempt === 1) process.kill(process.pid, 'SIGKILL');
  if (chosen(p.hangKeys, undefined) && ctx.attempt === 1) {
    if (p.hang === 'busy') for (;;);
    await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)));
  }
  const throttleTimes = typeof p.throttleTimes === 'number' ? p.throttleTimes : 1;
  if (chosen(p.throttleKeys, p.throttleRate) && ctx.throttled < throttleTimes) {
    throw new ThrottledError(`downstream throttled ${ctx.node} ${key}`);
  }
  if (typeof p.capacityPerSecond === 'number' && !admit(ctx.node, p.capacityPerSecond)) {
    throw new ThrottledError(`downstream over capacity (${p.capacityPerSecond}/s) for ${ctx.node}`);
  }
  if (ms > 0) await delay(ms, undefined, { signal: ctx.signal });
  if (typeof p.cost === 'number') ctx.reportCost(p.cost);
  if (typeof p.latencyBase === 'number' && p.latencyBase > 0) {
    const capacity = typeof p.latencyCapacity === 'number' && p.latencyCapacity > 0 ? p.latencyCapacity : 1;
    await loadedCall(ctx, p.latencyBase, capacity);
  }
  if (chosen(p.failKeys, p.failRate)) {
    const failAttempts = typeof p.failAttempts === 'number' ? p.failAttempts : Infinity;
    if (ctx.attempt <= failAttempts) {
      const message = typeof p.failMessage === 'string' ? p.failMessage : `injected failure for ${ctx.node} ${key}`;
      throw p.permanent === true ? new NonRetryableError(message) : new Error(`${message} (attempt ${ctx.attempt})`);
    }
  }
}

const sleep: Transform = (ctx) => runSleep(ctx, false);
const sleepWithFaults: Transform = (ctx) => runSleep(ctx, true);

export const BUILTIN_TRANSFORMS: TransformRegistry = new Map<string, Transform>([
  ['noop', Object.assign(() => undefined, { dryRun: true as const })],
  ['sleep', sleep],
  [
    'sql',
    (ctx) => {
      if (!ctx.sql) throw new NonRetryableError(`node ${ctx.node} uses the sql transform but has no sql`);
      ctx.warehouse.insertFrom(ctx.sql, ctx.bindings);
    },
  ],
]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * The transforms record a module exports: its default export or its export named `transforms`,
 * never both (unless they are the same object). A record with no function exports no
 * transforms; one with functions must hold nothing else.
 */
function transformsOf(loaded: Record<string, unknown>, path: string): Record<string, Transform> {
  let { default: record } = loaded;
  const { transforms: named } = loaded;
  // A CommonJS module's default export is its `exports`, which holds `transforms` itself.
  if (named !== undefined && isObject(record) && record.transforms === named) record = undefined;
  if (record !== undefined && named !== undefined && record !== named) {
    throw new Error(`${path} exports both a default export and an export named transforms: export the transforms once (export default defineTransforms({ name: fn, ... }))`);
  }
  const chosen = record ?? named;
  const members = isObject(chosen) ? Object.entries(chosen) : [];
  if (!members.some(([, fn]) => typeof fn === 'function')) throw new Error(`${path} exports no transforms: export default defineTransforms({ name: fn, ... })`);
  const other = members.find(([, fn]) => typeof fn !== 'function');
  if (other) {
    throw new Error(`${path}: its transforms' '${other[0]}' is ${kindOf(other[1])}, not a function: the record holds only transforms (export other values under names of their own)`);
  }
  return chosen as Record<string, Transform>;
}

/**
 * The registry with the built-in `sleep` able to crash and hang the worker (`enabled`), or not.
 * A `sleep` of the caller's own is left alone.
 */
export function withFaultInjection(registry: TransformRegistry, enabled: boolean): TransformRegistry {
  const current = registry.get('sleep');
  if (current !== sleep && current !== sleepWithFaults) return registry;
  return new Map(registry).set('sleep', enabled ? sleepWithFaults : sleep);
}

/**
 * Why a transforms module that is there did not load, and the fix: a package it imports is not
 * installed, or its own code threw while it was imported.
 */
function loadFailure(path: string, error: unknown): BackfillError {
  const { code, message } = error instanceof Error ? (error as Error & { code?: unknown }) : { code: undefined, message: String(error) };
  if (code === 'ERR_MODULE_NOT_FOUND') {
    return new BackfillError('invalid_argument', `could not load transforms from ${path}: ${message}: install what it imports (npm install), or correct the import`, 'transforms');
  }
  return new BackfillError(
    'invalid_argument',
    `could not load transforms from ${path}: importing it failed: ${message}: fix the module's top-level code (it runs once, as the worker starts), or name another module`,
    'transforms',
  );
}

/**
 * Loads transform modules (their default export, or an export named `transforms`, is a
 * record of name → function) and returns the built-ins plus theirs. A name two modules define
 * is refused: which of them would run depended on the order of the list.
 */
export async function loadTransforms(modules: readonly string[], base = process.cwd()): Promise<TransformRegistry> {
  const registry = new Map(BUILTIN_TRANSFORMS);
  const definedBy = new Map<string, string>();
  for (const path of modules) {
    const absolute = resolve(base, path);
    // Node's own error names the importing file inside this package, not the path the user gave.
    if (!existsSync(absolute)) {
      throw new BackfillError(
        'invalid_argument',
        `could not load transforms from ${path}: there is no such file${absolute === path ? '' : ` (${absolute}: a relative path counts from ${base})`}: ` +
          "correct its path in --transforms ($BACKFILL_TRANSFORMS) or in the spec's transforms:",
        'transforms',
      );
    }
    let loaded: Record<string, unknown>;
    try {
      loaded = await importModule(absolute);
    } catch (error) {
      // A BackfillError says already which module and what to do.
      if (error instanceof BackfillError) throw error;
      throw loadFailure(absolute, error);
    }
    for (const [name, fn] of Object.entries(transformsOf(loaded, path))) {
      if (BUILTIN_TRANSFORMS.has(name)) throw new Error(`${path} redefines the built-in transform '${name}': rename it`);
      const first = definedBy.get(name);
      // The same module listed twice defines the same function.
      if (first !== undefined && registry.get(name) !== fn) throw new Error(`transform '${name}' is defined by both ${first} and ${path}: rename one of them`);
      registry.set(name, fn);
      definedBy.set(name, first ?? path);
    }
  }
  return registry;
}

/** The SQL parameters of a partition: its key and window, and the node's scalar params. */
export function partitionBindings(partition: string, window: { start: string; end: string } | null, params: Record<string, unknown>): Bindings {
  const bindings: Bindings = {};
  for (const [name, value] of Object.entries(params)) {
    if (boundParam(value)) {
      bindings[name] = typeof value === 'boolean' ? (value ? 1 : 0) : (value as SqlValue);
    }
  }
  // Each of PARTITION_PARAMETERS, the names plan checks spec SQL against: a name missing here or added fails to compile.
  const own: Record<(typeof PARTITION_PARAMETERS)[number], SqlValue> = {
    partition,
    start: window?.start ?? null,
    end: window?.end ?? null,
    start_date: window ? window.start.slice(0, 10) : null,
    // The last day inside the window, so that `day BETWEEN :start_date AND :end_date` covers it exactly.
    end_date: window ? new Date(Date.parse(window.end) - 1).toISOString().slice(0, 10) : null,
  };
  return Object.assign(bindings, own);
}
