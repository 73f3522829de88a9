/**
 * Rolling a backfill back: the messages between the client, `rollbackWorkflow` and its batch
 * activity, and the summary they add up to. Plain JSON, deterministic, no I/O.
 */

/** Where a batch of partitions ends, in (node, partition) order: the next batch starts after it. */
export type RollbackCursor = { node: string; partition: string };

export type RollbackTuning = {
  /** Partitions restored per activity. */
  batchSize: number;
  /** A batch that stops heartbeating this long is presumed lost with its worker, and retried. */
  heartbeatTimeout: string;
  /** A run continues as new once its history has this many events (or the server suggests it). */
  historyLimit: number;
};

export const DEFAULT_ROLLBACK_TUNING: RollbackTuning = { batchSize: 200, heartbeatTimeout: '30s', historyLimit: 3000 };

/** How many partitions left alone a summary lists; the rest are counted. */
export const MAX_LEFT_ALONE_EXAMPLES = 100;

export type RollbackCounts = {
  /** Moved back to the version before the backfill (checksum verified). */
  restored: number;
  /** Created by the backfill: no longer published. */
  removed: number;
  /** Already at the version before the backfill. */
  alreadyRestored: number;
  /** Changed since by a later backfill: left as they are (without force). */
  leftAlone: number;
  /** Restored with force over a later backfill's version (also counted as restored or removed). */
  forced: number;
  /**
   * Undone before by another backfill's rollback (forced, mostly): nothing of the backfill is
   * published there, so nothing is done. Missing from summaries made before it was counted.
   */
  undone: number;
};

/** How many partitions of the backfill one rollback of another backfill undid (`undone`). */
export type UndoneCount = { rollbackId: string; backfillId: string; forced: boolean; partitions: number };

/** A partition a later backfill changed, which the rollback left alone. */
export type LeftAlone = { node: string; partition: string; version: number; currentVersion: number | null; changedBy: string | null };

export type NodeRollback = RollbackCounts & { node: string };

export type RollbackSummary = RollbackCounts & {
  backfillId: string;
  rollbackId: string;
  force: boolean;
  /** Per node, in the order they were rolled back. */
  nodes: NodeRollback[];
  /** The backfills that changed the partitions left alone, with how many each (`null`: no longer published). */
  changedBy: Record<string, number>;
  /** The first partitions left alone, up to MAX_LEFT_ALONE_EXAMPLES. */
  leftAloneExamples: LeftAlone[];
  /** Which rollbacks of other backfills undid the partitions counted `undone` (missing in older summaries). */
  undoneBy?: UndoneCount[];
  /** Workflow runs it took (continue-as-new). */
  runs: number;
  /** Neither the server nor the ledger of the workers' warehouse knows the backfill: nothing was looked at (the client refuses it, `not_found`). */
  notFound?: true;
};

/**
 * What `status` says of a backfill's rollback since its latest run began: the backfill's own
 * workflow still says it completed, but its partitions are back at their versions before it.
 */
export type StatusRollback = {
  /** `failed`: it stopped short (failed, cancelled, terminated); what it restored stays restored. */
  state: 'running' | 'completed' | 'failed';
  /** When it ended; null while it runs. */
  endedAt: string | null;
  /** Who asked for it (the client's declared identity), when it says. */
  by: string | null;
  /** The summary's counts, once it completed. */
  counts: Pick<RollbackCounts, 'restored' | 'removed' | 'alreadyRestored' | 'leftAlone'> | null;
};

export type RollbackCarry = { summary: RollbackSummary; nodeIndex: number; after: RollbackCursor | null };

export type RollbackInput = {
  backfillId: string;
  /** Recorded in the rollback audit with every restore; a rollback retried with the same id replays what it did. */
  rollbackId: string;
  /**
   * The backfill's nodes, downstream first, as the histories of its runs that the server still
   * keeps name them (none when all are gone); the workflow adds the nodes the ledger holds
   * versions of (behind the patch rollback-from-ledger).
   */
  order: string[];
  /** Restore also the partitions a later backfill changed. */
  force: boolean;
  /** The activity task queue of each node (its workers reach its warehouse); default: the workflow's queue. */
  taskQueues?: Record<string, string>;
  tuning?: Partial<RollbackTuning>;
  carry?: RollbackCarry;
  /** Who asked for it (the client's declared identity) and why: judged by the policy, kept in the audit trail. */
  audit?: { identity?: string; reason?: string };
  /**
   * The hash of the policy the backfill was admitted under: only a worker with a policy judges the
   * rollback (core/policy-pin.ts). UNKNOWN_PIN when the backfill's history is gone.
   */
  admittedUnder?: string;
};

export type RollbackBatchInput = {
  backfillId: string;
  rollbackId: string;
  node: string;
  /** Start after this partition (null: at the node's first). */
  after: RollbackCursor | null;
  limit: number;
  force: boolean;
};

export type RollbackBatchResult = RollbackCounts & {
  changedBy: Record<string, number>;
  leftAloneExamples: LeftAlone[];
  undoneBy?: UndoneCount[];
  /** Where the next batch of the node starts; null when the node is done. */
  next: RollbackCursor | null;
};

/** What a batch activity heartbeats: a retry after a crash goes on from there. */
export type RollbackBatchProgress = { result: RollbackBatchResult; after: RollbackCursor | null; done: number };

/** Failure types of the batch activity that are not retried: the same restore would fail again. */
export const ROLLBACK_NON_RETRYABLE_TYPES = ['ChecksumMismatch', 'InvalidSpec'];

/** The key the changedBy counts use for partitions that are no longer published at all. */
export const UNPUBLISHED = '(none)';

export function rollbackWorkflowId(backfillId: string): string {
  return `backfill/${backfillId}/rollback`;
}

export function emptyCounts(): RollbackCounts {
  return { restored: 0, removed: 0, alreadyRestored: 0, leftAlone: 0, forced: 0, undone: 0 };
}

export function emptyBatch(): RollbackBatchResult {
  return { ...emptyCounts(), changedBy: {}, leftAloneExamples: [], next: null };
}

export function emptySummary(input: Pick<RollbackInput, 'backfillId' | 'rollbackId' | 'force'>): RollbackSummary {
  return { backfillId: input.backfillId, rollbackId: input.rollbackId, force: input.force, ...emptyCounts(), nodes: [], changedBy: {}, leftAloneExamples: [], runs: 1 };
}

function addCounts<T extends RollbackCounts>(into: T, from: RollbackCounts): T {
  return {
    ...into,
    restored: into.restored + from.restored,
    removed: into.removed + from.removed,
    alreadyRestored: into.alreadyRestored + from.alreadyRestored,
    leftAlone: into.leftAlone + from.leftAlone,
    forced: into.forced + from.forced,
    // Results and carries of runs before `undone` was counted have none.
    undone: (into.undone ?? 0) + (from.undone ?? 0),
  };
}

function addUndone(into: readonly UndoneCount[] | undefined, from: readonly UndoneCount[] | undefined): UndoneCount[] {
  const sum = (into ?? []).map((u) => ({ ...u }));
  for (const u of from ?? []) {
    const same = sum.find((s) => s.rollbackId === u.rollbackId);
    if (same) same.partitions += u.partitions;
    else sum.push({ ...u });
  }
  return sum;
}

function addChangedBy(into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  const sum = { ...into };
  for (const [backfill, n] of Object.entries(from)) sum[backfill] = (sum[backfill] ?? 0) + n;
  return sum;
}

/** What one restore did, added to a batch's result. */
export function addOutcome(
  batch: RollbackBatchResult,
  outcome: {
    node: string;
    partition: string;
    status: 'restored' | 'removed' | 'already_restored' | 'changed_since' | 'undone';
    found: number | null;
    foundBackfillId: string | null;
    forced: boolean;
    undoneBy?: UndoneBy;
  },
  version: number,
): RollbackBatchResult {
  const counts = emptyCounts();
  if (outcome.status === 'undone') {
    const by = outcome.undoneBy ?? { rollbackId: UNPUBLISHED, backfillId: UNPUBLISHED, forced: false };
    return { ...addCounts(batch, { ...counts, undone: 1 }), undoneBy: addUndone(batch.undoneBy, [{ ...by, partitions: 1 }]) };
  }
  if (outcome.status === 'restored') counts.restored = 1;
  if (outcome.status === 'removed') counts.removed = 1;
  if (outcome.status === 'already_restored') counts.alreadyRestored = 1;
  if (outcome.forced) counts.forced = 1;
  const next = addCounts(batch, counts);
  if (outcome.status !== 'changed_since') return next;
  const changedBy = outcome.found === null ? UNPUBLISHED : (outcome.foundBackfillId ?? UNPUBLISHED);
  const example: LeftAlone = { node: outcome.node, partition: outcome.partition, version, currentVersion: outcome.found, changedBy: outcome.foundBackfillId };
  return {
    ...next,
    leftAlone: next.leftAlone + 1,
    changedBy: addChangedBy(next.changedBy, { [changedBy]: 1 }),
    leftAloneExamples: next.leftAloneExamples.length < MAX_LEFT_ALONE_EXAMPLES ? [...next.leftAloneExamples, example] : next.leftAloneExamples,
  };
}

/** A batch's result, added to the summary under its node. */
export function addBatch(summary: RollbackSummary, node: string, batch: RollbackBatchResult): RollbackSummary {
  const counts: RollbackCounts = { restored: batch.restored, removed: batch.removed, alreadyRestored: batch.alreadyRestored, leftAlone: batch.leftAlone, forced: batch.forced, undone: batch.undone ?? 0 };
  const known = summary.nodes.some((n) => n.node === node);
  const nodes = known ? summary.nodes.map((n) => (n.node === node ? addCounts(n, counts) : n)) : [...summary.nodes, addCounts({ node, ...emptyCounts() }, counts)];
  return {
    ...addCounts(summary, counts),
    nodes,
    changedBy: addChangedBy(summary.changedBy, batch.changedBy),
    leftAloneExamples: [...summary.leftAloneExamples, ...batch.leftAloneExamples].slice(0, MAX_LEFT_ALONE_EXAMPLES),
    ...(batch.undoneBy?.length ? { undoneBy: addUndone(summary.undoneBy, batch.undoneBy) } : {}),
  };
}

/** A published version of a partition, as the walk back to a rollback's target reads it. */
export type VersionLink = { previousVersion: number | null; checksum: string | null; backfillId: string; rolledBack: boolean };

/** A version to restore (null: none, the partition is removed) and its checksum. */
export type RestoreTarget = { version: number | null; checksum: string | null };

/**
 * Where a rollback of `backfillId` takes a partition whose version before the backfill is
 * `target`: back past every version that a rollback of its own backfill undid there, or that
 * is the backfill's own, to the newest version neither (or none). Restoring a version that was
 * rolled back would publish again what its rollback undid. `links`: the partition's published
 * versions; each one's previous version is older than it, so the walk ends.
 */
export function restoreTarget(backfillId: string, target: RestoreTarget, links: ReadonlyMap<number, VersionLink>): RestoreTarget {
  let at = target;
  for (;;) {
    if (at.version === null) return at;
    const link = links.get(at.version);
    if (!link || (!link.rolledBack && link.backfillId !== backfillId)) return at;
    const previous = link.previousVersion;
    if (previous !== null && previous >= at.version) return at;
    at = { version: previous, checksum: previous === null ? null : (links.get(previous)?.checksum ?? null) };
  }
}

/** A rollback's move of a partition's published pointer (the rollback audit's row), as the lineage walk reads it. */
export type PointerMove = { rollbackId: string; backfillId: string; fromVersion: number | null; toVersion: number | null; forced: boolean; at: string };

/** The rollback that took a partition's published pointer off a backfill's version and whatever was published on top of it. */
export type UndoneBy = { rollbackId: string; backfillId: string; forced: boolean };

/**
 * Whether `version` is `of` or was published on top of it, through later publishes: each
 * publish records the version it replaced, and a rollback's restore breaks the chain (the
 * version it restores was published before `of`).
 */
export function builtOn(version: number | null, of: number, links: ReadonlyMap<number, Pick<VersionLink, 'previousVersion'>>): boolean {
  let at = version;
  while (at !== null && at > of) {
    const previous = links.get(at)?.previousVersion ?? null;
    if (previous !== null && previous >= at) return false;
    at = previous;
  }
  return at === of;
}

/**
 * Where a backfill's version `of` stands under the published version `found`: `onTop`, a later
 * version was published over it (what --force may undo); else, unless it is `found` itself, a
 * rollback took the pointer off it: the newest such move, when the audit has it.
 */
export function versionStanding(
  of: number,
  found: number | null,
  links: ReadonlyMap<number, Pick<VersionLink, 'previousVersion'>>,
  moves: readonly PointerMove[],
): { onTop: boolean; undoneBy: UndoneBy | null } {
  if (found === of) return { onTop: false, undoneBy: null };
  if (builtOn(found, of, links)) return { onTop: true, undoneBy: null };
  const off = moves.filter((m) => builtOn(m.fromVersion, of, links) && !builtOn(m.toVersion, of, links));
  const last = off.reduce<PointerMove | null>((newest, m) => (newest === null || m.at >= newest.at ? m : newest), null);
  return { onTop: false, undoneBy: last ? { rollbackId: last.rollbackId, backfillId: last.backfillId, forced: last.forced } : null };
}
