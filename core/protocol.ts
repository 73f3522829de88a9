/**
 * Messages between the client, the parent workflow, the node workflows and the partition
 * activity. Plain JSON: everything here crosses Temporal's payload converter.
 */
import type { StagedPhase } from './staged.ts';
import type { Spending } from './budget.ts';
import type { CostMetric } from './policy.ts';
import type { GovernanceJSON, GovernanceView } from './governance.ts';
import type { Limits } from './limits.ts';
import type { RangesJSON } from './ranges.ts';
import type { ReadinessJSON } from './readiness.ts';
import type { NodeStats, SchedulerState } from './scheduler.ts';
import type { PartitionRange, ResolvedNode, ResolvedPartitions, ResolvedSpec } from './spec.ts';
import type { StagedCarry } from './staged.ts';
import type { CanaryCarry, CanaryView } from './canary.ts';
import type { ControlMeta } from './audit.ts';

export type { Limits } from './limits.ts';
export type { NodeStats } from './scheduler.ts';
export type { EmitLineageInput, EmitLineageResult } from './lineage-input.ts';

export const DEFAULT_TASK_QUEUE = 'backfill';

/**
 * The generation of the workflow core that inputs are made for. Workflows of an earlier
 * generation (backfill 0.1) carry no `core` field and cannot replay on this code: they must
 * finish on the workers that started them.
 */
export const CORE_GENERATION = 2;

/**
 * The failure types (ApplicationFailure.type) of the partition activity that no retry heals,
 * declared once: the activity raises them by these names and the retry policy lists them.
 */
export const PARTITION_FAILURES = {
  nonRetryable: 'NonRetryable',
  checkFailed: 'CheckFailed',
  sqlError: 'SqlError',
  unknownTransform: 'UnknownTransform',
  invalidOutput: 'InvalidOutput',
  invalidSpec: 'InvalidSpec',
  /** The worker's warehouse is not the one the backfill started on. */
  wrongWarehouse: 'WrongWarehouse',
  /** The partition's dataset is leased to another run (a stale activity of an earlier run). */
  staleRun: 'StaleRun',
} as const;

export type PartitionFailureType = (typeof PARTITION_FAILURES)[keyof typeof PARTITION_FAILURES];

/** Failure types (ApplicationFailure.type) that a partition's retry policy never retries. */
export const NON_RETRYABLE_TYPES: PartitionFailureType[] = Object.values(PARTITION_FAILURES);

/**
 * Where a backfill stands. `awaiting_approval` (the policy wants a signed approval first) and
 * `waiting_for_window` (outside its run windows) run nothing; a paused backfill is `running`
 * with `paused` set (by an operator, or a spent budget: `governance.holds` says which).
 * `staged`: every partition settled as staged versions, waiting for publish or discard;
 * `discarded`: a staged backfill whose versions were dropped (or a canary that was discarded).
 * `awaiting_canary`: a canary's slice settled as staged versions, waiting for approve or discard;
 * `canary_failed`: a partition of the canary's slice failed, and the backfill stopped there.
 */
export type BackfillState =
  | 'running'
  | 'awaiting_approval'
  | 'waiting_for_window'
  | 'staged'
  | 'awaiting_canary'
  | 'completed'
  | 'completed_with_failures'
  | 'failed'
  | 'cancelled'
  | 'discarded'
  | 'canary_failed'
  /** Told by the server, never by the workflow: ended through Temporal (terminate) or past its workflow timeout, its cleanup not run. */
  | 'terminated'
  | 'timed_out';

/** The states of a backfill that has not ended. */
export const ACTIVE_STATES = ['running', 'awaiting_approval', 'waiting_for_window', 'staged', 'awaiting_canary'] as const;

export function isActive(state: BackfillState): boolean {
  return (ACTIVE_STATES as readonly string[]).includes(state);
}

/** What a start says to the policy the workers judge it by (every field is checked there, none is trusted). */
export type StartGovernance = {
  /** Why (start --reason); the policy may require one. */
  reason?: string;
  /** The identity the starter's client declares (self-declared: recorded as such). */
  identity?: string;
  /** A signed start (start --sign-key): the canonical text and its SSH signature. */
  signature?: { text: string; signature: string };
  /** Budgets the start asks for, within the policy's most. */
  budgets?: { retries?: number; cost?: number };
  /** A new run of a backfill that ended (resume, retry-failed): judged as a start. */
  action?: 'start' | 'resume';
  /** What the new run of an ended backfill (action `resume`) was asked for, for its audit entry (`parseStartAction`). */
  resumeRequest?: ResumeRequest;
};

/** What a new run of an ended backfill was asked for: its audit entry says `retry-failed` or `resume`, and what a new spec changed. */
export type ResumeRequest = {
  /** `backfill retry-failed`: the failures of `node` (or of every node) run again. */
  retryFailed?: { node?: string };
  /** With a new spec (`--spec`): the nodes it changes from the ended run's. */
  specChanged?: string[];
  /** With `--rate`, `--concurrency`: the limits the new run was given (its carry's); its audit entry records the run's own. */
  limits?: Partial<Limits>;
};

export type BackfillInput = {
  core: typeof CORE_GENERATION;
  backfillId: string;
  spec: ResolvedSpec;
  range: PartitionRange;
  /** Backfill-wide limits from `start --rate/--concurrency` (over the spec's own). */
  limits?: Partial<Limits>;
  /** Tuning, mostly for tests and benchmarks. */
  tuning?: Partial<Tuning>;
  /** State carried over by continue-as-new, or from an earlier run being resumed. */
  carry?: BackfillCarry;
  /** Partition index ranges, by node, whose published versions stand (`--only-changed`): done from the start. */
  skip?: Record<string, RangesJSON>;
  /** `start --stage`: every partition is written and checked as a staged version; nothing is published until `publish`. */
  stage?: boolean;
  /** `start --canary N` (over the spec's `canary:`): a slice first, staged, then it waits for approve or discard. Parsed by the workflow. */
  canary?: unknown;
  /** What the start says to the policy: reason, identity, a signature, budgets. */
  governance?: StartGovernance;
};

export type Tuning = {
  /** Minimum time between two progress reports of a node workflow to the parent. */
  reportIntervalMs: number;
  /** A run continues as new once its history has this many events (or the server suggests it). */
  historyLimit: number;
  /** How long a node may be silent before the parent checks that it is still there (and a node, its parent). */
  probeIntervalMs: number;
  /** How many times the parent starts a node workflow again that closed without finishing. */
  maxNodeRestarts: number;
  /**
   * How long a node waits, before it continues as new, for its in-flight batches to land;
   * those still running then are carried. Absent in runs started before it existed.
   */
  drainMs?: number;
  /** How many times a partition may be deferred with no run window closing before it fails (default 10). */
  maxDeferrals?: number;
  /** The back-off after a partition's second such deferral, doubling with each more up to 30 times it (default 1000). */
  deferralBackoffMs?: number;
};

export const DEFAULT_TUNING = { reportIntervalMs: 1000, historyLimit: 4000, probeIntervalMs: 120_000, maxNodeRestarts: 3, drainMs: 5000 } satisfies Tuning;

/** A failure message and the partitions (index ranges) that failed with it. */
export type FailureGroup = { message: string; type: string; ranges: RangesJSON };

export type NodeOverrides = Record<string, Partial<Limits>>;

/** The parent's state, carried across continue-as-new (and into a resumed run). */
export type BackfillCarry = {
  /** Identity of this backfill run (the first run's id): the version key of the partitions it writes. */
  runKey: string;
  readiness: ReadinessJSON;
  /** True when the node workflows are alive (continue-as-new); false to start them afresh. */
  childrenRunning: boolean;
  paused: boolean;
  limits: Limits;
  overrides: NodeOverrides;
  reports: Record<string, NodeStats>;
  failures: Record<string, FailureGroup[]>;
  /** Readiness and settings not yet delivered to each node workflow. */
  outbox: Record<string, { ready: RangesJSON; settingsDirty: boolean; specDirty?: boolean }>;
  /** The settings last handed to each node workflow. */
  settings: Record<string, NodeSettings>;
  /** Times each node workflow was started again after it closed without finishing. */
  restarts: Record<string, number>;
  /**
   * Only in the carry that resumes an ended run: by node, the partitions that run had released
   * but never heard finish. A node workflow it lost may have published some of them without
   * reporting it, so the new run's node workflows look before they run them (`recheck`).
   */
  recheck?: Record<string, RangesJSON>;
  startedAt: number | null;
  runs: number;
  /**
   * The policy's judgement and what follows from it (approval, budgets, windows, audit trail).
   * Trusted only from the run's own continue-as-new; a run started by a client (a resume) is
   * judged again. Absent in runs started before governance existed.
   */
  governance?: GovernanceJSON;
  /**
   * The warehouse the backfill writes to, as its workers reported it at start, and the
   * datasets it leased there (one writer per dataset). Absent in runs started before backfills
   * recorded it: their partitions are not checked against it, and nothing is leased.
   */
  warehouse?: { id: string; location: string };
  /** The running spending total each node workflow last reported (`NodeReport.total`), for their cost allowances. */
  spentTotals?: Record<string, Spending>;
  /**
   * When the backfill let nothing start (paused, a budget, an approval, outside its run windows,
   * a canary waiting for its decision),
   * by the parent's clock: [from, to] (to null: it still is). Throughput and ETA leave them out.
   * Absent: a run from before it was kept.
   */
  held?: Array<[from: number, to: number | null]>;
  /**
   * What the runs before this one (a resume, a retry-failed) completed, over how long they worked,
   * and when their last partition finished (`PaceSoFar`): the headline throughput counts them with
   * this run's reports, those of partitions started after then. Absent: a first run, or one from
   * before it was kept (its throughput is over the reports alone).
   */
  before?: PaceSoFar;
  /** The backfill emits OpenLineage events; `ended`: the nodes whose run's end was emitted. Absent: it emits none (started before it could). */
  lineage?: { ended: string[] };
  /** A staged backfill: where it is between staging and its decision. Absent: it publishes as it goes. */
  staged?: StagedCarry;
  /** A canary backfill: its slice and where it is. Absent: no canary (or one from before canaries existed). */
  canary?: CanaryCarry;
  /**
   * `backfill cancel`'s announcement (who, why) and when it came (workflow time), not yet
   * followed by its cancellation: the cancellation may come in the next run. Absent: none (or a
   * run from before it was carried). Not carried into a resumed run.
   */
  announcedCancel?: { meta: ControlMeta; at: number };
  /**
   * Only in the carry a run ends with (its result, the carry query): the spec it ran with when a
   * new one (`resume --spec`) replaced its input's, for the next run a client starts (which takes
   * it as its input's spec, judged as any start). Absent: the input's spec, or a run from before
   * it was carried. A workflow never reads it from its input.
   */
  spec?: ResolvedSpec;
};

/** Partitions completed, over how long was worked (less the time held), up to when the last finished. */
export type PaceSoFar = { completed: number; workMs: number; lastFinishedAt: number };

/** Settings the parent hands a node workflow: the node's share of every limit. */
export type NodeSettings = {
  seq: number;
  rate: number | null;
  burst: number;
  concurrency: number;
  paused: boolean;
  /** Run windows: no partition starts at or after this instant (the current window's close). */
  openUntil?: number;
  /** Run windows: partitions still running at this instant (close + grace) stop, to run again in the next window. */
  stopBy?: number;
  /**
   * A cost budget: the node starts no batch once its own spending in `metric` (the running
   * total it reports, `NodeReport.total`) reaches `until`, until the parent says more. The parent
   * gives each active node a share of what is left of the budget on top of what the node last
   * reported, so the backfill stops within the batches already running of the cap.
   */
  allowance?: CostAllowance;
};

/** See NodeSettings.allowance. */
export type CostAllowance = { metric: CostMetric; until: number };

/** Parent → node workflow, batched: new ready partitions, settings, a new spec of the node, or the order to finish. An empty one is a probe. */
export type NodeControl = {
  ready?: RangesJSON;
  settings?: NodeSettings;
  node?: ResolvedNode;
  finish?: boolean;
};

/**
 * What the parent says a node's settings and spec are (its `nodeOrders` query), asked by the node
 * workflow when a `nodeControl` brings either: the signal only rings the bell, as anyone who may
 * signal can send one (workflows/node.ts, patch orders-from-parent).
 */
export type NodeOrders = { settings: NodeSettings; node: ResolvedNode };

/** The `fetchNodeOrders` activity's request: whose parent to ask, for which node. */
export type NodeOrdersRequest = { parentWorkflowId: string; node: string };

/** Node workflow → parent, batched: what completed or failed since the last report. */
export type NodeReport = {
  node: string;
  done: RangesJSON;
  failures: FailureGroup[];
  stats: NodeStats;
  /** Set on the node workflow's last report before it ends (cancellation). */
  final?: 'cancelled';
  /** What its partitions cost and the attempts that failed, since the last report (for the budgets). */
  spent?: Spending;
  /** The same, counted since the node workflow started (across its continue-as-new): what an allowance is measured against. */
  total?: Spending;
};

/** A node's partitions as its upstream nodes need them: for its inputs' keys. */
export type UpstreamPartitions = Record<string, ResolvedPartitions>;

export type NodeInput = {
  core: typeof CORE_GENERATION;
  backfillId: string;
  parentWorkflowId: string;
  runKey: string;
  /** This node's spec only (the rest of the spec stays with the parent). */
  node: ResolvedNode;
  upstream: UpstreamPartitions;
  range: PartitionRange;
  settings: NodeSettings;
  ready: RangesJSON;
  /** Of `ready`, the partitions a node workflow that closed without finishing may have published. */
  recheck?: RangesJSON;
  tuning: Tuning;
  state?: { scheduler: SchedulerState; runs: number; spent?: Spending; total?: Spending };
  /** The identity of the backfill's warehouse: a partition activity on a worker of another warehouse refuses it. */
  warehouseId?: string;
  /** The backfill is staged: its partitions are written as staged versions. */
  stage?: boolean;
};

/** Upstream partitions a partition reads: a key range of a time grain, or a list of static keys. */
export type PartitionInput = { node: string; from: string; to: string; keys?: string[]; all?: boolean };

/** The part of a node's spec the partition activity needs. */
export type PartitionNode = Pick<ResolvedNode, 'id' | 'transform' | 'sql' | 'params' | 'checks' | 'heartbeatTimeout' | 'adopt'> & {
  /** The node's timeout for one partition, which a batch activity enforces on each of its partitions (absent: from a workflow before it was sent). */
  timeout?: string;
};

/** The progress of one partition activity: what a (batch) activity finished. */
export type PartitionResult = {
  index: number;
  key: string;
  version: number;
  rowCount: number;
  checksum: string;
  startedAt: number;
  finishedAt: number;
  /** What the transform reported this partition cost (ctx.reportCost), when it did. */
  cost?: number;
  /** The latency the transform reported for the system it calls (the highest, when it reported several). */
  latencyMs?: number;
};

export type PartitionTask = {
  index: number;
  key: string;
  /** A previous run may have published it meanwhile: look before running it. */
  recheck?: boolean;
  window: { start: string; end: string } | null;
  /** The upstream partitions it read, as key ranges (for lineage); static keys are listed. */
  inputs: PartitionInput[];
  /** How many times the downstream system throttled this partition before. */
  throttled: number;
};

export type RunPartitionsInput = {
  backfillId: string;
  runKey: string;
  workflowId: string;
  node: PartitionNode;
  partitions: PartitionTask[];
  maxAttempts: number;
  /** Run windows: start no partition at or after `notAfter`; stop one still running at `stopBy` (it runs again later). */
  window?: { notAfter: number; stopBy: number };
  /** The identity of the warehouse the backfill started on: a worker on another warehouse refuses the partitions. */
  warehouseId?: string;
  /** Write staged versions (published later, all at once), reading the run's own staged upstream versions. */
  stage?: boolean;
};

export type RunPartitionsResult = {
  finished: PartitionResult[];
  /** The activity's attempt: attempt - 1 attempts failed before this one (for the retry budget). */
  attempt?: number;
  /**
   * The last `deferred` partitions of the batch were not started: the run window closed (they
   * run again in the next one) or the worker is stopping (they run again on another). They
   * count no attempt; a partition the result does not account for otherwise does.
   */
  deferred?: number;
  /** The downstream system throttled this partition; it and the rest of the batch were not run. */
  throttled?: { index: number; message: string };
};

/** Details attached to a partition activity's failure, so that the workflow knows what finished. */
export type PartitionFailureDetails = { finished: PartitionResult[]; failedIndex: number | null; attempt?: number };

/** Partition counts: total = done + running + failed + blocked + pending. */
export type PartitionCounts = {
  total: number;
  done: number;
  running: number;
  failed: number;
  blocked: number;
  pending: number;
};

/**
 * `status` only (client/queued.ts): of the partitions in flight, those whose activity no worker
 * has started, which `running` then leaves out. The workflows' progress has none: it counts them running.
 */
type Queued = { queued?: number };

export type NodeProgress = PartitionCounts & Queued & {
  id: string;
  /** The nodes it reads (the spec's dependsOn). Absent from older workers' progress. */
  dependsOn?: string[];
  /**
   * The node's share of the backfill's rate (and its own), lowered by throttling: in force while
   * it has partitions in hands. An idle node keeps the share it last had, which it may never use:
   * the nodes' rates add up to more than the backfill's.
   */
  rate: number | null;
  /** Partitions released to the node and neither done nor failed (queued or running): 0, its rate is not in force. Absent from older workers' progress. */
  inHands?: number;
  concurrency: number;
  throttles: number;
  /** Partitions per second this backfill has achieved on the node. */
  throughput: number | null;
  /** Seconds left at that throughput. */
  etaSeconds: number | null;
  failures: Array<{ message: string; type: string; partitions: number; examples: string[] }>;
};

export type Progress = PartitionCounts & Queued & {
  backfillId: string;
  name: string;
  state: BackfillState;
  paused: boolean;
  rate: number | null;
  concurrency: number | null;
  throughput: number | null;
  etaSeconds: number | null;
  runs: number;
  nodes: NodeProgress[];
  /** The policy's judgement, holds, windows, budgets and the last operator action (absent before governance existed). */
  governance?: GovernanceView;
  /** A canary backfill: its slice, where it is, the slice's diff and the decision. */
  canary?: CanaryView;
  /** A staged backfill: where its decision is (`publishing` while the warehouse carries it out), and who took it. */
  staged?: { phase: StagedPhase; by?: string; at?: number };
};

export type BackfillResult = {
  state: Exclude<BackfillState, (typeof ACTIVE_STATES)[number] | 'terminated' | 'timed_out'>;
  progress: Progress;
  /** Enough to resume this backfill in a new run (retry-failed after it ended). */
  carry: BackfillCarry;
};
