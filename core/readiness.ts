/**
 * Partition-level readiness for a whole plan: the parent workflow's bookkeeping.
 *
 * Each node's partitions are, at any moment, exactly one of:
 *   done      completed and published
 *   failed    gave up after its retries
 *   in hands  released to the node's workflow (queued there or running)
 *   blocked   not released, and waits (directly or not) on a failed partition
 *   waiting   not released, and waits only on partitions that are still to come
 *
 * A partition is released the moment every upstream partition it needs is done, never
 * earlier and never twice. Because release is eager, the whole backfill has settled
 * (nothing more can happen without an operator) exactly when no node has partitions in hands.
 */
import type { Plan, PlanEdge, PlanNode } from './plan.ts';
import { RangeSet, type RangesJSON } from './ranges.ts';

/** A node's readiness as carried: done, failed, and released but neither (in hands); without `inHands`, a fresh start from `done`. */
export type NodeReadinessJSON = { done: RangesJSON; failed?: RangesJSON; inHands?: RangesJSON };
export type ReadinessJSON = Record<string, NodeReadinessJSON>;

type NodeState = { done: RangeSet; failed: RangeSet; released: RangeSet };

export type NodeCounts = {
  total: number;
  done: number;
  failed: number;
  /** Released and neither done nor failed: queued in the node's workflow or running. */
  inHands: number;
  blocked: number;
  /** Not released and not blocked: waiting for upstream partitions. */
  waiting: number;
};

export class Readiness {
  private readonly states = new Map<string, NodeState>();
  private blockedCache: Map<string, RangeSet> | undefined;
  /** A canary's slice, by node: while set, nothing outside it is released (see `limitTo`). */
  private scope: ReadonlyMap<string, RangeSet> | null = null;

  /**
   * `state` restores a previous run. Without `inHands` (a fresh run that resumes from the
   * done partitions of an earlier one) everything not done is considered again.
   */
  constructor(
    private readonly plan: Plan,
    state: ReadinessJSON = {},
  ) {
    for (const node of plan.nodes) {
      const saved = state[node.id];
      const done = RangeSet.fromJSON(saved?.done);
      const carried = saved?.inHands !== undefined;
      // A fresh start considers earlier failures again too: they are released anew, so they
      // must not also stay failed (they would be counted twice and never be in hands).
      const failed = carried ? RangeSet.fromJSON(saved.failed) : new RangeSet();
      const released = done.clone().addAll(failed);
      if (carried) released.addAll(RangeSet.fromJSON(saved.inHands));
      this.states.set(node.id, { done, failed, released });
    }
  }

  private state(nodeId: string): NodeState {
    const state = this.states.get(nodeId);
    if (!state) throw new RangeError(`unknown node '${nodeId}'`);
    return state;
  }

  /** True when every upstream partition that partition `j` of `node` needs is done. */
  private depsDone(node: PlanNode, j: number): boolean {
    return node.upstream.every((edge) => this.state(edge.node).done.containsRange(edge.lo[j]!, edge.hi[j]!));
  }

  /**
   * A canary: only the partitions of `scope` are released until `lift`; the others wait as if
   * their upstream were still to come. Set before anything is released.
   */
  limitTo(scope: ReadonlyMap<string, RangeSet>): void {
    this.scope = scope;
  }

  /** A canary's slice limits what is released. */
  get limited(): boolean {
    return this.scope !== null;
  }

  /** The canary is approved: every partition whose dependencies are done is released now, by node. */
  lift(): Map<string, RangeSet> {
    this.scope = null;
    return this.releaseAll();
  }

  /** Releases, among `candidates` of `node`, those not yet released whose dependencies are done. */
  private releaseReady(node: PlanNode, candidates: RangeSet): RangeSet {
    const state = this.state(node.id);
    const ready = new RangeSet();
    const limit = this.scope?.get(node.id);
    // candidates ∩ scope
    const within = this.scope ? candidates.minus(candidates.minus(limit ?? new RangeSet())) : candidates;
    for (const [start, end] of within.minus(state.released).ranges()) {
      for (let j = start; j < end; j++) if (this.depsDone(node, j)) ready.add(j);
    }
    state.released.addAll(ready);
    return ready;
  }

  /** Downstream partitions whose dependency range on `edge` meets [start, end). */
  private static dependents(edge: PlanEdge, start: number, end: number, size: number): [number, number] {
    if (!edge.monotone) return [0, size];
    // First j with hi[j] > start, and first j with lo[j] >= end.
    let a = 0;
    let b = size;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (edge.hi[mid]! > start) b = mid;
      else a = mid + 1;
    }
    const first = a;
    b = size;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (edge.lo[mid]! >= end) b = mid;
      else a = mid + 1;
    }
    return [first, a];
  }

  /**
   * Releases every partition whose dependencies are already done and that has not been
   * released: at the start of a run, everything with no pending upstream.
   */
  releaseAll(): Map<string, RangeSet> {
    const out = new Map<string, RangeSet>();
    for (const node of this.plan.nodes) {
      const ready = this.releaseReady(node, RangeSet.of([0, node.partitions.size]));
      if (!ready.isEmpty) out.set(node.id, ready);
    }
    this.blockedCache = undefined;
    return out;
  }

  /** Records done partitions; returns the downstream partitions this released, by node. */
  markDone(nodeId: string, done: RangeSet): Map<string, RangeSet> {
    const state = this.state(nodeId);
    const fresh = done.minus(state.done);
    state.done.addAll(fresh);
    state.failed.deleteAll(fresh);
    state.released.addAll(fresh);
    this.blockedCache = undefined;
    const out = new Map<string, RangeSet>();
    if (fresh.isEmpty) return out;
    const upstream = this.plan.byId.get(nodeId)!;
    for (const downId of upstream.downstream) {
      const down = this.plan.byId.get(downId)!;
      const edge = down.upstream.find((e) => e.node === nodeId)!;
      const candidates = new RangeSet();
      for (const [start, end] of fresh.ranges()) {
        const [a, b] = Readiness.dependents(edge, start, end, down.partitions.size);
        candidates.addRange(a, b);
      }
      const ready = this.releaseReady(down, candidates);
      if (!ready.isEmpty) out.set(downId, ready);
    }
    return out;
  }

  /** Records partitions that gave up; done partitions stay done. */
  markFailed(nodeId: string, failed: RangeSet): void {
    const state = this.state(nodeId);
    const fresh = failed.minus(state.done);
    state.failed.addAll(fresh);
    state.released.addAll(fresh);
    this.blockedCache = undefined;
  }

  /**
   * Forgets the failures of `nodeId` (or of every node) and returns, by node, the failed
   * partitions, which are handed back to their node's workflow to run again. Their blocked
   * downstream partitions are released as they complete.
   */
  retryFailed(nodeId?: string): Map<string, RangeSet> {
    const out = new Map<string, RangeSet>();
    for (const node of this.plan.nodes) {
      if (nodeId !== undefined && node.id !== nodeId) continue;
      const state = this.state(node.id);
      if (state.failed.isEmpty) continue;
      out.set(node.id, state.failed);
      state.failed = new RangeSet();
    }
    this.blockedCache = undefined;
    return out;
  }

  /** Partitions that wait, directly or through other blocked partitions, on a failed one. */
  blocked(nodeId: string): RangeSet {
    if (!this.blockedCache) {
      const cache = new Map<string, RangeSet>();
      for (const node of this.plan.nodes) {
        const blocked = new RangeSet();
        const state = this.state(node.id);
        const bad = node.upstream.map((edge) => ({
          edge,
          bad: this.state(edge.node).failed.clone().addAll(cache.get(edge.node)!),
        }));
        if (bad.some((b) => !b.bad.isEmpty)) {
          const unreleased = RangeSet.of([0, node.partitions.size]).deleteAll(state.released);
          for (const j of unreleased) {
            if (bad.some(({ edge, bad: set }) => set.intersectsRange(edge.lo[j]!, edge.hi[j]!))) blocked.add(j);
          }
        }
        cache.set(node.id, blocked);
      }
      this.blockedCache = cache;
    }
    const blocked = this.blockedCache.get(nodeId);
    if (!blocked) throw new RangeError(`unknown node '${nodeId}'`);
    return blocked;
  }

  done(nodeId: string): RangeSet {
    return this.state(nodeId).done;
  }

  failed(nodeId: string): RangeSet {
    return this.state(nodeId).failed;
  }

  /** True when some released partition is neither done nor failed (cheap: done and failed are disjoint parts of released). */
  hasInHands(nodeId: string): boolean {
    const state = this.state(nodeId);
    return state.released.size > state.done.size + state.failed.size;
  }

  /**
   * True when every partition of the node is done, failed or blocked (nothing pending or running):
   * what `nodeSettled` (core/lineage-calls.ts) says of its progress, without building it.
   */
  nodeSettled(nodeId: string): boolean {
    if (this.hasInHands(nodeId)) return false;
    const released = this.state(nodeId).released.size;
    const total = this.plan.byId.get(nodeId)!.partitions.size;
    // Blocked partitions are unreleased ones: looked for only when some are unreleased.
    return released >= total || released + this.blocked(nodeId).size >= total;
  }

  /** Released partitions that are neither done nor failed. */
  inHands(nodeId: string): RangeSet {
    const state = this.state(nodeId);
    return state.released.minus(state.done).deleteAll(state.failed);
  }

  counts(nodeId: string): NodeCounts {
    const state = this.state(nodeId);
    const total = this.plan.byId.get(nodeId)!.partitions.size;
    // done and failed are disjoint parts of released.
    const inHands = state.released.size - state.done.size - state.failed.size;
    const blocked = this.blocked(nodeId).size;
    return {
      total,
      done: state.done.size,
      failed: state.failed.size,
      inHands,
      blocked,
      waiting: total - state.released.size - blocked,
    };
  }

  /** Nothing is in hands anywhere: no partition can complete until an operator acts. */
  get settled(): boolean {
    return this.plan.nodes.every((node) => !this.hasInHands(node.id));
  }

  toJSON(): ReadinessJSON {
    const out: ReadinessJSON = {};
    for (const [id, state] of this.states) {
      out[id] = { done: state.done.toJSON(), failed: state.failed.toJSON(), inHands: this.inHands(id).toJSON() };
    }
    return out;
  }
}

/**
 * The readiness a new run starts from when it resumes a run that has ended (no node workflow
 * of it is alive): what is done stays done; the failures of `retry` (a node id, or every node
 * when undefined) are considered again; the other nodes keep theirs. Nothing is in hands: the
 * partitions an ended run had released but not finished were held by node workflows that are
 * gone, so the new run must release them again (a carried `inHands` would count them as
 * released, and no node workflow of the new run would ever get them).
 */
export function resumedReadiness(state: ReadinessJSON, retry?: string): ReadinessJSON {
  return Object.fromEntries(
    Object.entries(state).map(([id, node]): [string, NodeReadinessJSON] =>
      // Without `inHands`, a node starts afresh from what is done (its failures run again);
      // an empty `inHands` keeps its failures failed.
      retry === undefined || id === retry ? [id, { done: node.done }] : [id, { done: node.done, failed: node.failed ?? '', inHands: '' }],
    ),
  );
}

/**
 * What `retry-failed` of a whole ended run (`state`, its carried readiness) sends back: its
 * failed partitions, and those blocked behind them, which run once the failures are done.
 */
export function retryCounts(plan: Plan, state: ReadinessJSON): { failed: number; blocked: number } {
  // As the ended run left it: its failures stay failed (with `inHands`), so what they block counts as blocked.
  const settled = Object.fromEntries(Object.entries(state).map(([id, node]) => [id, { ...node, inHands: node.inHands ?? '' }]));
  const readiness = new Readiness(plan, settled);
  return plan.nodes.reduce(
    (sum, node) => {
      const counts = readiness.counts(node.id);
      return { failed: sum.failed + counts.failed, blocked: sum.blocked + counts.blocked };
    },
    { failed: 0, blocked: 0 },
  );
}

/**
 * Whether the run `resumedReadiness(state, retry)` makes of a run that had settled (every
 * partition done, failed, or blocked by a failure) hands its node workflows anything: the
 * failures it retries (then what they blocked), or what the ended run still had in hands.
 */
export function resumeRunsAgain(state: ReadinessJSON, retry?: string): boolean {
  return Object.entries(state).some(
    ([id, node]) => (retry === undefined || id === retry) && !(RangeSet.fromJSON(node.failed).isEmpty && RangeSet.fromJSON(node.inHands).isEmpty),
  );
}
