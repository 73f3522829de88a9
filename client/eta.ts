/**
 * `status`'s ETA: the simulation of `plan --estimate` (core/estimate.ts), started from the
 * backfill's state now (what is done, failed, in hands) and driven by live figures: each
 * node's time per partition as this run has achieved it, under its current limits.
 *
 * A node's live figure is the time a slot of it took per partition (its concurrency times the
 * time between its first start and its last finish less the time it was paused, over the
 * partitions it completed; a slot runs a batch's partitions one after another), so it
 * already holds the orchestration costs per activity: the simulation adds only the signal
 * hops and report interval between nodes. A node that has not completed a partition yet takes
 * the figure of the nodes with the same transform, else of all the measured ones; with none
 * measured there is no ETA yet.
 */
import { DEFAULT_OVERHEAD, simulate, type NodeTiming, type OverheadModel, type SimulationInput } from '../core/estimate.ts';
import type { GovernanceJSON } from '../core/governance.ts';
import type { Plan, PlanNode } from '../core/plan.ts';
import { RangeSet } from '../core/ranges.ts';
import type { ResolvedSpec } from '../core/spec.ts';
import { isHeld, paceSpanMs, withoutEta } from '../core/progress.ts';
import type { BackfillCarry, NodeProgress, NodeStats, Progress } from '../core/protocol.ts';
import type { Waiting } from './waiting.ts';

/** The orchestration the live figures do not hold: what passes between nodes, and the end. */
export const LIVE_OVERHEAD: OverheadModel = { ...DEFAULT_OVERHEAD, startMs: 0, activityMs: 0, activityCostMs: 0, partitionCostMs: 0 };

/** A node's time per partition in a slot, as this run achieved it; null before it completed one over a span that tells a pace (`paceSpanMs`, as the throughput). */
export function liveTiming(stats: NodeStats | undefined, batchSize: number | 'auto'): number | null {
  const span = stats && stats.completed > 0 ? paceSpanMs(stats) : null;
  if (!stats || span === null) return null;
  // A slot runs its batch's partitions one after another (as the simulation does), so the batch
  // size does not multiply the slots; it only says how few of them worked while the node had run
  // fewer batches than it has slots (an automatic batch size as the node last reported it).
  const size = batchSize === 'auto' ? (stats.batchSize ?? 1) : batchSize;
  const slots = Math.min(stats.concurrency, Math.ceil(stats.completed / size));
  return (slots * span) / stats.completed;
}

/** `lastFinishedAt`: when a partition of the backfill last finished (the nodes' reports; absent before one did). */
export type LiveEta = { etaSeconds: number | null; nodes: Record<string, number | null>; lastFinishedAt?: number };

/**
 * Whether any node has a live figure yet (whatever its batch size). Until one has, there is no
 * live ETA, and the caller need not expand the plan to learn so (for a large backfill, the
 * plan is most of what the ETA would cost).
 */
export function anyMeasured(reports: BackfillCarry['reports']): boolean {
  return Object.values(reports).some((stats) => liveTiming(stats, 1) !== null);
}

/** No live ETA (yet): `withLiveEta` leaves the progress as it is. */
export const NO_LIVE_ETA: LiveEta = { etaSeconds: null, nodes: {} };

/**
 * The run windows (the spec's and the policy's) a running backfill's carry holds, as the ETA's
 * simulation follows them from `now`; undefined without windows. core/windows.ts (and zod with it)
 * is loaded only for a backfill that has some.
 */
export async function liveWindows(governance: Pick<GovernanceJSON, 'windows'> | undefined, now = Date.now()): Promise<SimulationInput['windows']> {
  if (!governance || governance.windows.length === 0) return undefined;
  const { RunWindows, windowedLimits } = await import('../core/windows.ts');
  return { startAt: now, limitsAt: windowedLimits(governance.windows.map((w) => new RunWindows(w))) };
}

/**
 * The ETA of a running backfill, from its plan and its carried state (the `carry` query); under
 * run windows (`liveWindows`), nothing starts while they are closed.
 */
export function liveEta(plan: Plan, carry: Pick<BackfillCarry, 'readiness' | 'reports' | 'limits' | 'overrides'>, windows?: SimulationInput['windows']): LiveEta {
  const measured = new Map<string, number>();
  for (const node of plan.nodes) {
    const ms = liveTiming(carry.reports[node.id], node.spec.batchSize);
    if (ms !== null) measured.set(node.id, ms);
  }
  if (measured.size === 0) return { etaSeconds: null, nodes: Object.fromEntries(plan.nodes.map((n) => [n.id, null])) };
  const bound = new Set(plan.nodes.filter((n) => measured.has(n.id) && upstreamBound(n, carry)).map((n) => n.id));
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  // A figure of the nodes like `node` among `figures`: those with the same transform, else all; null among none.
  const like = (node: PlanNode, figures: ReadonlyMap<string, number>, among: (id: string) => boolean = () => true): number | null => {
    const from = plan.nodes.filter((n) => figures.has(n.id) && among(n.id));
    const alike = from.filter((n) => n.spec.transform === node.spec.transform);
    const chosen = (alike.length > 0 ? alike : from).map((n) => figures.get(n.id)!);
    return chosen.length > 0 ? mean(chosen) : null;
  };
  // A node bound by its upstream takes the figure of the nodes that were not, where that is
  // shorter: its own holds the time its slots waited for work, which its remaining partitions,
  // once released, do not wait. A node not measured yet takes these figures.
  const figures = new Map<string, number>();
  for (const [id, own] of measured) {
    const free = bound.has(id) ? like(plan.nodes.find((n) => n.id === id)!, measured, (other) => !bound.has(other)) : null;
    figures.set(id, free === null ? own : Math.min(own, free));
  }
  const timings = new Map<string, NodeTiming>();
  for (const node of plan.nodes) timings.set(node.id, { meanMs: figures.get(node.id) ?? like(node, figures)! });
  const forecast = simulate({ plan, limits: carry.limits, overrides: throttledRates(carry), timings, overhead: LIVE_OVERHEAD, from: carry.readiness, ...(windows ? { windows } : {}) });
  const finishes = Object.values(carry.reports).flatMap((stats) => (typeof stats?.lastFinishedAt === 'number' ? [stats.lastFinishedAt] : []));
  return {
    ...(finishes.length > 0 ? { lastFinishedAt: Math.max(...finishes) } : {}),
    etaSeconds: Math.round(forecast.wallMs / 100) / 10,
    nodes: Object.fromEntries(forecast.nodes.map((n) => [n.id, n.finishMs === null ? null : Math.round(n.finishMs / 100) / 10])),
  };
}

/**
 * Whether a node's pace so far was bounded by its upstream rather than by itself: it has fewer
 * partitions in hands than fill its slots (it keeps up with what its upstream releases, and its
 * slots wait), while an upstream node of it was still finishing partitions after its own first
 * start. Its figure (`liveTiming`) then holds those waits: a weekly rollup that finished 17 of 18
 * weeks in 40 s, 8 at a time, measured 18.8 s a week, and its last week, released once the last
 * day was done, was given those 18.8 s (it took a fraction of a second); `status` said 44 s for a
 * run that ended in 6. A node that had a backlog (a resumed run whose upstream is done) is not.
 */
export function upstreamBound(node: PlanNode, carry: Pick<BackfillCarry, 'readiness' | 'reports'>): boolean {
  const stats = carry.reports[node.id];
  const started = stats?.firstStartedAt ?? null;
  if (!stats || started === null || node.upstream.length === 0) return false;
  const fedMeanwhile = node.upstream.some((edge) => (carry.reports[edge.node]?.lastFinishedAt ?? -Infinity) > started);
  if (!fedMeanwhile) return false;
  const size = node.spec.batchSize === 'auto' ? (stats.batchSize ?? 1) : node.spec.batchSize;
  return RangeSet.fromJSON(carry.readiness[node.id]?.inHands).size < stats.concurrency * size;
}

/**
 * The node limits the simulation runs under: a node the downstream system throttled goes on at
 * the pace it was slowed to (its report's `rate`), not its own rate, which it climbs back to only
 * slowly (by a twentieth a second) and not at all while throttles keep coming. Before, a node held
 * at 0.3/s by throttles was given 140 partitions' ETA of 81 s at its own rate; they took minutes.
 */
export function throttledRates(carry: Pick<BackfillCarry, 'reports' | 'overrides'>): NonNullable<BackfillCarry['overrides']> {
  const overrides = { ...carry.overrides };
  for (const [id, stats] of Object.entries(carry.reports)) {
    if (!stats || stats.throttles === 0 || stats.rate === null) continue;
    const own = overrides[id]?.rate;
    overrides[id] = { ...overrides[id], rate: own === undefined || own === null ? stats.rate : Math.min(own, stats.rate) };
  }
  return overrides;
}

/** The progress with the live ETA in place of the throughput-based one (`etaSeconds`, overall and per node); none while paused or held. */
export function withLiveEta(progress: Progress, eta: LiveEta): Progress {
  if (isHeld(progress)) return withoutEta(progress);
  if (eta.etaSeconds === null) return progress;
  const nodes = progress.nodes.map((n) => (n.id in eta.nodes ? { ...n, etaSeconds: eta.nodes[n.id] ?? n.etaSeconds } : n));
  // The backfill ends after its slowest node: a node the simulation ran nothing for keeps the
  // progress's ETA, which may be the later one.
  return { ...progress, etaSeconds: Math.max(eta.etaSeconds, ...nodes.map((n) => n.etaSeconds ?? 0)), nodes };
}

/**
 * No ETA for a node whose work waits on a task queue no worker polls (`waiting`'s `no_worker`),
 * nor for the nodes downstream of it that are not done (when the spec says which: they wait on
 * it), nor for the backfill, which ends only after that work: nothing says when a worker comes.
 * Workers that only went silent may be busy on every slot: their nodes keep theirs.
 */
export function withoutEtaWithoutWorker(progress: Progress, waiting: readonly Waiting[], spec?: Pick<ResolvedSpec, 'nodes'>): Progress {
  const stuck = new Set(waiting.filter((w) => w.reason === 'no_worker').map((w) => w.node));
  if (stuck.size === 0) return progress;
  for (let grew = spec !== undefined; grew; ) {
    grew = false;
    for (const node of spec!.nodes) {
      // A spec read from a history: one a hand-made start gave may lack what a resolved spec has.
      if (stuck.has(node.id) || !(node.dependsOn ?? []).some((d) => stuck.has(d.node))) continue;
      stuck.add(node.id);
      grew = true;
    }
  }
  return { ...progress, etaSeconds: null, nodes: progress.nodes.map((n) => (stuck.has(n.id) && n.etaSeconds !== 0 ? { ...n, etaSeconds: null } : n)) };
}

/** How long a live ETA is reused (counting down) before the simulation runs again (a short one, half its length): `status --watch` looks every second. */
export const ETA_REFRESH_MS = 5000;

/** Live ETAs by backfill, computed at most every ETA_REFRESH_MS and counted down in between. */
export class LiveEtas {
  private readonly cache = new Map<string, { at: number; eta: LiveEta }>();

  async get(backfillId: string, compute: () => Promise<LiveEta>, now = Date.now()): Promise<LiveEta> {
    const cached = this.cache.get(backfillId);
    // A short ETA is counted down for half of itself at most: counted to nothing, it said `<1s`
    // with 622 partitions (3.6 s at the run's pace) left, until the next simulation.
    const counted = cached?.eta.etaSeconds ?? null;
    const reuseMs = counted === null ? ETA_REFRESH_MS : Math.min(ETA_REFRESH_MS, counted * 500);
    if (cached && now - cached.at < reuseMs) {
      const elapsed = (now - cached.at) / 1000;
      const less = (s: number | null) => (s === null ? null : Math.max(0, Math.round((s - elapsed) * 10) / 10));
      return {
        ...(cached.eta.lastFinishedAt !== undefined ? { lastFinishedAt: cached.eta.lastFinishedAt } : {}),
        etaSeconds: less(cached.eta.etaSeconds),
        nodes: Object.fromEntries(Object.entries(cached.eta.nodes).map(([id, s]) => [id, less(s)])),
      };
    }
    const eta = await compute();
    this.cache.set(backfillId, { at: now, eta });
    return eta;
  }
}

/** The least time without a finished partition that counts as a stall, whatever the pace. */
export const STALL_MIN_MS = 60_000;
/** A stall is also this many times the pace's time between two finished partitions. */
export const STALL_INTERVALS = 10;

/**
 * A running backfill with work left whose last partition finished long ago (a minute, or ten
 * times its pace's time between two): its throughput and ETA were measured up to that finish,
 * so they stood still while nothing moved (a new user's status said `6.3/s · ETA 11m 24s` for
 * minutes after the only worker of a queue stopped). It shows no ETA then, and says for how long
 * nothing finished (`stalledSeconds`). Held (paused, a window, an approval), it waits by design.
 */
export function withStall(progress: Progress, eta: Pick<LiveEta, 'lastFinishedAt'> | null, now = Date.now()): Progress & { stalledSeconds?: number } {
  const last = eta?.lastFinishedAt;
  if (last === undefined || progress.state !== 'running' || isHeld(progress) || progress.pending + progress.running === 0) return progress;
  const idleMs = now - last;
  const intervalMs = progress.throughput !== null && progress.throughput > 0 ? 1000 / progress.throughput : 0;
  if (idleMs < Math.max(STALL_MIN_MS, STALL_INTERVALS * intervalMs)) return progress;
  const left = (n: Pick<NodeProgress, 'total' | 'done' | 'failed' | 'blocked'>) => n.total - n.done - n.failed - n.blocked > 0;
  return {
    ...progress,
    etaSeconds: null,
    nodes: progress.nodes.map((n) => (left(n) ? { ...n, etaSeconds: null } : n)),
    stalledSeconds: Math.round(idleMs / 1000),
  };
}
