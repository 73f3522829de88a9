/** The `progress` a backfill reports: counts per node, pace, throughput and ETA. */
import type { Plan } from './plan.ts';
import type { BackfillState, FailureGroup, Limits, NodeProgress, NodeSettings, NodeStats, PaceSoFar, Progress } from './protocol.ts';
import { RangeSet } from './ranges.ts';
import type { Readiness } from './readiness.ts';

export type ProgressInputs = {
  backfillId: string;
  name: string;
  state: BackfillState;
  paused: boolean;
  limits: Limits;
  plan: Plan;
  readiness: Readiness;
  reports: Readonly<Record<string, NodeStats>>;
  failures: Readonly<Record<string, FailureGroup[]>>;
  lastSettings: ReadonlyMap<string, NodeSettings>;
  runs: number;
  /** When the backfill let nothing start, by the parent's clock (BackfillCarry.held); absent: only the nodes' pausedMs are known. */
  held?: ReadonlyArray<readonly [from: number, to: number | null]>;
  /**
   * Under run windows: how long work of `workMs` begun now takes with the hours they are closed
   * on top (core/windows.ts's finishThroughWindows, less now); null where no window opens again.
   */
  throughWindows?: (workMs: number) => number | null;
  /** What the runs before this one did (BackfillCarry.before); absent: none, or not kept. */
  before?: PaceSoFar;
};

/** How much of `spans` (an open one: until now) lies within [from, to]. */
export function heldWithin(spans: ReadonlyArray<readonly [from: number, to: number | null]>, from: number, to: number): number {
  return spans.reduce((sum, [start, end]) => sum + Math.max(0, Math.min(end ?? Infinity, to) - Math.max(start, from)), 0);
}

/** The time from the first start to the last finish, less the time paused within it; null before both are known. */
export function workSpanMs(stats: Pick<NodeStats, 'firstStartedAt' | 'lastFinishedAt' | 'pausedMs'>): number | null {
  if (stats.firstStartedAt === null || stats.lastFinishedAt === null) return null;
  return Math.max(0, stats.lastFinishedAt - stats.firstStartedAt - (stats.pausedMs ?? 0));
}

/**
 * The shortest work span a pace is told from: over less, a first partition of 10 ms reads as
 * 100/s, which says nothing of the partitions to come (nor, then, of the ETA). It holds for
 * work that is done too: a node of one 10 ms partition did not go at 100/s (nor, at 19 ms, at
 * 52.6/s above a rate of 20/s). Such a node (the example's nodes finish in under a second)
 * shows no throughput, and its ETA says done all the same (`etaOf`: nothing left).
 */
export const MIN_PACE_SPAN_MS = 1000;

/** The work span (`workSpanMs`) once it is long enough to tell a pace from; null before. */
export function paceSpanMs(stats: Pick<NodeStats, 'firstStartedAt' | 'lastFinishedAt' | 'pausedMs'>): number | null {
  const span = workSpanMs(stats);
  return span !== null && span >= MIN_PACE_SPAN_MS ? span : null;
}

/** Partitions per second over the time worked (`paceSpanMs`), or null before it is known. */
function throughputOf(completed: number, spanMs: number | null): number | null {
  if (completed === 0 || spanMs === null) return null;
  return completed / (spanMs / 1000);
}

/**
 * What the backfill completed, over how long it worked (the time held left out), up to its last
 * finish: this run's reports (those of partitions started after `before`'s last finish), and the
 * runs before it (`before`). Null before anything finished. A retry-failed of a completed backfill
 * once showed `5,946/5,946 done · 90.6/s` under a rate of 60/s: the throughput of its 165 retried
 * partitions in 1.8 s (32.7/s over the whole backfill before); and a node the retry did not run
 * again stretched the span over the time between the runs.
 */
export function paceSoFar(reports: Readonly<Record<string, NodeStats>>, held: ProgressInputs['held'], before?: PaceSoFar): PaceSoFar | null {
  const reported = Object.values(reports).filter((r) => !before || (r.firstStartedAt !== null && r.firstStartedAt > before.lastFinishedAt));
  const completed = reported.reduce((acc, r) => acc + r.completed, 0);
  const firsts = reported.map((r) => r.firstStartedAt).filter((v): v is number => v !== null);
  const lasts = reported.map((r) => r.lastFinishedAt).filter((v): v is number => v !== null);
  const first = firsts.length > 0 ? Math.min(...firsts) : null;
  const last = lasts.length > 0 ? Math.max(...lasts) : null;
  // What every node was paused for is a floor only: a node that finished before a pause counts none of it.
  // The backfill's own held spans count it all (a run from before they were kept has the floor alone).
  const everyNode = reported.length > 0 ? Math.min(...reported.map((r) => r.pausedMs ?? 0)) : 0;
  const pausedMs = first !== null && last !== null && held ? Math.max(everyNode, heldWithin(held, first, last)) : everyNode;
  const span = workSpanMs({ firstStartedAt: first, lastFinishedAt: last, pausedMs });
  const run = completed > 0 && span !== null && last !== null ? { completed, workMs: span, lastFinishedAt: last } : null;
  if (!before) return run;
  if (!run) return before;
  return { completed: before.completed + run.completed, workMs: before.workMs + run.workMs, lastFinishedAt: run.lastFinishedAt };
}

/** States in which nothing starts until someone, or the clock, lets it. */
const HELD: readonly BackfillState[] = ['awaiting_approval', 'waiting_for_window', 'awaiting_canary'];

/** Paused (by an operator or a spent budget) or held: nothing says when it goes on, so no ETA does. */
export function isHeld(progress: Pick<Progress, 'paused' | 'state'>): boolean {
  return progress.paused || HELD.includes(progress.state);
}

/**
 * The ETAs with the hours the run windows are closed on top (work that needs more than is left
 * of tonight's window is done in the next one); null where no window opens again.
 */
export function throughWindows(progress: Progress, takes: ProgressInputs['throughWindows']): Progress {
  if (!takes) return progress;
  const through = (eta: number | null) => {
    if (eta === null || eta === 0) return eta;
    const ms = takes(eta * 1000);
    return ms === null ? null : Math.round(ms / 100) / 10;
  };
  return { ...progress, etaSeconds: through(progress.etaSeconds), nodes: progress.nodes.map((n) => ({ ...n, etaSeconds: through(n.etaSeconds) })) };
}

/** No ETA, but what is done stays done. */
export function withoutEta(progress: Progress): Progress {
  const held = (eta: number | null) => (eta === 0 ? 0 : null);
  return { ...progress, etaSeconds: held(progress.etaSeconds), nodes: progress.nodes.map((n) => ({ ...n, etaSeconds: held(n.etaSeconds) })) };
}

/**
 * Seconds until what is left is done: 0 once nothing is left, null while the pace is unknown or
 * all that is left cannot run (blocked or failed): such a node is not done.
 */
function etaOf(left: number, runnable: number, throughput: number | null): number | null {
  if (left === 0) return 0;
  if (runnable === 0) return null;
  return throughput ? runnable / throughput : null;
}

/**
 * The backfill's ETA: the slowest node bounds it. While a node with work left has no ETA yet,
 * what is left over the whole backfill's throughput (`overall`) stands in for it, but never ends
 * the backfill before a node that has one: the Web UI's details said `ETA 3m` over a table whose
 * daily node said `ETA 7m`.
 */
export function backfillEta(nodes: readonly Pick<NodeProgress, 'total' | 'done' | 'failed' | 'blocked' | 'etaSeconds'>[], overall: number | null): number | null {
  const slowest = Math.max(0, ...nodes.map((n) => n.etaSeconds ?? 0));
  const unknown = nodes.some((n) => n.etaSeconds === null && n.total - n.done - n.failed - n.blocked > 0);
  if (!unknown) return nodes.every((n) => n.total === n.done + n.failed + n.blocked) ? overall : slowest;
  return overall === null ? null : Math.max(overall, slowest);
}

const EXAMPLES = 3;

export function progressOf(inputs: ProgressInputs): Progress {
  const { plan, readiness, reports } = inputs;
  const nodes: NodeProgress[] = plan.nodes.map((node) => {
    const counts = readiness.counts(node.id);
    const report = reports[node.id];
    const running = Math.min(report?.running ?? 0, counts.inHands);
    const settings = inputs.lastSettings.get(node.id);
    const remaining = counts.total - counts.done - counts.failed - counts.blocked;
    const throughput = report ? throughputOf(report.completed, paceSpanMs(report)) : null;
    return {
      id: node.id,
      dependsOn: node.upstream.map((edge) => edge.node),
      total: counts.total,
      done: counts.done,
      running,
      failed: counts.failed,
      blocked: counts.blocked,
      pending: counts.total - counts.done - counts.failed - counts.blocked - running,
      // Before its first settings reach it (just after the start), a node runs at its spec's limits.
      rate: report?.rate !== undefined ? report.rate : settings ? settings.rate : (node.spec.rate ?? null),
      concurrency: settings?.concurrency ?? node.spec.concurrency,
      throttles: report?.throttles ?? 0,
      inHands: counts.inHands,
      throughput,
      etaSeconds: etaOf(counts.total - counts.done, remaining, throughput),
      failures: (inputs.failures[node.id] ?? []).map((group) => {
        const ranges = RangeSet.fromJSON(group.ranges);
        const examples: string[] = [];
        for (const index of ranges) {
          if (examples.length >= EXAMPLES) break;
          examples.push(node.partitions.key(index));
        }
        return { message: group.message, type: group.type, partitions: ranges.size, examples };
      }),
    };
  });
  const sum = (pick: (n: NodeProgress) => number) => nodes.reduce((acc, n) => acc + pick(n), 0);
  const total = sum((n) => n.total);
  const done = sum((n) => n.done);
  const failed = sum((n) => n.failed);
  const blocked = sum((n) => n.blocked);
  const pace = paceSoFar(reports, inputs.held, inputs.before);
  const throughput = throughputOf(pace?.completed ?? 0, pace && pace.workMs >= MIN_PACE_SPAN_MS ? pace.workMs : null);
  const running = sum((n) => n.running);
  const progress: Progress = {
    backfillId: inputs.backfillId,
    name: inputs.name,
    state: inputs.state,
    paused: inputs.paused,
    rate: inputs.limits.rate,
    concurrency: inputs.limits.concurrency,
    total,
    done,
    running,
    failed,
    blocked,
    pending: total - done - failed - blocked - running,
    throughput,
    etaSeconds: backfillEta(nodes, etaOf(total - done, total - done - failed - blocked, throughput)),
    runs: inputs.runs,
    nodes,
  };
  return isHeld(progress) ? withoutEta(progress) : throughWindows(progress, inputs.throughWindows);
}
