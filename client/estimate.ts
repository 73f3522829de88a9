/**
 * `plan --estimate`: the wall time, each node's finish and the rows written, predicted by
 * `simulate` (core/estimate.ts) with per-partition durations from the warehouse's ledger of
 * earlier backfills of the same datasets. It reads the ledger and writes nothing: a SQLite
 * warehouse that does not exist is not created, it only means there is no history.
 */
import { join } from 'node:path';
import { BackfillError } from '../core/errors.ts';
import { checkTaskQueue } from '../core/task-queue.ts';
import { DEFAULT_OVERHEAD, fitOverhead, partitionSeconds, scaleOverhead, simulate, stillThreshold, stillTime, type Forecast, type NodeTiming, type OverheadFit, type OverheadModel, type QueueCap, type SimulationInput } from '../core/estimate.ts';
import type { Limits } from '../core/limits.ts';
import { checkStart, type Policy } from '../core/policy.ts';
import type { Plan, PlanNode } from '../core/plan.ts';
import type { ResolvedSpec } from '../core/spec.ts';
import { RunWindows, backfillWindows, describeWindows, windowedLimits, type Windows } from '../core/windows.ts';
import { RangeSet, type RangesJSON } from '../core/ranges.ts';
import type { LedgerRow, Warehouse } from '../activities/warehouse/types.ts';
import { openLedgerIfThere } from './existing-warehouse.ts';
import { backfillHome } from '../host/settings.ts';
import type { SampleRun } from './estimate-sample.ts';

/** The activity slots of one worker per task queue, when none are given (`worker --max-concurrent-activities`' default). */
export const DEFAULT_WORKER_SLOTS = 200;

/** Where a node's durations come from. */
export type TimingSource =
  | { kind: 'history'; ledgerRows: number; ownDurations: number; backfills: Array<{ backfillId: string; rows: number }>; from: string; to: string }
  | { kind: 'assumed'; why: string }
  | { kind: 'sample'; backfillId: string; ledgerRows: number; partitions: string[] };

export type NodeHistory = {
  timing: NodeTiming;
  rowsPerPartition: number | null;
  rowCounts?: Float64Array;
  source: TimingSource;
  /** The plan's partitions that have a published version: by whom, and when it ran. */
  runs?: Array<{ index: number; backfillId: string; startMs: number; finishMs: number }>;
};

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/**
 * A node's durations from the ledger rows of its published versions: each partition of the
 * plan that has one takes its own duration, the others the mean of all of them. Without
 * rows, `sleep` takes its `ms` parameter, `noop` nothing, and anything else `assumeMs`.
 */
export function nodeHistory(node: PlanNode, rows: readonly LedgerRow[], assumeMs: number | null): NodeHistory {
  const published = rows.filter((r) => r.status === 'published');
  if (published.length === 0) {
    const ms = node.spec.params.ms;
    if (node.spec.transform === 'sleep' && typeof ms === 'number') {
      return { timing: { meanMs: ms }, rowsPerPartition: 0, source: { kind: 'assumed', why: `no history: the sleep transform's ms parameter (${ms}ms)` } };
    }
    if (node.spec.transform === 'noop') return { timing: { meanMs: 0 }, rowsPerPartition: 0, source: { kind: 'assumed', why: 'no history: noop takes no time' } };
    const why = assumeMs === null ? 'no history: assumed to take no time beyond orchestration (a lower bound; --assume <duration> sets a guess)' : `no history: --assume ${assumeMs}ms`;
    return { timing: { meanMs: assumeMs ?? 0 }, rowsPerPartition: null, source: { kind: 'assumed', why } };
  }
  const { own, ...measured } = fromRows(node, published);
  const backfills = new Map<string, number>();
  for (const row of published) backfills.set(row.backfillId, (backfills.get(row.backfillId) ?? 0) + 1);
  const finished = published.map((r) => r.finishedAt).sort();
  return {
    ...measured,
    source: {
      kind: 'history',
      ledgerRows: published.length,
      ownDurations: own,
      backfills: [...backfills].map(([backfillId, n]) => ({ backfillId, rows: n })).sort((a, b) => b.rows - a.rows || a.backfillId.localeCompare(b.backfillId)),
      from: finished[0]!,
      to: finished[finished.length - 1]!,
    },
  };
}

/** Durations and row counts from ledger rows (at least one): each plan partition that has a row takes its own, the others the mean. */
function fromRows(node: PlanNode, rows: readonly LedgerRow[]): Omit<NodeHistory, 'source'> & { own: number } {
  const byIndex = new Float64Array(node.partitions.size).fill(Number.NaN);
  const rowCounts = new Float64Array(node.partitions.size).fill(Number.NaN);
  let own = 0;
  const runs: NonNullable<NodeHistory['runs']> = [];
  for (const row of rows) {
    const i = node.partitions.indexOf(row.partition);
    if (i < 0) continue;
    byIndex[i] = row.durationMs;
    rowCounts[i] = row.rowCount ?? Number.NaN;
    runs.push({ index: i, backfillId: row.backfillId, startMs: Date.parse(row.startedAt), finishMs: Date.parse(row.finishedAt) });
    own++;
  }
  const counts = rows.map((r) => r.rowCount).filter((c): c is number => c !== null);
  return { timing: { meanMs: mean(rows.map((r) => r.durationMs)), byIndex }, rowsPerPartition: counts.length > 0 ? mean(counts) : null, rowCounts, runs, own };
}

/**
 * A node's durations from its sample (`--sample`): the ledger rows the sample's staged backfill
 * wrote for it (discarded since, still staged, or failed a check), whatever the node's history. A node whose
 * sampled partitions all failed has none: it is assumed as without history, and says so.
 */
export function sampleHistory(node: PlanNode, rows: readonly LedgerRow[], sample: { backfillId: string; partitions: Record<string, string[]> }, assumeMs: number | null): NodeHistory {
  // A partition whose check failed took its time too (the check may fail for want of upstream data the sample skipped).
  const mine = rows.filter((r) => r.node === node.id && r.backfillId === sample.backfillId && r.status !== 'published');
  if (mine.length === 0) {
    const fallback = nodeHistory(node, [], assumeMs);
    if (fallback.source.kind !== 'assumed') return fallback;
    return { ...fallback, source: { kind: 'assumed', why: `the sample ${sample.backfillId} timed none of its partitions (they failed or waited on one that did); ${fallback.source.why.replace(/^no history: /, '')}` } };
  }
  const { own: _own, ...measured } = fromRows(node, mine);
  return { ...measured, source: { kind: 'sample', backfillId: sample.backfillId, ledgerRows: mine.length, partitions: sample.partitions[node.id] ?? [] } };
}

/** Rows a node would write: each partition's own count where the ledger has it, else the node's mean; null when unknown. */
function rowsWritten(history: NodeHistory, runs: readonly number[]): number | null {
  if (history.rowsPerPartition === null) return null;
  let rows = 0;
  for (const i of runs) {
    const own = history.rowCounts?.[i];
    rows += own !== undefined && !Number.isNaN(own) ? own : history.rowsPerPartition;
  }
  return Math.round(rows);
}

/** `--queue-cap name=per-second`: the server's cap on a task queue's activities per second (finite, above 0). */
export function parseQueueCaps(flags: readonly string[] | undefined, slots: number): Record<string, QueueCap> {
  const caps: Record<string, QueueCap> = {};
  for (const entry of flags ?? []) {
    const [name, perSecond, extra] = entry.split('=');
    const rate = Number(perSecond);
    if (!name || perSecond === undefined || perSecond.trim() === '' || extra !== undefined || !Number.isFinite(rate) || !(rate > 0)) {
      throw new BackfillError(
        'invalid_argument',
        `--queue-cap '${entry}': write <task-queue>=<activities per second>, a finite number above 0, e.g. backfill=50 (leave a queue out for no cap)`,
        'queue-cap',
      );
    }
    caps[checkTaskQueue(name, '--queue-cap', 'queue-cap')] = { ratePerSecond: rate, slots };
  }
  return caps;
}

export type EstimateOptions = {
  warehouse?: string;
  limits: Limits;
  /** Task queue caps by name; queues not named get `workerSlots` slots and no rate cap. */
  queueCaps?: Record<string, QueueCap>;
  workerSlots?: number;
  /** The duration of a partition of a node with no history (not sleep or noop). */
  assumeMs?: number | null;
  /** Partitions that --only-changed keeps (they do not run). */
  skip?: Record<string, RangesJSON>;
  overhead?: OverheadModel;
  /** Calibrate the orchestration costs on the history's largest backfill (default true). */
  calibrate?: boolean;
  /** `--sample`: the staged backfill that timed N partitions per node; its durations replace the history's. */
  sample?: SampleRun;
  /** The spec's run windows: the estimate starts at `now` and follows them (and the policy's: both must allow). */
  windows?: Windows;
  /**
   * The policy the workers judge the backfill by (`plan --policy`): its run windows apply on top
   * of the spec's, as the workflow applies them, and its caps as the start's judgement sets them.
   */
  policy?: { path: string; windows?: Windows; caps?: PolicyCaps };
  /** Per-node rates over the spec's own (the policy's dataset caps, where a node sets none). */
  overrides?: Readonly<Record<string, Partial<Limits>>>;
  /** The spec's canary: its slice and its wait for an approval are not in the estimate, which says so. */
  canary?: boolean;
  /** The estimate's clock: when the simulated backfill starts (default: now). */
  now?: number;
};

/** What a policy's caps did to the limits the estimate runs with, as the start's judgement would. */
export type PolicyCaps = {
  /** The backfill-wide limits the policy set where the start sets none (null: it set none). */
  rate: number | null;
  concurrency: number | null;
  /** Node rates its dataset caps set where the node sets none. */
  nodeRates: Record<string, number>;
  /** What the policy refuses of these limits: a start with them would not run. */
  refused: string[];
};

/** The ledger of a warehouse, read as it is, or none when no warehouse or ledger is there (reading creates none). */
async function withLedger<T>(location: string | undefined, read: (warehouse: Warehouse | null, where: string) => Promise<T>): Promise<T> {
  const target = location && location.length > 0 ? location : join(backfillHome(), 'warehouse.db');
  const warehouse = await openLedgerIfThere(target);
  if (!warehouse) return read(null, target);
  try {
    return await read(warehouse, warehouse.location);
  } finally {
    await warehouse.close();
  }
}

/** The ledger rows of each node's published versions (none without a warehouse). */
export async function histories(plan: Plan, warehouse: Pick<Warehouse, 'publishedRows'> | null, assumeMs: number | null): Promise<Map<string, NodeHistory>> {
  const out = new Map<string, NodeHistory>();
  for (const node of plan.nodes) out.set(node.id, nodeHistory(node, warehouse ? await warehouse.publishedRows(node.id) : [], assumeMs));
  return out;
}

/** Each node's durations from the ledger rows of the sample's staged backfill. */
export async function sampleHistories(plan: Plan, warehouse: Pick<Warehouse, 'ledger'>, sample: SampleRun, assumeMs: number | null): Promise<Map<string, NodeHistory>> {
  const rows = await warehouse.ledger({ backfillId: sample.backfillId });
  if (rows.length === 0) {
    throw new BackfillError('not_found', `the sample ${sample.backfillId} ran, but this warehouse's ledger has none of its rows: pass --warehouse (or set BACKFILL_WAREHOUSE) to the warehouse the workers write`, 'warehouse');
  }
  return new Map(plan.nodes.map((node) => [node.id, sampleHistory(node, rows, sample, assumeMs)]));
}

/** Fewer partitions than this in the history's largest backfill: too few to calibrate on. */
export const MIN_CALIBRATION_PARTITIONS = 10;

/** `spanMs`: from the first start to the last finish, less `stillMs` in which no partition ran (`stillTime`). */
export type Calibration = OverheadFit & { backfillId: string; partitions: number; spanMs: number; stillMs: number };

/**
 * Calibrates the orchestration costs on the earlier backfill that published most of the
 * plan's partitions: the plan, narrowed to what that backfill ran (the rest counts as done),
 * is simulated with its partitions' own durations and must take as long as it did, from its
 * first partition's start to its last one's finish, less the stretches in which it stood still
 * (paused, or waiting for a worker: they would scale the costs as if orchestration took them).
 * Null when no backfill ran enough of them.
 */
export function calibrate(plan: Plan, history: ReadonlyMap<string, NodeHistory>, input: Omit<SimulationInput, 'plan' | 'timings' | 'skip' | 'from'>): Calibration | null {
  const counts = new Map<string, number>();
  for (const h of history.values()) for (const r of h.runs ?? []) counts.set(r.backfillId, (counts.get(r.backfillId) ?? 0) + 1);
  const [backfillId, partitions] = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0] ?? ['', 0];
  if (partitions < MIN_CALIBRATION_PARTITIONS) return null;
  const skip: Record<string, RangesJSON> = {};
  let first = Infinity;
  let last = -Infinity;
  const intervals: Array<[number, number]> = [];
  for (const node of plan.nodes) {
    const ran = new RangeSet();
    for (const r of history.get(node.id)?.runs ?? []) {
      if (r.backfillId !== backfillId) continue;
      ran.add(r.index);
      first = Math.min(first, r.startMs);
      last = Math.max(last, r.finishMs);
      intervals.push([r.startMs, r.finishMs]);
    }
    skip[node.id] = RangeSet.of([0, node.partitions.size]).deleteAll(ran).toJSON();
  }
  const stillMs = stillTime(intervals, stillThreshold({ ...input, plan }));
  const timings = new Map([...history].map(([id, h]) => [id, h.timing]));
  const fit = fitOverhead({ ...input, plan, timings, skip }, last - first - stillMs);
  return fit && { ...fit, backfillId, partitions, spanMs: last - first - stillMs, stillMs };
}

/** The estimate as `plan --estimate` reports it: pure, from the histories. */
export function estimateReport(plan: Plan, history: ReadonlyMap<string, NodeHistory>, options: EstimateOptions & { warehouse: string; warehouseFound: boolean }) {
  const slots = options.workerSlots ?? DEFAULT_WORKER_SLOTS;
  const queues: Record<string, QueueCap> = {};
  for (const node of plan.nodes) queues[node.spec.taskQueue] = { ratePerSecond: null, slots };
  Object.assign(queues, options.queueCaps ?? {});
  const base = options.overhead ?? DEFAULT_OVERHEAD;
  // A sample is too small to calibrate on: its span is its chain of signal hops, not the throughput of a run.
  const calibration = options.calibrate === false || options.sample ? null : calibrate(plan, history, { limits: options.limits, overhead: base, queues });
  const overhead = calibration ? scaleOverhead(base, calibration.factor) : base;
  const named = backfillWindows(options.windows, options.policy?.windows);
  const schedules = named.map((w) => new RunWindows(w.windows));
  const startAt = options.now ?? Date.now();
  const forecast: Forecast = simulate({
    plan,
    limits: options.limits,
    timings: new Map([...history].map(([id, h]) => [id, h.timing])),
    overhead,
    queues,
    ...(options.skip ? { skip: options.skip } : {}),
    ...(options.overrides ? { overrides: options.overrides } : {}),
    // As the policy's governance reads them: lower limits only, on top of the backfill's own.
    ...(schedules.length > 0 ? { windows: { startAt, limitsAt: windowedLimits(schedules) } } : {}),
  });
  const nodes = plan.nodes.map((node, i) => {
    const h = history.get(node.id)!;
    const f = forecast.nodes[i]!;
    const runs = ranIndices(node, options.skip?.[node.id]);
    return {
      id: node.id,
      partitions: node.partitions.size,
      runs: f.runs,
      activities: f.activities,
      meanMs: Math.round(h.timing.meanMs * 10) / 10,
      firstStartMs: f.firstStartMs === null ? null : Math.round(f.firstStartMs),
      finishMs: f.finishMs === null ? null : Math.round(f.finishMs),
      rows: rowsWritten(h, runs),
      source: h.source,
    };
  });
  const known = nodes.every((n) => n.rows !== null);
  const toRun = plan.nodes.reduce((sum, node) => sum + ranIndices(node, options.skip?.[node.id]).length, 0);
  const warnings = [
    ...(schedules.length > 0 && forecast.runs < toRun ? [`the run windows never open again: ${toRun - forecast.runs} partitions would never run`] : []),
    ...(options.canary
      ? ["the spec's canary runs a slice first and waits for its approval (or canary.auto): neither is in the estimate, which runs the whole plan at once"]
      : []),
  ];
  // Unknown when a node's durations are only assumed (a guess, or no time at all): the policy's threshold must not be held against a guess.
  const guessed = plan.nodes.some((node) => history.get(node.id)!.rowsPerPartition === null && history.get(node.id)!.source.kind === 'assumed');
  return {
    wallMs: Math.round(forecast.wallMs),
    /** The partitions' own run time summed (what approval.maxPartitionSeconds is held against); null when some node's durations are unknown. */
    partitionSeconds: guessed ? null : Math.round(partitionSeconds(plan, new Map([...history].map(([id, h]) => [id, h.timing])), options.skip) * 10) / 10,
    runs: forecast.runs,
    activities: forecast.activities,
    rows: known ? nodes.reduce((sum, n) => sum + n.rows!, 0) : null,
    warehouse: options.warehouse,
    warehouseFound: options.warehouseFound,
    limits: options.limits,
    queues,
    assumed: nodes.filter((n) => n.source.kind === 'assumed').map((n) => n.id),
    /** `--sample`: what was timed; its staged versions were discarded, so nothing was published. */
    sample: options.sample
      ? { backfillId: options.sample.backfillId, perNode: options.sample.perNode, partitions: options.sample.partitions, wallMs: options.sample.wallMs, failed: options.sample.failed, discarded: options.sample.discarded, published: 0 }
      : null,
    calibration,
    overhead: roundOverhead(overhead),
    /** Run windows followed from `startsAt` (null: none): partitions start only while they allow, at their limits. */
    windows:
      schedules.length > 0
        ? {
            schedules: schedules.length,
            /** Whose they are, in the order of `description`. */
            from: named.map((w) => w.source),
            startsAt: new Date(startAt).toISOString(),
            // Named once the policy's are among them (as status names them).
            description: schedules.map((s, i) => `${options.policy?.windows ? `the ${named[i]!.source}'s: ` : ''}${describeWindows(s, startAt)}`),
          }
        : null,
    /** The policy read (`plan --policy`), whether it has run windows, and what its caps set; null: none was given. */
    policy: options.policy ? { path: options.policy.path, windows: options.policy.windows !== undefined, caps: options.policy.caps ?? null } : null,
    /** Whether the spec has a canary, whose slice and wait for an approval the estimate leaves out. */
    canary: options.canary === true,
    /** What the estimate leaves out for this plan, to print beside it. */
    warnings,
    nodes,
  };
}

export type EstimateReport = ReturnType<typeof estimateReport>;

function roundOverhead(overhead: OverheadModel): OverheadModel {
  return Object.fromEntries(Object.entries(overhead).map(([k, v]) => [k, Math.round(v * 100) / 100])) as OverheadModel;
}

/** The indices of a node's partitions that run: all of them but those --only-changed keeps. */
function ranIndices(node: PlanNode, skip: RangesJSON | undefined): number[] {
  const skipped = RangeSet.fromJSON(skip);
  const out: number[] = [];
  for (let i = 0; i < node.partitions.size; i++) if (!skipped.has(i)) out.push(i);
  return out;
}

/** `plan --estimate`: reads the ledger (if the warehouse is there), simulates, reports. */
export async function estimatePlan(plan: Plan, options: EstimateOptions): Promise<EstimateReport> {
  return withLedger(options.warehouse, async (warehouse, where) => {
    const sample = options.sample;
    if (sample && !warehouse) {
      throw new BackfillError('not_found', `the sample ${sample.backfillId} ran, but there is no warehouse at ${where} to read its durations from: pass --warehouse (or set BACKFILL_WAREHOUSE) to the workers' warehouse`, 'warehouse');
    }
    const history = sample ? await sampleHistories(plan, warehouse!, sample, options.assumeMs ?? null) : await histories(plan, warehouse, options.assumeMs ?? null);
    return estimateReport(plan, history, { ...options, warehouse: where, warehouseFound: warehouse !== null });
  });
}

/** The flags of `plan --estimate`. */
export type EstimateFlags = {
  estimate?: boolean;
  warehouse?: string;
  rate?: number | null;
  concurrency?: number | null;
  queueCap?: string[];
  workerSlots?: number;
  assume?: number;
  sample?: string;
  /** --policy as given on the command line ($BACKFILL_POLICY alone is not a flag given without --estimate). */
  policy?: string;
};

/** The estimate's own flags without --estimate would be ignored without a word: they are refused. */
export function checkEstimateFlags(flags: EstimateFlags): void {
  const given = (['rate', 'concurrency', 'queueCap', 'workerSlots', 'assume', 'sample', 'policy'] as const).filter((k) => flags[k] !== undefined);
  if (!flags.estimate && given.length > 0) {
    const names = given.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    throw new BackfillError('invalid_argument', `${names.join(' and ')} only ${names.length > 1 ? 'matter' : 'matters'} with --estimate: add --estimate, or leave ${names.length > 1 ? 'them' : 'it'} out`, 'estimate');
  }
}

/** The estimate's options from `plan`'s flags, and the policy the workers are given (`--policy`). */
export function estimateOptions(spec: ResolvedSpec, flags: EstimateFlags, skip?: Record<string, RangesJSON>, policy?: { path: string; rules: Policy }): EstimateOptions {
  checkEstimateFlags(flags);
  const workerSlots = flags.workerSlots ?? DEFAULT_WORKER_SLOTS;
  const given: Partial<Limits> = { ...(flags.rate !== undefined ? { rate: flags.rate } : {}), ...(flags.concurrency !== undefined ? { concurrency: flags.concurrency } : {}) };
  const asked: Limits = { rate: given.rate !== undefined ? given.rate : spec.rate, concurrency: given.concurrency !== undefined ? given.concurrency : spec.concurrency };
  // The start's own judgement: a limit left unset takes the policy's cap, a node without a rate its dataset cap's.
  const judged = policy && checkStart(policy.rules, { spec, partitions: 0, limits: given });
  const limits = judged?.limits ?? asked;
  const nodeRates = judged?.nodeRates ?? {};
  return {
    ...(flags.warehouse !== undefined ? { warehouse: flags.warehouse } : {}),
    limits,
    ...(Object.keys(nodeRates).length > 0 ? { overrides: Object.fromEntries(Object.entries(nodeRates).map(([node, rate]) => [node, { rate }])) } : {}),
    queueCaps: parseQueueCaps(flags.queueCap, workerSlots),
    workerSlots,
    assumeMs: flags.assume ?? null,
    ...(skip ? { skip } : {}),
    ...(spec.windows ? { windows: spec.windows } : {}),
    ...(policy && judged
      ? {
          policy: {
            path: policy.path,
            ...(policy.rules.windows ? { windows: policy.rules.windows } : {}),
            caps: {
              rate: asked.rate === null ? limits.rate : null,
              concurrency: asked.concurrency === null ? limits.concurrency : null,
              nodeRates,
              refused: judged.violations.filter((v) => v.rule.startsWith('caps.')).map((v) => `${v.message} (${v.rule})`),
            },
          },
        }
      : {}),
    ...(spec.canary ? { canary: true } : {}),
  };
}
