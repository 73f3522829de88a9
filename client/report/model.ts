/**
 * The audit report of one backfill, as data: `report --format json` prints it as it is, and
 * the HTML and Markdown renderers draw it. Times are ISO strings, except in the timeline,
 * whose marks count milliseconds since the epoch (compact, and what a time scale takes).
 */
import type { AuditEntry } from '../../core/audit.ts';
import type { PathStep } from '../../core/critical-path.ts';
import type { DiffSummary } from '../../core/diff.ts';
import type { BackfillState } from '../../core/protocol.ts';
import type { UndoneCount } from '../../core/rollback.ts';
import type { ResolvedSpec } from '../../core/spec.ts';

export const REPORT_VERSION = 1;

export type DurationStats = { p50Ms: number; p95Ms: number; maxMs: number; totalMs: number };

/** Partitions that share one message (a failed or warned check, a failure). */
export type MessageGroup = { message: string; partitions: number; examples: string[] };

/** The partitions this backfill published, against the versions they replaced. */
export type NodeChanges = {
  /** Partitions that had no published version before. */
  new: number;
  /** Partitions whose checksum differs from the version they replaced. */
  changed: number;
  unchanged: number;
  /** Rows in the replaced versions and in the new ones, for the partitions that had a version before. */
  rowsBefore: number;
  rowsAfter: number;
  /** Rows of the new partitions. */
  rowsNew: number;
};

/** Partitions that failed (after their retries) with one message, in the runs named, and were published later, in run `publishedInRun` (runs numbered from 1). */
export type FixedFailure = MessageGroup & { type: string; failedInRuns: number[]; publishedInRun: number };

export type NodeReport = {
  id: string;
  grain: string;
  transform: string;
  /** Partitions in the plan. */
  partitions: number;
  /** From the backfill's progress; null when it could not be read (then `done` counts published partitions). */
  done: number;
  failed: number | null;
  blocked: number | null;
  /** Partitions counted done without running (`--only-changed`). */
  skipped: number;
  /** Partitions published by this backfill (ledger rows). */
  published: number;
  /** Of the published partitions. */
  durations: DurationStats | null;
  /** Published partitions whose attempt was not the first, and those whose activity ran more than once. */
  retries: { retried: number; reExecuted: number };
  /** Times the downstream system throttled this node. */
  throttles: number;
  /** The failures still standing (from the progress). */
  failures: Array<MessageGroup & { type: string }>;
  /** Failures that did not last: failed in a run of the backfill, published after (retry-failed), from every run's history. */
  fixedFailures: FixedFailure[];
  failedChecks: MessageGroup[];
  warnedChecks: MessageGroup[];
  changes: NodeChanges;
};

/**
 * A staged backfill's versions against the published ones (`backfill diff`). `staged`: not
 * published yet, against what is published now (what publishing would change). `published`:
 * published from staging, against the versions the publish replaced (what it changed).
 * `discarded`: dropped, nothing published (the summary is empty).
 */
export type StagedReport = { phase: 'staged' | 'published' | 'discarded'; summary: DiffSummary };

export type Span = { startMs: number; endMs: number };

/** One partition's attempt that published or failed a check, in its node's lane and sub-row. */
export type TimelineMark = Span & { node: string; partition: string; slot: number; status: 'published' | 'failed_check' };

/** Many partitions at once: per node and time bin, how many ran on average, and how many finished. */
export type TimelineBin = Span & { node: string; busy: number; finished: number };

/** A limit changed by an operator (rate, concurrency, a task queue's rate, a budget): a rule across every lane. */
export type TimelineLimitChange = { atMs: number; seq: number; action: string; label: string };

/** Partitions that finished per second (every node's) in one time bin. */
export type TimelineRate = Span & { perSecond: number };

export type Timeline = Span & {
  /** One lane per node, in plan order; `slots` sub-rows hold partitions that overlap in time. */
  lanes: Array<{ node: string; slots: number }>;
  /** `partitions`: one mark per partition; `bins`: too many for that, aggregated in time bins. */
  detail: 'partitions' | 'bins';
  marks: TimelineMark[];
  bins: TimelineBin[];
  binMs: number | null;
  paused: Span[];
  /** How long a node's pace stayed reduced after throttles (AIMD), from the paces it reported; `recovered` false: still reduced at its last report. */
  throttled: Array<Span & { node: string; count: number; recovered: boolean }>;
  /** The limit changes of `Report.actions`, where they happened. */
  limitChanges: TimelineLimitChange[];
  /** The backfill's rate over time: partitions finished per second, in bins of a second or more. */
  rate: TimelineRate[];
};

/**
 * One entry of the audit trail: an operator action (start, pause, rate, budget, approval,
 * rollback, ...) or what the policy did by itself. `identity` is what the sender's client
 * declared, unless `verified` (the principal of a signature the workers verified).
 */
export type ReportAction = Pick<AuditEntry, 'seq' | 'action' | 'identity' | 'verified' | 'reason' | 'outcome' | 'details'> & {
  at: string;
  /** Who, for people: `alice@example.com (declared)`, `the policy`, a failed canary's own partitions and who started its run. */
  actor: string;
  /** What it changed, in words (`rate 20/s → 50/s (node orders)`), or why it was refused. */
  change: string;
  /** An applied change of a rate, a concurrency, a task queue's rate or a budget (marked on the timeline). */
  limitChange: boolean;
  /** The workflow whose history recorded it: the backfill's, or its rollback's. */
  workflowId: string;
};

export type PlanReport = {
  totalPartitions: number;
  criticalPathLength: number;
  maxWidth: number;
  criticalPath: PathStep[];
  nodes: Array<{ id: string; grain: string; partitions: number; first: string | null; last: string | null; transform: string; dependsOn: Array<{ node: string; mapping: string }> }>;
};

export type Report = {
  reportVersion: typeof REPORT_VERSION;
  generatedAt: string;
  backfill: {
    id: string;
    workflowId: string;
    namespace: string;
    /** The run key of the partitions' versions: one per `start` (a rerun gets a new one, a resume keeps it). */
    runKey: string;
    state: BackfillState | 'unknown';
    paused: boolean;
    startedAt: string;
    endedAt: string | null;
    /** Runs of the parent workflow (it continues as new). */
    runs: number;
    /** Its page in the Temporal Web UI; null when the command line knows no Web UI for the server (client/web-ui.ts). */
    uiUrl: string | null;
  };
  spec: ResolvedSpec;
  parameters: {
    from: string | null;
    to: string | null;
    rate: number | null;
    concurrency: number | null;
    onlyChanged: boolean;
    /** Code versions the ledger rows record. */
    codeVersions: string[];
    warehouse: string;
  };
  plan: PlanReport;
  /** `publishedAfterFailing`: published partitions that had failed before, in the same run or an earlier one (the sum of the nodes' `fixedFailures`). */
  totals: { partitions: number; done: number; failed: number | null; blocked: number | null; skipped: number; published: number; retried: number; publishedAfterFailing: number; throttles: number; failedChecks: number };
  nodes: NodeReport[];
  /** Null for a backfill that was not started with --stage (or whose diff could not be read: see the notes). */
  staged: StagedReport | null;
  /** What rollbacks of this backfill restored (null: none restored anything): its published versions may no longer be the data. */
  rolledBack: { partitions: number; lastAt: string; stillPublished: number } | null;
  /**
   * Partitions of this backfill that rollbacks of other backfills undid (a forced one, mostly):
   * its versions are no longer the data there. Missing in reports made before it was read.
   */
  undoneByOthers?: UndoneCount[];
  timeline: Timeline;
  /** Every operator action on this backfill run, in time order (the audit trail of its histories and its rollbacks'). */
  actions: ReportAction[];
  /** What the report could not see, and where figures come from. */
  notes: string[];
};
