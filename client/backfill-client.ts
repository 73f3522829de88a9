/** The typed client library behind the `backfill` command line. */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  WorkflowUpdateStage,
  QueryNotRegisteredError,
  isGrpcServiceError,
  type Connection,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { NamespaceNotFoundError, WorkflowIdReusePolicy, type Priority, type UpdateDefinition } from '@temporalio/common';
import proto from '@temporalio/proto';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import { closedState, endedText, endedUndecided, notRunningError, undecided, type StagedDecided, type StagedEnd } from './ended.ts';
import { backfillIdOfWorkflow, carryHash, FIRST_RUN, planHash, type PlanIdentity } from '../core/approval.ts';
import { parseMeta, type AuditEntry, type ControlMeta, type Unchanged } from '../core/audit.ts';
import { backfillDetails, backfillSummary } from '../core/details.ts';
import { BackfillError } from '../core/errors.ts';
import { checkTaskQueue } from '../core/task-queue.ts';
import { nameText } from '../core/value-text.ts';
import { shellWord } from '../core/shell-word.ts';
import { rollbackNodes, type RollbackNodes, type RunNode } from '../core/rollback-order.ts';
import { expandPlan, requirePartitionsInRange, type Plan } from '../core/plan.ts';
import { RangeSet } from '../core/ranges.ts';
import { rollbackWorkflowId, type RollbackInput, type RollbackSummary, type RollbackTuning, type StatusRollback } from '../core/rollback.ts';
import { CORE_GENERATION, DEFAULT_TASK_QUEUE, type BackfillCarry, type BackfillInput, type BackfillResult, type BackfillState, type Limits, type Progress, type ResumeRequest, type Tuning, isActive } from '../core/protocol.ts';
import type { RangesJSON } from '../core/ranges.ts';
import type { PartitionRange, ResolvedSpec } from '../core/spec.ts';
import type { KeptOldOutput } from '../core/kept-output.ts';
import { discardWorkflowId, type DiscardEndedInput, type StagedPhase } from '../core/staged.ts';
import type { CanaryPhase } from '../core/canary.ts';
import {
  BACKFILL_ID,
  BACKFILL_STATUS,
  admissionUpdate,
  announceCancelUpdate,
  approveCanaryUpdate,
  approveUpdate,
  type CanaryReply,
  backfillWorkflowId,
  carryQuery,
  nodeWorkflowId,
  pauseUpdate,
  publishUpdate,
  discardUpdate,
  type StagedReply,
  queueRateUpdate,
  judgeQueueRateQuery,
  judgeChangeQuery,
  type JudgedChange,
  setBudgetUpdate,
  type Admission,
  progressQuery,
  refusedError,
  replaceSpecUpdate,
  resumeUpdate,
  retryFailedUpdate,
  setConcurrencyUpdate,
  setRateUpdate,
  type ControlState,
} from '../workflows/definitions.ts';
import type { backfillWorkflow } from '../workflows/backfill.ts';
import type { rollbackWorkflow } from '../workflows/rollback.ts';
import type { discardEndedWorkflow } from '../workflows/discard.ts';
import { auditRuns, auditTrail } from './audit.ts';
import type { RollbackPreview } from './rollback-preview.ts';
import type { Warehouse } from '../activities/warehouse/types.ts';
import type { LineageReader } from '../activities/rollback-nodes.ts';
import { BACKFILL_WORKFLOW_TYPE } from '../core/workflow-ids.ts';
import { GRPC, checkNamespace, connectionFailure, grpcCode, openConnection, resolveConnection, type ConnectionOverrides, type ConnectionSettings } from './connection.ts';
import { datasetWriters, datasetsBusy, endedWithoutCleanup, type DatasetWriter } from './dataset-writers.ts';
import { leftRunning } from '../core/busy-datasets.ts';
import { visibilityLiteral } from './visibility.ts';
import { LiveEtas, NO_LIVE_ETA, anyMeasured, liveEta, liveWindows, withLiveEta, withStall, withoutEtaWithoutWorker, type LiveEta } from './eta.ts';
import { registerSearchAttributes, rejectedAttribute, requireSearchAttributes, unregisteredAttribute, type SetupResult } from './search-attributes.ts';
import { lastKnown as readLastKnown, recordedCounts, type LastKnown } from './last-known.ts';
import { QUERY_TIMEOUT_MS, UNPOLLED_QUERY_TIMEOUT_MS, busyRefusal, noPollerSeen, polledLately, noWorkerError, unansweredError, workflowWorker } from './status-errors.ts';
import { FAILURE_EVENTS, answeredWhileFailing, failingStreakOf, lastTaskFailure, taskFailingError, type TaskFailure, type TaskFailingWarning } from './task-failing.ts';
import { pollersOf } from './pollers.ts';
import { replacedSpecQueues } from './replaced-queues.ts';
import { readNodeQueuesMemo } from '../core/node-queues.ts';
import { withDiscardAfterEnd, withoutLiveHolds } from '../core/ended-status.ts';
import { currentQueueCap, queueCap, sameQueueRate } from './queue-cap.ts';
import { setLongTimeout } from './long-timeout.ts';
import { waitTimedOut } from './wait-timeout.ts';
import { mapLimit } from './map-limit.ts';
import { UNKNOWN_PIN, pinnedPolicy } from '../core/policy-pin.ts';
import { judgementWait, pendingNotes, type ActivityFailing } from './activity-failing.ts';
import { queueStates, taskUntaken, waitingNodes, withTransforms, type PendingTask, type Poller, type Waiting } from './waiting.ts';
import { startTracing, tracingRequested, type Tracing } from '../workers/tracing.ts';
import { DEFAULT_UI_URL, settingsFromEnv, type Settings } from '../host/settings.ts';
import { inputNodes } from './input-nodes.ts';
import { queuedOf, withQueued } from './queued.ts';
import { compactUtc } from './utc-time.ts';

/** What a client does when a call says nothing else: the Web UI of its links, the task queue and the dataset check of `start`. */
export type ClientDefaults = Pick<Settings, 'uiUrl' | 'taskQueue' | 'sharedDatasets'>;

/**
 * Where to connect: overrides of Temporal's environment configuration, or settings resolved
 * already; and the client's defaults (else `settingsFromEnv()`'s).
 */
export type ConnectOptions = ConnectionOverrides & {
  settings?: ConnectionSettings;
  uiUrl?: string;
  defaults?: ClientDefaults;
  /** Who this client says it is (Temporal's client identity; default <user>@<host>): recorded with every action in the audit trail. */
  identity?: string;
  /**
   * false: the namespace is looked up only when a backfill is not found (to say which is
   * missing), not at connect: one call less for a command that reads one backfill (`status`).
   */
  checkNamespace?: boolean;
};

/** `<user>@<host>`: the identity a client declares when none is given (self-declared: the audit trail says so). */
export function defaultIdentity(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No user database entry (a container): the host alone still says where it came from.
  }
  return `${user}@${hostname()}`;
}

/** Why an operator does what they do: kept in the audit trail (the policy may require it). */
export type ControlOptions = { reason?: string };

/**
 * `resume`, `retry-failed`: with `signKey`, the new run of an ended backfill is signed (its action,
 * plan, the carry it starts from and the reason), as a policy with `approval.signedStart` wants.
 * `limits`: the new run's backfill-wide rate and concurrency, in place of those of the run it
 * follows (the policy judges them as a start's). Both are refused for a backfill that still runs.
 */
export type GoOnOptions = ControlOptions & { signKey?: string; limits?: Partial<Limits> };

export type StartOptions = {
  id?: string;
  range?: PartitionRange;
  limits?: Partial<Limits>;
  tuning?: Partial<Tuning>;
  /** Run again an id whose earlier backfill has finished. */
  rerun?: boolean;
  taskQueue?: string;
  /** Partition index ranges, by node, whose published versions stand: counted as done, never run (`--only-changed`). */
  skip?: Record<string, RangesJSON>;
  /** When running backfills write some of its datasets, wait until they are free instead of failing. */
  waitForDatasets?: DatasetWait;
  /**
   * Skip the one-writer-per-dataset check: for a namespace shared by backfills that write to
   * different warehouses (where one node id names different datasets), and test suites.
   * Default: the client's (`ClientDefaults`: $BACKFILL_SHARED_DATASETS, 1, true or yes), else false.
   */
  sharedDatasets?: boolean;
  /** `--stage`: write and check every partition as a staged version; publish them later, all at once (`publish`), or `discard` them. */
  stage?: boolean;
  /** `--canary N`: N partitions per node first (with the spec's `canary:` pick and auto), staged; then it waits for `approve` or `discard`. */
  canary?: number;
  /** Why (start --reason): kept in the audit trail; the policy may require it. */
  reason?: string;
  /**
   * Sign the start with this ssh-ed25519 key (start --sign-key): then its signer cannot approve it,
   * provably. With a carry (a new run of an ended backfill) it signs the resume or retry-failed
   * (`resumeRequest.retryFailed`) and the carry's hash.
   */
  signKey?: string;
  /** Task-queue priority, 1 (most urgent) to 5; unset: the server's default (3). */
  priority?: number;
  /** The backfill's fairness weight on a shared task queue (its fairness key is its id). */
  fairnessWeight?: number;
  /** Budgets it asks for (within the policy's most). */
  budgets?: { retries?: number; cost?: number };
  /**
   * Wait for the policy's decision before returning (default true): a refused start throws
   * `policy_violation` naming the rules. When no worker polls the workflow task queue it is not
   * waited for (`admission` is then null).
   */
  admission?: boolean;
  /** Called once when the decision has not come after a few seconds, with why it waits (a worker's refusal to judge it), if known. */
  onAdmissionWait?: (why: string | undefined, backfillId: string) => void;
  /** A new run of a backfill that ended (resume, retry-failed), for the audit trail. */
  action?: 'start' | 'resume';
  /** What that new run was asked for (`retry-failed`, a new spec's changes), for its audit entry. */
  resumeRequest?: ResumeRequest;
};

export type DatasetWait = {
  /** Give up after this long (default: wait as long as it takes). */
  timeoutMs?: number;
  /** How often to look again (default 2 s). */
  pollMs?: number;
  /** Called each time it looks and the datasets are still written by others. */
  onWait?: (writers: DatasetWriter[]) => void | Promise<void>;
};

/** How long `wait --timeout`, once the timeout has run out, waits to read what the backfill waits on. */
const WAIT_TIMEOUT_READ_MS = 1000;

/** What `set-queue-rate` did: the cap now, who recorded it, and who could not be asked or record it. */
export type QueueRateResult = {
  taskQueue: string;
  rate: number | null;
  /** Backfills with nodes on the queue that recorded the change in their audit trail. */
  recordedBy: string[];
  /** Backfills with nodes on the queue that did not answer: not asked, changed anyway with --force. */
  unreachable: string[];
  /** Backfills that agreed but whose record did not arrive after the cap changed (their worker went away). */
  notRecorded: string[];
  /** No running backfill has nodes on the queue and no worker polls it: a name mistyped, or workers not started yet. */
  unused: boolean;
  /** The cap asked was the one in force: nothing was sent, and the backfills that agreed recorded nothing; since when, by whom and why, as the server tells. */
  unchanged?: Unchanged;
};

export type Started = {
  backfillId: string;
  workflowId: string;
  runId: string;
  uiUrl: string;
  /** What the policy decided: running, or waiting (awaiting_approval, waiting_for_window); null when it was not waited for. */
  admission?: Admission | null;
};

/** What `cancel` did: the cancellation was requested; `announced`: the backfill recorded who and why first, else `skipped` says why not. */
export type Cancelled = { announced: boolean; skipped?: string };

export type Outcome = {
  backfillId: string;
  state: Progress['state'];
  progress: Progress | null;
  /** Why a failed run failed (its failure's innermost message), when it can be read. */
  failure?: string;
};

export type RollbackOptions = ControlOptions & {
  /** Restore also the partitions a later backfill changed since. */
  force?: boolean;
  /** Batch size, heartbeat timeout and history limit of the rollback workflow (tests make it small). */
  tuning?: Partial<RollbackTuning>;
  /**
   * The workflow task queue of a rollback of a backfill whose history the server no longer keeps
   * (default: the client's, $BACKFILL_TASK_QUEUE, else `backfill`); otherwise the backfill's own.
   */
  taskQueue?: string;
};

/**
 * Where a rollback waits for a worker (`rollbackResult`'s `onNoWorker`): its workflow task queue,
 * and the activity queues its batches run on; `judgement`: it has a worker, but waits for one
 * with the policy to judge it (why the last worker declined).
 */
export type RollbackWaiting = { taskQueue: string; activityQueues: string[]; judgement?: string };

export type RollbackStarted = {
  backfillId: string;
  workflowId: string;
  runId: string;
  uiUrl: string;
  /** True when a rollback of this backfill was running already: this is that one. */
  attached: boolean;
  /** The server keeps no history of the backfill: the rollback walks the ledger's nodes, and a worker with a policy judges it. */
  historyGone: boolean;
};

/**
 * What `status` shows: the progress, with the nodes whose partitions wait on a queue no worker
 * polls, (`judgement`) why a run not admitted yet waits: the workers that took its judgement
 * declined it (a policy other than the one the backfill was admitted under, or none),
 * (`workflowTaskFailing`) that the progress, answered by a worker that still holds the run, no
 * longer moves, and (`refused`) the rules the policy refused the run for at admission, one a
 * line: it ran nothing.
 */
export type Status = Progress & {
  waiting: Waiting[];
  stalledSeconds?: number;
  judgement?: string;
  activityFailing?: ActivityFailing;
  rollback?: StatusRollback;
  workflowTaskFailing?: TaskFailingWarning;
  refused?: string;
  /** When the refused run is a later one than the run shown (a refused resume, or a copy of an ended backfill's start): when it started. */
  refusedLater?: string;
  /** Why a run that failed failed (its workflow's failure, innermost cause), when the policy did not refuse it. */
  failure?: string;
};


/** The refusals of a change judged by several backfills, or of several changes, as one error (the first's code): `unchanged` says what stayed as it was. */
function throwTogether(refusals: readonly BackfillError[], unchanged: string): void {
  const first = refusals[0];
  if (first) throw new BackfillError(first.code, `${refusals.map((r) => r.message).join('; ')} — ${unchanged}`, first.path);
}

/** How long `start` waits for the policy's decision. */
const ADMISSION_TIMEOUT_MS = 60_000;
/** After this long without the decision, `start` says it waits (`onAdmissionWait`). */
const ADMISSION_NOTE_MS = 5_000;

/** Attempts of an update whose workflow task failed before it applied. */
const UPDATE_ATTEMPTS = 5;
/** Running backfills set-queue-rate asks at once. */
const QUEUE_RATE_JUDGES = 16;
/** How a backfill ended before a staged decision: its staged versions need a discard of their own. */
const ENDED_UNDECIDED = new Set(['CANCELLED', 'FAILED', 'TERMINATED', 'TIMED_OUT']);
/** Phases of a staged backfill or a canary after which nothing it staged waits for a decision. */
const DECIDED_PHASES: ReadonlySet<string> = new Set(['published', 'discarded', 'approved']);
/** gRPC's status code FAILED_PRECONDITION. */
const GRPC_FAILED_PRECONDITION = 9;
/** How long a change refused while the backfill settles (`finishing`) waits for its end before it gives up. */
const FINISHING_WAIT_MS = 5 * 60_000;
const FINISHING_POLL_MS = 1000;


const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

/** A deadline or timeout, whether the client or the server ("query timed out", wrapped in a ServiceError) saw it. */
/** Whether a call failed because its deadline passed (gRPC reports it as DEADLINE_EXCEEDED, or as CANCELLED when the client gives up first). */
function timedOut(error: unknown, deadline?: number): boolean {
  for (let e: unknown = error; e !== undefined; e = e instanceof Error ? e.cause : undefined) {
    if (/deadline|timed? ?out/i.test(String(e))) return true;
    if (deadline !== undefined && Date.now() >= deadline - 100 && /CANCELLED|Call cancelled/.test(String(e))) return true;
  }
  return false;
}

/** How long a control (an update) waits for a worker to take it. */
export const UPDATE_TIMEOUT_MS = 15_000;

/**
 * `--sign-key` given to resume or retry-failed of a backfill that still runs: there the command is
 * a control of the running backfill (an update, judged like any control), not a new run, and only
 * a run's start is signed. Refused before anything is sent, so that a signature is never taken
 * as proof of something it does not cover.
 */
function signedWhileRunning(command: 'resume' | 'retry-failed', backfillId: string): BackfillError {
  return new BackfillError(
    'invalid_argument',
    `backfill '${backfillId}' is still running, so ${command} is a control of that run, which is not signed: --sign-key signs only a new run of an ended backfill. Send it without --sign-key (backfill ${command} ${shellWord(backfillId)} --reason "...")`,
    'sign-key',
  );
}

/**
 * `--rate` or `--concurrency` given to resume or retry-failed of a backfill that still runs: they
 * set the limits of the new run of an ended backfill. A running one's limits change with set-rate
 * and set-concurrency, each judged and applied as it arrives; sent together with the resume or
 * retry, one refused after another applied would leave the backfill half changed. Refused before
 * anything is sent, naming those commands.
 */
function limitsWhileRunning(command: 'resume' | 'retry-failed', backfillId: string, limits: Partial<Limits>): BackfillError {
  const sets = [
    ...(limits.rate !== undefined ? [`backfill set-rate ${shellWord(backfillId)} ${limits.rate ?? 'unlimited'}`] : []),
    ...(limits.concurrency !== undefined ? [`backfill set-concurrency ${shellWord(backfillId)} ${limits.concurrency ?? 'unlimited'}`] : []),
  ];
  return new BackfillError(
    'invalid_argument',
    `backfill '${backfillId}' is still running, and nothing was changed: --rate and --concurrency set the limits of the new run ${command} starts for a backfill that ended. ` +
      `Change a running backfill's limits with ${sets.join(' and ')}, then send ${command} without them`,
    limits.rate !== undefined ? 'rate' : 'concurrency',
  );
}

/** Whether an operator asked a new run for limits of its own (`GoOnOptions.limits`). */
const limitsGiven = (limits: Partial<Limits> | undefined): limits is Partial<Limits> => limits !== undefined && (limits.rate !== undefined || limits.concurrency !== undefined);

/** A control refused before it was sent: nobody polls the workflow task queue, so nobody would take it. */
function controlNoWorker(backfillId: string, taskQueue: string): BackfillError {
  return new BackfillError(
    'no_worker',
    `backfill '${backfillId}' is running but no worker polls its workflow task queue ${nameText(taskQueue)}, so nothing could take the change: nothing was sent or changed; start one with ${workflowWorker(taskQueue)}, then send it again`,
  );
}

/** A control no worker took in time: the server holds it, and a worker that returns may still apply it. */
function controlTimeout(backfillId: string, taskQueue: string): BackfillError {
  return new BackfillError(
    'timeout',
    `backfill '${backfillId}' did not take the change within ${UPDATE_TIMEOUT_MS / 1000}s (no worker on its workflow task queue ${nameText(taskQueue)} answered): ` +
      `it has not applied, but the server holds it and it may still apply when a worker takes it; check with 'backfill status ${shellWord(backfillId)}' and 'backfill audit ${shellWord(backfillId)}' before sending it again`,
  );
}

/**
 * An id that names another workflow than a backfill's: one of a backfill's own (`shop-2024/orders`,
 * `shop-2024/rollback`, copied from the Web UI), whose answers read as a backfill's would crash or mislead.
 */
function notABackfill(id: string, type: string): BackfillError {
  const owner = id.includes('/') ? id.slice(0, id.indexOf('/')) : undefined;
  const what = owner !== undefined ? `one of the workflows of backfill '${owner}' (a ${type}), not a backfill: use '${owner}'` : `a ${type}, not a backfill: check the id ('backfill start' printed it)`;
  return new BackfillError('invalid_argument', `'${id}' is not a backfill id: ${backfillWorkflowId(id)} is ${what}`, 'id');
}

/** Whether a workflow in this status has not ended (a continued run goes on in its next one). */
function isOpen(status: string): boolean {
  return status === 'RUNNING' || status === 'CONTINUED_AS_NEW';
}

/** How often `wait` asks again for the result of a backfill that has ended before it gives up. */
const WAIT_RESULT_ATTEMPTS = 5;

/** How often `rollbackResult` looks whether a worker takes the rollback: a describe and, when that tells nothing, a DescribeTaskQueue. */
const WORKER_LOOK_MS = 3000;

/** How long a rollback's workflow task waits untaken before `rollback` says no worker takes it: past the SDK's sticky queue wait (10 s), after which any worker of the queue may take it. */
const UNTAKEN_MS = 15_000;

/** gRPC status codes of a call that may succeed when made again (the connection, the server's load). */
const PASSING_CODES = new Set([1, 2, 4, 8, 10, 13, 14]);

/** Whether a call failed for a passing reason: no gRPC status (a dropped connection) or one of PASSING_CODES; not an answer such as not_found. */
function passing(error: unknown): boolean {
  if (error instanceof BackfillError) return false;
  const code = grpcCode(error);
  return code === undefined || PASSING_CODES.has(code);
}

/**
 * How a start may take a used workflow id: after any closed run for a deliberate new run (--rerun,
 * or one that goes on from an ended run); after a failed run only when every run of the id was
 * refused at admission, so that a start of it made since (running, or completed) still refuses
 * this one; else not at all.
 */
function reusePolicy(deliberate: boolean, refusedOnly: boolean): WorkflowIdReusePolicy {
  if (deliberate) return WorkflowIdReusePolicy.ALLOW_DUPLICATE;
  return refusedOnly ? WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY : WorkflowIdReusePolicy.REJECT_DUPLICATE;
}

/** A readable default id: the spec's name and the UTC start time. */
export function defaultBackfillId(name: string, now = new Date()): string {
  // A valid id whatever the name: it starts with a letter or digit, and the time fits after it.
  const slug = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 160).replace(/-+$/, '') || 'backfill';
  return `${slug}-${compactUtc(now)}`;
}

/**
 * The budgets a resume asks for: the ended run's limits (raised or lowered with set-budget since
 * its start), else what its start asked for. Its admission judges them against the policy in force.
 */
function resumedBudgets(carry: BackfillCarry, asked: StartOptions['budgets']): { budgets?: NonNullable<StartOptions['budgets']> } {
  const ledger = carry.governance?.budgets;
  if (!ledger) return asked ? { budgets: asked } : {};
  const budgets = {
    ...(ledger.retries.limit !== null ? { retries: ledger.retries.limit } : {}),
    ...(ledger.cost && ledger.cost.limit !== null ? { cost: ledger.cost.limit } : {}),
  };
  return Object.keys(budgets).length > 0 ? { budgets } : {};
}

/** How often, and how long apart, the runs of a backfill are listed again when the list lags behind a continued run (`goOnBase`). */
const RELISTS = 5;
const RELIST_WAIT_MS = 1_000;

/** For an id copied from the Web UI (the workflow id, backfill/<id>): the backfill's id to give instead; null for any other. */
function prefixedIdHint(backfillId: string): string | null {
  const prefixed = backfillIdOfWorkflow(backfillId);
  return prefixed !== null ? `give the backfill's id, '${prefixed}', without the workflow id's 'backfill/'` : null;
}

export class BackfillClient {
  /** Whether `start` has checked the search attributes, and whether it could list them. */
  private searchAttributes: { listed: boolean } | undefined;
  /** Each node's activity task queue, by the run whose input told it. */
  private readonly nodeQueues = new Map<string, ReadonlyMap<string, string>>();
  /** Plans of the backfills `status` asked about, for their live ETA (a backfill's plan never changes). */
  private readonly plans = new Map<string, Plan>();
  private readonly etas = new LiveEtas();

  private constructor(
    readonly client: Client,
    readonly connection: Connection,
    readonly settings: ConnectionSettings,
    private readonly uiBase: string,
    /**
     * The Web UI this client was told of (`uiUrl`, or BACKFILL_UI_URL in its defaults); null when
     * none was, and its links guess the dev server's default, DEFAULT_UI_URL.
     */
    readonly webUi: string | null,
    private readonly tracing: Tracing | undefined,
    private readonly defaults: ClientDefaults,
    /** Who this client says it is, to Temporal and in every control it sends. */
    readonly identity: string,
  ) {}

  /** Calls `status` starts beside its answer and may return or throw without (see `close`). */
  private readonly beside = new Set<Promise<void>>();

  private alongside<T>(call: Promise<T>): Promise<T> {
    const settled = call.then(
      () => undefined,
      () => undefined,
    );
    this.beside.add(settled);
    void settled.then(() => this.beside.delete(settled));
    return call;
  }

  static async connect(options: ConnectOptions = {}): Promise<BackfillClient> {
    const { settings: given, uiUrl, defaults = settingsFromEnv(), identity = defaultIdentity(), checkNamespace = true, ...overrides } = options;
    // Before it connects: every start of this client would go to a queue no worker can poll.
    if (defaults.taskQueue !== undefined) checkTaskQueue(defaults.taskQueue, 'BACKFILL_TASK_QUEUE (the workflow task queue backfills start on)', 'BACKFILL_TASK_QUEUE');
    const settings = given ?? resolveConnection(overrides);
    const tracing = tracingRequested() ? await startTracing('backfill-client') : undefined;
    const connection = await openConnection(settings, undefined, { checkNamespace });
    const webUi = uiUrl ?? defaults.uiUrl ?? null;
    const uiBase = webUi ?? DEFAULT_UI_URL;
    const client = new Client({ connection, namespace: settings.namespace, identity, ...(tracing ? { interceptors: tracing.client } : {}) });
    return new BackfillClient(client, connection, settings, uiBase.replace(/\/$/, ''), webUi, tracing, defaults, identity);
  }

  /** The `{ reason, identity }` every control carries. */
  private meta(options: ControlOptions = {}): ControlMeta {
    return { identity: this.identity, ...(options.reason !== undefined && options.reason.trim() !== '' ? { reason: options.reason } : {}) };
  }

  get namespace(): string {
    return this.settings.namespace;
  }

  get address(): string {
    return this.settings.address;
  }

  /** Registers the search attributes on the namespace (`backfill setup`; needs admin rights). */
  setup(): Promise<SetupResult> {
    return registerSearchAttributes(this.connection, this.namespace);
  }

  async close(): Promise<void> {
    // The SDK retries a call that failed for a passing reason (a full query buffer, say) after a
    // pause; the connection closed under that pause makes the retry throw where nothing catches it,
    // and the process dies. So what `status` left running beside its answer ends first, each call
    // within its deadline.
    await Promise.all(this.beside);
    await this.connection.close();
    await this.tracing?.flush();
  }

  uiUrl(workflowId: string, runId?: string): string {
    const base = `${this.uiBase}/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
    return runId ? `${base}/${runId}/history` : base;
  }

  private handle(backfillId: string): WorkflowHandle<typeof backfillWorkflow> {
    return this.client.workflow.getHandle<typeof backfillWorkflow>(backfillWorkflowId(backfillId));
  }

  /** Describes the latest run of a backfill, or throws `not_found` (`invalid_argument` for an id that names another of its workflows). */
  async describe(backfillId: string) {
    try {
      const description = await this.handle(backfillId).describe();
      if (description.type !== BACKFILL_WORKFLOW_TYPE) throw notABackfill(backfillId, description.type);
      return description;
    } catch (error) {
      // A namespace not checked at connect (`checkNamespace: false`): a missing one is named, with the fix.
      if (error instanceof NamespaceNotFoundError) await checkNamespace(this.connection, this.settings);
      if (error instanceof WorkflowNotFoundError) {
        throw this.noBackfill(backfillId);
      }
      throw error;
    }
  }

  /** `goesOn`: a new run of an ended backfill, its carry and the run whose end state that is (its signature names both). */
  async start(spec: ResolvedSpec, options: StartOptions = {}, goesOn?: { carry: BackfillCarry; fromRunId: string }): Promise<Started> {
    const carry = goesOn?.carry;
    const backfillId = options.id ?? defaultBackfillId(spec.name);
    if (!ID_PATTERN.test(backfillId)) {
      throw new BackfillError('invalid_argument', `--id '${backfillId}' must start with a letter or digit, followed by letters, digits and . _ : - (at most 200 characters in all), e.g. ${defaultBackfillId(spec.name)}`, 'id');
    }
    const workflowId = backfillWorkflowId(backfillId);
    // Refused here, before anything connects or waits (the workflow refuses them too: anyone may start one).
    const priority = startPriority(backfillId, options);
    const { startTextProblems } = await import('../core/governance.ts');
    const tooLong = startTextProblems({ reason: options.reason?.trim(), identity: this.identity });
    if (tooLong.length > 0) throw new BackfillError('invalid_argument', tooLong.map((p) => p.message).join('; '), tooLong[0]!.field);
    // A run that goes on (resume, retry-failed) runs no canary.
    const canary = carry ? undefined : (await import('../core/canary.ts')).startCanary(spec, options.canary, options.stage === true);
    const range = options.range ?? {};
    requirePartitionsInRange(spec, range);
    const plan = expandPlan(spec, range);
    this.searchAttributes ??= { listed: await requireSearchAttributes(this.connection, this.namespace) };
    // A run again while its rollback restores would lease the datasets under it, and the rollback would stop half-way.
    if (options.rerun && !carry) await this.notBeingRolledBack(backfillId);
    if (options.rerun && !carry) await this.noStagedLeftBehind(backfillId);
    const shared = options.sharedDatasets ?? this.defaults.sharedDatasets;
    if (!shared) await this.datasetsFree(backfillId, spec.nodes.map((n) => n.id), options.waitForDatasets);
    if (options.rerun || carry) {
      // A running backfill keeps its node workflows (starting it again fails below, naming --attach).
      const parentRunning = await this.describe(backfillId).then((d) => d.status.name === 'RUNNING', () => false);
      if (!parentRunning) await this.nodesClosed(backfillId, spec.nodes.map((n) => n.id));
    }
    // An id whose every run the policy refused ran nothing: a start that complies takes it again, without --rerun.
    const refusedRun = options.rerun || carry ? null : await this.refusedRunOnly(backfillId);
    const skip = options.skip && Object.keys(options.skip).length > 0 ? options.skip : undefined;
    const governance = {
      identity: this.identity,
      ...(options.reason !== undefined && options.reason.trim() !== '' ? { reason: options.reason.trim() } : {}),
      ...(options.budgets ? { budgets: options.budgets } : {}),
      ...(options.action ? { action: options.action } : {}),
      ...(options.resumeRequest ? { resumeRequest: options.resumeRequest } : {}),
      ...(options.signKey !== undefined
        ? {
            signature: await this.signStart(
              options.signKey,
              backfillId,
              { spec, range, ...(skip ? { skip } : {}), stage: options.stage === true, canary },
              options.reason,
              // A run with a carry goes on from an ended one: signed as its action, over the carry it starts from and the run that ended so.
              goesOn
                ? { action: options.resumeRequest?.retryFailed ? 'retry-failed' : 'resume', carry: goesOn.carry, afterRun: goesOn.fromRunId }
                : { afterRun: options.rerun ? await this.latestRunId(backfillId) : (refusedRun ?? FIRST_RUN) },
            ),
          }
        : {}),
    };
    const input: BackfillInput = {
      core: CORE_GENERATION,
      backfillId,
      spec,
      range,
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.tuning ? { tuning: options.tuning } : {}),
      ...(carry ? { carry } : {}),
      ...(skip ? { skip } : {}),
      ...(options.stage ? { stage: true } : {}),
      ...(canary ? { canary } : {}),
      governance,
    };
    const taskQueue = options.taskQueue !== undefined ? checkTaskQueue(options.taskQueue, 'the start\'s taskQueue', 'taskQueue') : (this.defaults.taskQueue ?? DEFAULT_TASK_QUEUE);
    let started: Started;
    try {
      const handle = await this.client.workflow.start<typeof backfillWorkflow>(BACKFILL_WORKFLOW_TYPE, {
        workflowId,
        taskQueue,
        args: [input],
        workflowIdReusePolicy: reusePolicy(options.rerun === true || carry !== undefined, refusedRun !== null),
        typedSearchAttributes: [{ key: BACKFILL_ID, value: backfillId }],
        staticSummary: backfillSummary(plan),
        staticDetails: backfillDetails(spec, plan, range),
        ...(priority ? { priority } : {}),
      });
      started = { backfillId, workflowId, runId: handle.firstExecutionRunId, uiUrl: this.uiUrl(workflowId, handle.firstExecutionRunId) };
    } catch (error) {
      // Credentials that may not list search attributes learn of missing ones here, before anything ran.
      const unregistered = unregisteredAttribute(error);
      if (unregistered !== undefined) throw rejectedAttribute(this.namespace, unregistered, this.searchAttributes.listed);
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        const running = await this.describe(backfillId).then((d) => d.status.name === 'RUNNING', () => false);
        throw new BackfillError(
          'already_exists',
          running
            ? `backfill '${backfillId}' is already running: watch it with 'backfill status ${shellWord(backfillId)} --watch', or choose another --id (with --attach, start goes on with the running one instead of failing)`
            : `backfill '${backfillId}' already ran: pass --rerun to run it again deliberately, or choose another --id`,
          'id',
        );
      }
      throw error;
    }
    if (options.admission === false) return started;
    return { ...started, admission: await this.admission(backfillId, taskQueue, ADMISSION_TIMEOUT_MS, options.onAdmissionWait) };
  }

  /**
   * The latest run of a backfill when the policy refused every run of its id at admission (core/id-reuse.ts), each one's history
   * showing it ran nothing: a start without --rerun follows it (a signed start names it). Null when the id is unused, or ran.
   */
  private async refusedRunOnly(backfillId: string): Promise<string | null> {
    const workflowId = backfillWorkflowId(backfillId);
    const latest = await this.describeIfAny(workflowId);
    const [{ refusedAtAdmission }, { refusedRunToFollow }, { ranNothing, runsOfWorkflowId }] = await Promise.all([
      import('../core/go-on-from.ts'),
      import('../core/id-reuse.ts'),
      import('./workflow-runs.ts'),
    ]);
    if (!latest || latest.type !== BACKFILL_WORKFLOW_TYPE || !refusedAtAdmission(latest)) return null;
    const runs = await runsOfWorkflowId(this.connection, this.namespace, workflowId);
    if (refusedRunToFollow(latest, runs) === null) return null;
    for (const runId of new Set([latest.runId, ...runs.map((r) => r.runId)])) {
      const history = await this.client.workflow.getHandle(workflowId, runId, { followRuns: false }).fetchHistory();
      if (!ranNothing(history.events ?? [])) return null;
    }
    return latest.runId;
  }

  /** The run id of the latest run of a backfill (the one a signed `start --rerun` follows), or FIRST_RUN when it has none. */
  private async latestRunId(backfillId: string): Promise<string> {
    try {
      return (await this.describe(backfillId)).runId;
    } catch (error) {
      if (error instanceof BackfillError && error.code === 'not_found') return FIRST_RUN;
      throw error;
    }
  }

  /**
   * The signed start: the canonical text of this start, signed with `keyFile` (ssh-keygen -Y sign).
   * Each names the run it follows (`afterRun`): a new run of an ended backfill (`goesOn`), the run
   * whose end is the carry it starts from, and it signs its action and that carry's hash too; a
   * start, the latest run of its id for a `--rerun`, else FIRST_RUN.
   */
  private async signStart(
    keyFile: string,
    backfillId: string,
    plan: PlanIdentity,
    reason: string | undefined,
    goesOn: { action: 'resume' | 'retry-failed'; carry: BackfillCarry; afterRun: string } | { afterRun: string },
  ) {
    const { signSubject } = await import('./sign.ts');
    return signSubject(
      {
        action: 'action' in goesOn ? goesOn.action : 'start',
        backfillId,
        namespace: this.namespace,
        planHash: planHash(plan),
        ...('action' in goesOn ? { carryHash: carryHash(goesOn.carry) } : {}),
        afterRun: goesOn.afterRun,
        reason: reason?.trim() ?? '',
        signedAt: new Date().toISOString(),
      },
      { keyFile },
    );
  }

  /**
   * Waits for the policy's decision on a start (the workers judge it): what it is waiting for,
   * or the refusal as a `policy_violation` naming the rules. Null when no worker polls the
   * workflow task queue (nobody can judge it yet) or none answered in time.
   */
  async admission(backfillId: string, taskQueue: string, timeoutMs = ADMISSION_TIMEOUT_MS, onWait?: (why: string | undefined, backfillId: string) => void): Promise<Admission | null> {
    if (await this.unpolled(taskQueue)) return null;
    const handle = this.handle(backfillId);
    const deadline = Date.now() + timeoutMs;
    // A start no worker with the policy judges waits here up to a minute: said, rather than silence.
    let decided = false;
    const slow = onWait
      ? setTimeout(() => {
          void handle.describe().then(
            (d) => decided || onWait(judgementWait(d.raw.pendingActivities), backfillId),
            () => decided || onWait(undefined, backfillId),
          );
        }, ADMISSION_NOTE_MS)
      : undefined;
    try {
      return await this.client.withDeadline(deadline, () => handle.executeUpdate(admissionUpdate));
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw refusedError(error.cause) ?? error;
      if (timedOut(error, deadline)) return null;
      // The workflow closed before the update reached it: a refused start has failed by now.
      const failure = await handle.result().then(() => undefined, (e: unknown) => e);
      if (failure instanceof WorkflowFailedError && failure.cause instanceof Error && (failure.cause as { type?: string }).type === 'policy_violation') {
        throw new BackfillError('policy_violation', failure.cause.message);
      }
      throw error;
    } finally {
      decided = true;
      clearTimeout(slow);
    }
  }

  /** Current progress: queried from a running backfill, or the final result of a finished one. */
  async progress(backfillId: string): Promise<Progress> {
    return this.progressOf(backfillId, await this.standing(backfillId, await this.describe(backfillId)));
  }

  /**
   * The run that says how a backfill stands: its latest, or, when the policy refused that one at
   * admission (a resume or retry-failed that ran nothing), the run it would have gone on from
   * (`goOnBase`): a refused resume of a cancelled backfill leaves it cancelled, not failed. Its
   * refusal was told to whoever sent it (the client waits for the admission), and `status` tells it too.
   */
  private standing(backfillId: string, latest: WorkflowExecutionDescription): Promise<WorkflowExecutionDescription> {
    // A server whose list of runs lags (goOnBase gives up) is read as before: by the latest.
    return this.goOnBase(backfillId, latest).catch(() => latest);
  }

  /**
   * Progress, plus the nodes whose partitions wait on a task queue that no worker polls
   * (`waiting`, empty once the backfill has ended).
   */
  async status(backfillId: string): Promise<Status> {
    const latest = await this.describe(backfillId);
    const description = await this.standing(backfillId, latest);
    const running = description.status.name === 'RUNNING' || description.status.name === 'CONTINUED_AS_NEW';
    // What the ETA and the waiting check read is asked for beside the progress, not after it.
    let input: Promise<BackfillInput | undefined> | undefined;
    const inputOnce = () => (input ??= this.alongside(this.firstInput(backfillWorkflowId(backfillId), description.runId)));
    // With no worker the ETA's query could only wait out its deadline, after status has said so.
    const workflowPollers = running ? this.workflowPollers(description.taskQueue) : undefined;
    const unpolled = workflowPollers?.then((pollers) => pollers !== undefined && pollers.length === 0);
    const eta = unpolled ? this.alongside(unpolled.then((none) => (none ? null : this.liveEta(backfillId, inputOnce)))).catch(() => null) : null;
    const progress = await this.progressOf(backfillId, description, workflowPollers);
    const notes = running ? pendingNotes(description.raw.pendingActivities) : {};
    const declined = notes.judgement !== undefined ? { judgement: notes.judgement } : {};
    // A worker that still holds the run may answer although its workflow task keeps failing: that progress no longer moves.
    const attempt = running ? (description.raw.pendingWorkflowTask?.attempt ?? 0) : 0;
    const failingAnswered = answeredWhileFailing(backfillId, attempt, () => this.taskFailure(backfillId, description));
    if (progress.state !== 'running') {
      // A rollback runs only once the backfill ended: one describe of its workflow id says whether there was one.
      const rollback = running ? undefined : await this.rollbackSince(backfillId, description);
      const shown = running ? progress : await this.discardSince(description, progress);
      const { admissionRefusal } = await import('../core/go-on-from.ts');
      const refused = admissionRefusal(latest);
      const failure = refused === null && description.status.name === 'FAILED' ? await this.failureOf(description) : undefined;
      return {
        ...withoutLiveHolds(shown),
        waiting: [],
        ...declined,
        ...(rollback ? { rollback } : {}),
        ...(refused !== null ? { refused, ...(latest.runId !== description.runId ? { refusedLater: latest.startTime.toISOString() } : {}) } : {}),
        ...(failure !== undefined ? { failure } : {}),
        ...(await failingAnswered),
      };
    }
    const queuedReads = {
      pendingActivities: async (id: string) => (await this.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => this.client.workflow.getHandle(id).describe())).raw.pendingActivities ?? [],
      partitions: async (node: string) => {
        const input = this.plans.has(backfillId) ? undefined : await inputOnce();
        if (input) this.plans.set(backfillId, expandPlan(input.spec, input.range));
        return this.plans.get(backfillId)?.byId.get(node)?.partitions;
      },
    };
    const [live, waiting, failing, queued] = await Promise.all([
      eta,
      this.waiting(backfillId, description.runId, progress, inputOnce, await workflowPollers),
      failingAnswered,
      queuedOf(backfillId, progress, queuedReads),
    ]);
    // The spec says which nodes wait on one no worker polls (read once already, to find the waiting ones).
    const spec = waiting.length > 0 ? (await inputOnce().catch(() => undefined))?.spec : undefined;
    const shown = withStall(withoutEtaWithoutWorker(live ? withLiveEta(progress, live) : progress, waiting, spec), live);
    return { ...withQueued(shown, queued), waiting: withTransforms(waiting, spec), ...notes, ...failing };
  }

  /**
   * What the server still tells of a backfill without a query, for `status` when no worker
   * answers (client/last-known.ts): null when it is not running or cannot be described.
   */
  async lastKnown(backfillId: string): Promise<LastKnown | null> {
    const workflowId = backfillWorkflowId(backfillId);
    const backfill = await this.describe(backfillId);
    if (backfill.status.name !== 'RUNNING') return null;
    return readLastKnown(backfillId, workflowId, (node) => nodeWorkflowId(backfillId, node), {
      describe: async (id) => {
        const d = id === workflowId ? backfill : await this.client.workflow.getHandle(id).describe().catch(() => null);
        if (!d) return null;
        return {
          startTime: d.startTime,
          taskQueue: d.taskQueue,
          status: d.status.name,
          state: d.typedSearchAttributes.get(BACKFILL_STATUS),
          memo: d.memo,
          pendingActivities: d.raw.pendingActivities?.length ?? 0,
        };
      },
      lastEventAt: async () => {
        const response = await this.client.withDeadline(Date.now() + 5000, () =>
          this.connection.workflowService.getWorkflowExecutionHistoryReverse({ namespace: this.namespace, execution: { workflowId, runId: backfill.runId }, maximumPageSize: 1 }),
        );
        const time = response.history?.events?.[0]?.eventTime;
        return time ? new Date(optionalTsToMs(time) ?? 0) : null;
      },
      nodes: async () => {
        const input = await this.firstInput(workflowId, backfill.runId);
        if (!input) return [];
        const plan = expandPlan(input.spec, input.range);
        return plan.nodes.map((n) => ({ id: n.id, taskQueue: n.spec.taskQueue, partitions: n.partitions.size }));
      },
      counts: async (nodes) => {
        const [{ reportedWork }, history] = await Promise.all([
          import('./report/history.ts'),
          this.client.withDeadline(Date.now() + 10_000, () => this.client.workflow.getHandle(workflowId, backfill.runId, { followRuns: false }).fetchHistory()),
        ]);
        const events = history.events ?? [];
        const decode = (payload: proto.temporal.api.common.v1.IPayload) => this.client.options.loadedDataConverter.payloadConverter.fromPayload(payload);
        const started = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
        const input = started ? (decode(started) as BackfillInput | undefined) : undefined;
        return recordedCounts(input?.carry, reportedWork(events, decode, (node) => nodeWorkflowId(backfillId, node)), nodes);
      },
    });
  }

  /** Why a failed run failed: its failure's innermost message (undefined when it cannot be read: its history gone). */
  private async failureOf(description: WorkflowExecutionDescription): Promise<string | undefined> {
    try {
      await this.client.workflow.getHandle(description.workflowId, description.runId, { followRuns: false }).result();
      return undefined;
    } catch (ended) {
      return ended instanceof WorkflowFailedError && ended.cause instanceof Error ? rootCause(ended.cause).message : undefined;
    }
  }

  /** The ETA of `plan --estimate`'s model from the backfill's state now and its live figures (client/eta.ts). */
  private liveEta(backfillId: string, inputOf: () => Promise<BackfillInput | undefined>): Promise<LiveEta> {
    return this.etas.get(backfillId, async () => {
      // The input is asked for beside the carried state (unless the plan is known): the waiting check reads it too.
      const asked = this.plans.has(backfillId) ? undefined : inputOf();
      asked?.catch(() => undefined);
      const carry = await this.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => this.handle(backfillId).query(carryQuery));
      if (!anyMeasured(carry.reports)) return NO_LIVE_ETA;
      let plan = this.plans.get(backfillId);
      if (!plan) {
        const input = await (asked ?? inputOf());
        if (!input) throw new Error(`no input in the history of ${backfillId}`);
        plan = expandPlan(input.spec, input.range);
        this.plans.set(backfillId, plan);
      }
      return liveEta(plan, carry, await liveWindows(carry.governance));
    });
  }

  private async progressOf(backfillId: string, description: WorkflowExecutionDescription, workflowPollers?: Promise<Poller[] | undefined>): Promise<Progress> {
    const status = description.status.name;
    // A closed run is read as itself: it may be the one before a run the policy refused (`standing`).
    const handle = status === 'RUNNING' || status === 'CONTINUED_AS_NEW' ? this.handle(backfillId) : this.client.workflow.getHandle<typeof backfillWorkflow>(backfillWorkflowId(backfillId), description.runId, { followRuns: false });
    if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') {
      // Asked at once, with the short wait that covers a worker just starting; only when a worker
      // polls the workflows' queue is it asked again, for the rest of the usual wait.
      const asked = Date.now();
      const shortDeadline = asked + UNPOLLED_QUERY_TIMEOUT_MS;
      const [pollers, first] = await Promise.all([
        workflowPollers ?? this.workflowPollers(description.taskQueue),
        this.client.withDeadline(shortDeadline, () => handle.query(progressQuery)).then(
          (progress) => ({ progress }),
          (error: unknown) => ({ error }),
        ),
      ]);
      if ('progress' in first) return first.progress;
      // None listed, or the listed ones silent for over a minute (killed: the server lists them for minutes).
      const none = pollers !== undefined && !polledLately(pollers);
      // Right after the last worker went away the server refuses the query at once (FAILED_PRECONDITION).
      if (noPollerSeen(first.error)) throw noWorkerError(backfillId, description.taskQueue);
      // Workers poll, but the run's workflow task keeps failing: none can answer (or answers only the failure).
      const attempt = description.raw.pendingWorkflowTask?.attempt ?? 0;
      const streak = none ? undefined : await failingStreakOf(attempt, () => this.taskFailure(backfillId, description));
      if (streak) throw taskFailingError(backfillId, attempt, streak.failure);
      // Refused as too busy (RESOURCE_EXHAUSTED, BusyWorkflow), it waits as for a timeout: whether workers poll tells the rest.
      if (!timedOut(first.error, shortDeadline) && busyRefusal(first.error) === undefined) throw first.error;
      if (none) throw noWorkerError(backfillId, description.taskQueue);
      const deadline = asked + QUERY_TIMEOUT_MS;
      try {
        return await this.client.withDeadline(deadline, () => handle.query(progressQuery));
      } catch (error) {
        if (noPollerSeen(error)) throw noWorkerError(backfillId, description.taskQueue);
        if (!timedOut(error, deadline) && busyRefusal(error) === undefined) throw error;
        // Workers that poll its queue are there: it is busy, not without a worker.
        throw unansweredError(backfillId, description.taskQueue, error, pollers, await this.workflowPollers(description.taskQueue));
      }
    }
    if (status === 'COMPLETED') return ((await handle.result()) as BackfillResult).progress;
    // Terminated or timed out through Temporal, it did not end itself: said as the server tells it, not as a failure of its own.
    const state = closedState(status);
    // A closed run still answers queries when a worker can replay it.
    const last = await this.client
      .withDeadline(Date.now() + 5000, () => handle.query(progressQuery))
      .catch(() => null);
    if (last) return { ...last, state };
    const { admissionRefusal } = await import('../core/go-on-from.ts');
    const refused = admissionRefusal(description);
    if (refused !== null) throw new BackfillError('not_running', `backfill '${backfillId}' was refused by the policy at its start, so nothing of it ran:\n${refused}`);
    const failure = status === 'FAILED' ? await this.failureOf(description) : undefined;
    if (failure !== undefined) throw new BackfillError('not_running', `backfill '${backfillId}' failed: ${failure}`);
    throw new BackfillError('not_running', `backfill '${backfillId}' ended ${endedText(state)}, and no worker is there to tell its final progress`);
  }

  /** The failure that began the run's current streak of failed workflow tasks: one read of its newest events. */
  private async taskFailure(backfillId: string, description: WorkflowExecutionDescription): Promise<TaskFailure | undefined> {
    const response = await this.client.withDeadline(Date.now() + 5000, () =>
      this.connection.workflowService.getWorkflowExecutionHistoryReverse({
        namespace: this.namespace,
        execution: { workflowId: backfillWorkflowId(backfillId), runId: description.runId },
        maximumPageSize: FAILURE_EVENTS,
      }),
    );
    return lastTaskFailure(response.history?.events ?? []);
  }

  /** Whether no worker has polled the workflow task queue for minutes (unknown, when describing it is not allowed: false). */
  private async unpolled(taskQueue: string): Promise<boolean> {
    const pollers = await this.workflowPollers(taskQueue);
    return pollers !== undefined && pollers.length === 0;
  }

  /** The pollers of a workflow task queue (undefined when describing it is not allowed). */
  private workflowPollers(taskQueue: string): Promise<Poller[] | undefined> {
    return pollersOf(this.connection, this.namespace, taskQueue, 'workflow').catch(() => undefined);
  }

  /** `workflowPollers`: those of the backfill's workflow task queue, whose polls tell the server's time too (`serverNow`). */
  private async waiting(backfillId: string, runId: string, progress: Progress, inputOf?: () => Promise<BackfillInput | undefined>, workflowPollers: readonly Poller[] = []): Promise<Waiting[]> {
    const busy = progress.nodes.filter((n) => (progress.paused ? n.running : n.running + n.pending) > 0);
    if (busy.length === 0) return [];
    const queueOf = await this.queuesOf(backfillId, runId, inputOf);
    const queues = new Set(busy.map((n) => queueOf.get(n.id)).filter((q): q is string => q !== undefined));
    const pollersByQueue = new Map<string, Poller[]>();
    await Promise.all(
      [...queues].map(async (queue) => {
        const pollers = await pollersOf(this.connection, this.namespace, queue, 'activity').catch(() => undefined);
        if (pollers) pollersByQueue.set(queue, pollers);
      }),
    );
    return waitingNodes(busy, progress.paused, queueOf, queueStates(pollersByQueue, Date.now(), workflowPollers));
  }

  /** Each node's activity task queue, from the spec in the run's input (read once per run). */
  private async queuesOf(backfillId: string, runId: string, inputOf?: () => Promise<BackfillInput | undefined>): Promise<ReadonlyMap<string, string>> {
    const known = this.nodeQueues.get(runId);
    if (known) return known;
    // A history this reader may not see leaves the check out rather than failing `status`.
    const input = await (inputOf ? inputOf() : this.firstInput(backfillWorkflowId(backfillId), runId)).catch(() => undefined);
    const queues = new Map(inputNodes(input).map((n) => [n.id, n.taskQueue]));
    if (input) this.nodeQueues.set(runId, queues);
    return queues;
  }

  /** Blocks until the backfill ends; `timeoutMs` bounds the wait. */
  async wait(backfillId: string, timeoutMs?: number): Promise<Outcome> {
    const described = await this.describe(backfillId);
    const handle = this.handle(backfillId);
    const outcome = async (): Promise<Outcome> => {
      for (let closedAttempts = 0; ; ) {
        try {
          const r = await handle.result();
          return { backfillId, state: r.state, progress: r.progress };
        } catch (error) {
          // A lost connection is not the end of the backfill: look again, and wait on if it runs.
          // A lasting refusal (credentials, a namespace or backfill gone) is: it ends the wait.
          const status = await this.describe(backfillId).then(
            (d) => d.status.name,
            (e: unknown) => (passing(e) ? 'UNKNOWN' : Promise.reject(this.lastingError(e))),
          );
          if (isOpen(status) || status === 'UNKNOWN') {
            if (status === 'UNKNOWN') await new Promise((r) => setTimeout(r, 1000));
            continue;
          }
          // Ended. Its result failed for a passing reason, not because it failed (WorkflowFailedError):
          // ask for the result again, which tells how it ended (a completed run is not a failed one).
          if (!(error instanceof WorkflowFailedError) && ++closedAttempts < WAIT_RESULT_ATTEMPTS) {
            await new Promise((r) => setTimeout(r, 1000));
            continue;
          }
          if (status === 'COMPLETED') throw error;
          // A resume the policy refused at admission (its run failed) leaves the backfill as the run before it ended.
          const ended = await this.describe(backfillId).catch(() => null);
          const state = ended ? await this.endedState(backfillId, ended).catch(() => closedState(status)) : closedState(status);
          const progress = await this.progress(backfillId).catch(() => null);
          // Why it failed, as status says it (not a resume the policy refused: that run stands for the one before it).
          const { admissionRefusal } = await import('../core/go-on-from.ts');
          const failure =
            ended?.status.name === 'FAILED' && admissionRefusal(ended) === null && error instanceof WorkflowFailedError && error.cause instanceof Error ? rootCause(error.cause).message : undefined;
          return { backfillId, state, progress, ...(failure !== undefined ? { failure } : {}) };
        }
      }
    };
    // One that has ended is told as it ended, whatever the timeout (--timeout 0 included).
    if (timeoutMs === undefined || !isOpen(described.status.name)) return outcome();
    let cancelTimer: (() => void) | undefined;
    const timeout = new Promise<Outcome>((resolve, reject) => {
      // Said with what it waits on when that is an operator (staged, a canary, paused) and its workers tell at once: a read
      // that takes longer must not stretch the timeout the caller gave.
      const stillRunning = async () => {
        let late: (() => void) | undefined;
        const progress = await Promise.race([
          this.progress(backfillId).catch(() => null),
          new Promise<null>((resolve) => (late = setLongTimeout(() => resolve(null), WAIT_TIMEOUT_READ_MS))),
        ]);
        late?.();
        return waitTimedOut(backfillId, timeoutMs, progress);
      };
      cancelTimer = setLongTimeout(() => {
        // Looked at again before it is said to run: it may have ended while its result was on its way.
        void this.describe(backfillId).then(
          (d) => (isOpen(d.status.name) ? stillRunning().then(reject) : resolve(outcome())),
          () => stillRunning().then(reject),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([outcome(), timeout]);
    } finally {
      cancelTimer?.();
    }
  }

  /** An error that will not pass by waiting, worded: refused credentials name the settings and the fix. */
  private lastingError(error: unknown): unknown {
    const code = grpcCode(error);
    if (code === GRPC.UNAUTHENTICATED || code === GRPC.PERMISSION_DENIED) return connectionFailure(this.settings, error);
    return error;
  }

  /** The running backfills other than `backfillId` that write any of `datasets` (nodes). */
  datasetWriters(backfillId: string, datasets: readonly string[]): Promise<DatasetWriter[]> {
    return datasetWriters(this.client, backfillId, datasets, (workflowId, runId) => this.firstInput(workflowId, runId));
  }

  /** Returns once no other running backfill writes `datasets`; without `wait`, throws `dataset_busy` if one does. */
  private async datasetsFree(backfillId: string, datasets: readonly string[], wait?: DatasetWait): Promise<void> {
    const deadline = wait?.timeoutMs === undefined ? Infinity : Date.now() + wait.timeoutMs;
    for (;;) {
      const writers = await this.datasetWriters(backfillId, datasets);
      if (writers.length === 0) return;
      // A backfill that ended without its cleanup (terminated) frees nothing by itself: waiting for it would never end.
      if (!wait || writers.every((w) => w.ended !== undefined)) throw datasetsBusy(backfillId, writers);
      if (Date.now() >= deadline) throw datasetsBusy(backfillId, writers, wait.timeoutMs);
      await wait.onWait?.(writers);
      await new Promise((r) => setTimeout(r, wait.pollMs ?? 2000));
    }
  }

  /** The input a workflow run was started with, from the first event of its history only. */
  private async firstInput<T = BackfillInput>(workflowId: string, runId: string): Promise<T | undefined> {
    const response = await this.connection.workflowService.getWorkflowExecutionHistory({
      namespace: this.namespace,
      execution: { workflowId, runId },
      maximumPageSize: 1,
    });
    const payload = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    return payload ? this.client.options.loadedDataConverter.payloadConverter.fromPayload<T>(payload) : undefined;
  }

  /**
   * Waits until the node workflows of a finished backfill have closed too (they end just
   * after their parent), so that a new run can start them again under the same ids. Node
   * workflows left running by a parent that was terminated are orphans: they are cancelled
   * (their running partitions stop cleanly), then terminated if they do not close.
   */
  private async nodesClosed(backfillId: string, nodes: readonly string[], graceMs = 5000, cancelMs = 60_000): Promise<void> {
    const status = (workflowId: string) =>
      this.client.workflow
        .getHandle(workflowId)
        .describe()
        .then((d) => d.status.name, (error: unknown) => (error instanceof WorkflowNotFoundError ? 'NOT_FOUND' : Promise.reject(error)));
    const running = async () => {
      const open: string[] = [];
      for (const node of nodes) if ((await status(nodeWorkflowId(backfillId, node))) === 'RUNNING') open.push(nodeWorkflowId(backfillId, node));
      return open;
    };
    const until = async (deadline: number) => {
      for (;;) {
        const open = await running();
        if (open.length === 0 || Date.now() > deadline) return open;
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    let orphans = await until(Date.now() + graceMs);
    if (orphans.length === 0) return;
    for (const id of orphans) await this.client.workflow.getHandle(id).cancel().catch(() => undefined);
    orphans = await until(Date.now() + cancelMs);
    for (const id of orphans) await this.client.workflow.getHandle(id).terminate(`orphaned: backfill ${backfillId} had ended`).catch(() => undefined);
  }


  /** The result of one run of a backfill that completed. */
  private async runResult(backfillId: string, runId: string): Promise<BackfillResult> {
    return (await this.client.workflow.getHandle<typeof backfillWorkflow>(backfillWorkflowId(backfillId), runId, { followRuns: false }).result()) as BackfillResult;
  }

  /** How a closed run ended, in words, as `status` says it (how the server closed it when its result cannot be read). */
  private async endedText(backfillId: string, latest: WorkflowExecutionDescription): Promise<string> {
    return endedText(await this.endedState(backfillId, latest).catch(() => closedState(latest.status.name)));
  }

  /** How a closed run of a backfill ended, as `status` says it: its result's state, or how the server closed it. */
  private async endedState(backfillId: string, latest: WorkflowExecutionDescription): Promise<BackfillState> {
    const description = await this.standing(backfillId, latest);
    const status = description.status.name;
    if (status !== 'COMPLETED') return closedState(status);
    // A result that cannot be read (its history gone) still ended completed, as the server says.
    return this.runResult(backfillId, description.runId).then((r) => r.state, (): BackfillState => 'completed');
  }

  /**
   * A publish or discard of a closed run whose staged versions were published or discarded:
   * refused as the running workflow refuses it (`already_decided`, and by whom), rather than as
   * "not running (it ended completed)", which hid that the decision was taken.
   */
  private async refuseDecidedAlready(backfillId: string, description: WorkflowExecutionDescription, decision: 'publish' | 'discard'): Promise<void> {
    if (description.status.name !== 'COMPLETED') return;
    const staged = await this.runResult(backfillId, description.runId).then((r) => r.carry?.staged, () => undefined);
    if (staged?.phase !== 'published' && staged?.phase !== 'discarded') return;
    const next = staged.phase === 'published' && decision === 'discard' ? `: to undo the publish, backfill rollback ${shellWord(backfillId)}` : '; nothing is left to decide';
    throw new BackfillError('already_decided', `backfill '${backfillId}': the staged versions were ${staged.phase} already (by ${staged.decision?.by ?? 'someone'})${next}`);
  }

  /** The final result of a finished backfill (to resume it). */
  async result(backfillId: string): Promise<BackfillResult> {
    return (await this.handle(backfillId).result()) as BackfillResult;
  }

  /**
   * Sends a control (an update) to a running backfill and returns its reply. It is refused at
   * once (`no_worker`) when nobody polls the backfill's workflow task queue, and it gives up
   * (`timeout`) when no worker has taken it within UPDATE_TIMEOUT_MS: without a worker the server
   * holds an update for as long as the workflow runs, so a call that waited on would hang, and
   * apply whenever a worker returns. `decision`: a staged decision, whose activity may outlive a
   * workflow that closes under it; once a worker has taken it, its reply is waited for however
   * long it takes (a publish of many partitions).
   */
  private async update<R, A extends [unknown, ...unknown[]]>(backfillId: string, definition: UpdateDefinition<R, A>, args: A, decision?: 'publish' | 'discard'): Promise<R> {
    const description = await this.describe(backfillId);
    if (description.status.name !== 'RUNNING') {
      if (decision !== undefined) await this.refuseDecidedAlready(backfillId, description, decision);
      throw notRunningError(backfillId, await this.endedState(backfillId, description));
    }
    const taskQueue = description.taskQueue;
    if (await this.unpolled(taskQueue)) throw controlNoWorker(backfillId, taskQueue);
    const deadline = Date.now() + UPDATE_TIMEOUT_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const accepted = await this.client.withDeadline(deadline, () => this.handle(backfillId).startUpdate(definition, { args, waitForStage: WorkflowUpdateStage.ACCEPTED }));
        return decision !== undefined ? await accepted.result() : await this.client.withDeadline(deadline, () => accepted.result());
      } catch (error) {
        if (!(error instanceof WorkflowUpdateFailedError)) {
          if (noPollerSeen(error)) throw controlNoWorker(backfillId, taskQueue);
          if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError || timedOut(error, deadline)) throw controlTimeout(backfillId, taskQueue);
        }
        // The workflow task that held the update failed (say, a continue-as-new or the last task
        // refused because new events arrived): the update did not apply, and the server asks
        // for it again. A few attempts, then the error as it is.
        const grpc = error instanceof Error && error.cause !== undefined ? error.cause : error;
        if (attempt < UPDATE_ATTEMPTS && isGrpcServiceError(grpc) && grpc.code === GRPC_FAILED_PRECONDITION) {
          const running = await this.describe(backfillId).then((d) => d.status.name === 'RUNNING', () => false);
          if (running && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 100 * attempt));
            continue;
          }
        }
        throw await this.updateError(backfillId, error, decision);
      }
    }
  }

  /** The BackfillError an update failed with: the workflow's refusal as it was raised, or why it did not apply. */
  private async updateError(backfillId: string, error: unknown, decision?: 'publish' | 'discard'): Promise<unknown> {
    if (error instanceof WorkflowUpdateFailedError) {
      // The workflow refused with the BackfillError's code as the failure type (see `refusal`).
      const refused = refusedError(error.cause);
      if (refused) return refused;
      // A decision the warehouse could not carry out fails as 'Activity task failed': its cause says why.
      const why = causeChain(error.cause) ?? error.message;
      return new BackfillError(
        'failed',
        decision !== undefined
          ? `backfill '${backfillId}': the ${decision} failed: ${why}; it waits for a decision again ('backfill audit ${shellWord(backfillId)}' records the failure)`
          : `backfill '${backfillId}' refused the change: ${why}`,
      );
    }
    // An update in flight when the backfill closed is aborted: it never applied.
    const ended = await this.describe(backfillId).then((d) => (d.status.name === 'RUNNING' ? undefined : d.status.name), () => undefined);
    if (ended !== undefined && decision !== undefined) {
      // A cancel waits for a decision under way, but a termination does not: the warehouse may have carried it out all the same.
      return new BackfillError(
        'not_running',
        `backfill '${backfillId}' ended (${ended.toLowerCase()}) before its ${decision} replied: if it had begun, the warehouse may have carried it out all the same ('backfill lineage <dataset> <partition>' shows whether its versions are ${decision === 'publish' ? 'published' : 'discarded'})`,
      );
    }
    if (ended !== undefined) {
      return new BackfillError('not_running', `backfill '${backfillId}' ended (${ended.toLowerCase()}) before the change could apply: nothing changed`);
    }
    return error;
  }

  /**
   * A staged backfill's decision: publish every staged version at once, or discard them. The
   * workflow refuses it unless the backfill is staged and waiting; it records who (this
   * client's identity) and why.
   */
  async decideStaged(backfillId: string, action: 'publish' | 'discard', reason?: string): Promise<StagedReply> {
    if (action === 'discard') {
      const description = await this.describe(backfillId);
      if (ENDED_UNDECIDED.has(description.status.name)) return this.discardEnded(backfillId, description, reason);
    } else {
      const ended = await this.endedDecision(backfillId, 'publish');
      if (ended) throw ended;
    }
    const request = { by: this.client.options.identity, ...(reason !== undefined ? { reason } : {}) };
    return this.update(backfillId, action === 'publish' ? publishUpdate : discardUpdate, [request], action);
  }

  /**
   * `discard` of a staged backfill (or a canary) that was cancelled or failed before its
   * decision: what its run staged would stay in the warehouse for good, so a workflow of its own
   * (`discardEndedWorkflow`) drops it, under the policy's rules for a discard. Idempotent.
   */
  private async discardEnded(backfillId: string, description: Awaited<ReturnType<BackfillClient['describe']>>, reason?: string): Promise<StagedReply> {
    const carry = await this.endState(backfillId, description.status.name);
    const phase = carry.staged?.phase ?? carry.canary?.phase;
    if (phase === undefined) {
      throw new BackfillError('not_staged', `backfill '${backfillId}' was not started with --stage or --canary: it staged nothing (it ended ${description.status.name.toLowerCase()})`);
    }
    if (phase === 'published') {
      throw new BackfillError('not_staged', `backfill '${backfillId}' published its staged versions before it ended: there is nothing staged to drop (undo the publish with backfill rollback ${shellWord(backfillId)})`);
    }
    const input = await this.firstInput(backfillWorkflowId(backfillId), description.runId);
    if (!input) throw new BackfillError('failed', `cannot read the spec of backfill '${backfillId}' from its workflow history, so its workers' task queue is unknown: is the history still retained?`);
    // A node workflow still winding down may stage one more partition: wait until they have closed.
    await this.nodesClosed(backfillId, input.spec.nodes.map((n) => n.id));
    const workflowId = discardWorkflowId(backfillId);
    const admittedUnder = pinnedPolicy(carry.governance);
    const discard: DiscardEndedInput = {
      backfillId,
      runKey: carry.runKey,
      taskQueue: input.spec.nodes[0]!.taskQueue,
      audit: this.meta({ ...(reason !== undefined ? { reason } : {}) }),
      ...(admittedUnder !== null ? { admittedUnder } : {}),
    };
    // A second discard finds nothing left to drop; one running already is joined.
    const handle = await this.taggedStart(() =>
      this.client.workflow.start<typeof discardEndedWorkflow>('discardEndedWorkflow', { workflowId, taskQueue: description.taskQueue, args: [discard], ...this.afterEnd(backfillId) }),
    );
    try {
      const outcome = await handle.result();
      return { ...outcome, action: 'discard', by: this.client.options.identity ?? 'unknown', reason: reason ?? null };
    } catch (error) {
      if (!(error instanceof WorkflowFailedError)) throw error;
      const cause = rootCause(error);
      if ((cause as { type?: string }).type === 'policy_violation') throw new BackfillError('policy_violation', cause.message);
      throw new BackfillError('failed', `the discard of what backfill '${backfillId}' staged failed: ${cause.message}`);
    }
  }

  /**
   * A staged run (or a canary) that ended before its decision, with the discard of its own run
   * since (`discardEnded`), as `audit` reads it: its last action, and what it staged discarded.
   */
  private async discardSince(description: WorkflowExecutionDescription, progress: Progress): Promise<Progress> {
    const phase = progress.staged?.phase ?? progress.canary?.phase;
    if (phase === undefined || !ENDED_UNDECIDED.has(description.status.name) || !undecided(phase)) return progress;
    const since = (description.closeTime ?? description.startTime).getTime();
    const runs = await auditRuns(this, discardWorkflowId(progress.backfillId), since);
    const entries = runs.flatMap((run) => run.records.map(({ workflowId: _w, runId: _r, ...entry }) => entry));
    return withDiscardAfterEnd(progress, entries, runs.some((run) => run.status === 'COMPLETED'));
  }

  /** Whether a discard of an ended run dropped what `runKey` staged (a resume would then count those partitions done). */
  private async discardedAfterEnd(backfillId: string, runKey: string): Promise<boolean> {
    const workflowId = discardWorkflowId(backfillId);
    const description = await this.describeIfAny(workflowId);
    if (description?.status.name !== 'COMPLETED') return false;
    const input = (await this.firstInput(workflowId, description.runId)) as unknown as DiscardEndedInput | undefined;
    return input?.runKey === runKey;
  }

  /**
   * A canary's approval: its slice's staged versions are published and the rest of the backfill
   * runs. Not the policy's signed approval (`approve`): the workflow refuses it with `not_canary`
   * for a backfill without a canary, `not_ready` while the slice runs.
   */
  async approveCanary(backfillId: string, reason: string): Promise<CanaryReply> {
    const ended = await this.endedDecision(backfillId, 'approve');
    if (ended) throw ended;
    return this.update(backfillId, approveCanaryUpdate, [{ by: this.client.options.identity, reason }], 'publish');
  }

  /**
   * Why a `publish` or a canary's `approve` of a backfill that has ended cannot apply, and what
   * to do (it said only "is not running (it ended completed)"): it was not staged, it was decided
   * already, or it ended before its decision. Null while it runs, or when its end cannot be read.
   */
  private async endedDecision(backfillId: string, action: 'publish' | 'approve'): Promise<BackfillError | null> {
    const description = await this.describe(backfillId);
    if (isOpen(description.status.name)) return null;
    const carry = await this.endState(backfillId, description.status.name).catch(() => null);
    if (!carry) return null;
    const id = shellWord(backfillId);
    const phase = action === 'publish' ? carry.staged?.phase : carry.canary?.phase;
    // A staged backfill's decision taken already is refused as the update path refuses it (refuseDecidedAlready).
    if (phase === 'published' || (phase === 'discarded' && action === 'publish')) return null;
    if (phase === 'approved' || phase === 'discarded') {
      const by = carry.canary?.decision?.by ?? 'someone';
      return new BackfillError('already_decided', `backfill '${backfillId}': the canary was ${phase} already (by ${by}); nothing is left to decide`);
    }
    const how = await this.endedText(backfillId, description);
    if (phase === undefined) {
      return action === 'publish'
        ? new BackfillError('not_staged', `backfill '${backfillId}' was not started with --stage: each partition was published as it finished (it ended ${how}), so there is nothing to publish (undo it with 'backfill rollback ${id}')`)
        : new BackfillError('not_canary', `backfill '${backfillId}' has no canary (it ended ${how}): there is nothing to approve`);
    }
    return new BackfillError(
      'not_running',
      `backfill '${backfillId}' ended ${how} before its decision: go on with 'backfill resume ${id}', then ${action} it; or drop what it staged with 'backfill discard ${id}'`,
    );
  }

  /**
   * The run whose versions a staged backfill (or a canary's slice) staged, and the key columns
   * the nodes of the spec it runs with now declare (what `diffStaged` compares by); refused for a
   * backfill that was not started with --stage or --canary.
   */
  async stagedRun(
    backfillId: string,
  ): Promise<{ backfillId: string; runKey: string; phase: StagedPhase | CanaryPhase; keys: Record<string, string[]>; end: StagedEnd | null; decided: StagedDecided | null }> {
    const description = await this.describe(backfillId);
    const carry = await this.endState(backfillId, description.status.name);
    const phase = carry.staged?.phase ?? carry.canary?.phase;
    if (phase === undefined) throw new BackfillError('not_staged', `backfill '${backfillId}' was not started with --stage: its partitions were published as they finished (see what it changed with 'backfill report ${shellWord(backfillId)}')`);
    const input = await this.firstInput(backfillWorkflowId(backfillId), description.runId);
    // The key schema is zod's: loaded here, so `status` does not load zod.
    const [{ diffKeys }, { resumedSpec }] = await Promise.all([import('../core/diff-keys.ts'), import('../core/coordinator.ts')]);
    // The keys of the spec the run uses now: a `resume --spec` sent while it ran is in its carry, not in its input.
    const spec = input ? resumedSpec(carry, input.spec) : carry.spec;
    const closed = ENDED_UNDECIDED.has(description.status.name) ? closedState(description.status.name) : null;
    const endedAs = endedUndecided(phase, closed);
    const end = endedAs && { state: endedAs, discarded: await this.discardedAfterEnd(backfillId, carry.runKey) };
    // Who published (or discarded, or approved a canary's slice) and when: what `diff` says once nothing is staged.
    const decision = carry.staged?.decision ?? carry.canary?.decision;
    const decided = decision ? { by: decision.by, at: decision.at } : null;
    return { backfillId, runKey: carry.runKey, phase, keys: diffKeys(spec?.nodes ?? []), end, decided };
  }

  /**
   * The spec a running backfill took from a `resume --spec` since its run started (in its carry,
   * not yet in its history): null when none did, or when no worker answers in time.
   */
  async replacedSpec(backfillId: string): Promise<ResolvedSpec | null> {
    const carry = await this.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => this.handle(backfillId).query(carryQuery)).catch(() => null);
    return carry?.spec ?? null;
  }

  /**
   * Before a new spec reaches a running backfill: the partitions it has published whose
   * transform, SQL or parameters the new spec changes (it goes on with the new spec for the rest
   * and leaves them as they are). Null when none, or when no worker answers in time: a short
   * wait, as the spec's update waits for a worker after it.
   */
  private async keptWhileRunning(backfillId: string, spec: ResolvedSpec): Promise<KeptOldOutput | null> {
    const [carry, input] = await Promise.all([
      this.client.withDeadline(Date.now() + UNPOLLED_QUERY_TIMEOUT_MS, () => this.handle(backfillId).query(carryQuery)).catch(() => null),
      this.inputOf(backfillId).catch(() => undefined),
    ]);
    const current = carry?.spec ?? input?.spec;
    if (!carry || !current) return null;
    const { keptOldOutput } = await import('../core/kept-output.ts');
    const nodes = keptOldOutput(current, spec, carry.readiness);
    return nodes.length > 0 ? { nodes, range: input?.range ?? {}, running: true } : null;
  }

  pause(backfillId: string, options: ControlOptions = {}): Promise<ControlState> {
    return this.update(backfillId, pauseUpdate, [this.meta(options)]);
  }

  /** A new spec for a running backfill (same nodes and partitions): the nodes it changed. */
  replaceSpec(backfillId: string, spec: ResolvedSpec, options: ControlOptions = {}): Promise<string[]> {
    return this.update(backfillId, replaceSpecUpdate, [spec, this.meta(options)]);
  }

  /**
   * Goes on. A running backfill is un-paused (with `spec`, it runs on with it). A backfill that
   * was cancelled, failed or completed with failures is resumed in a new run of the same id
   * that skips every published partition, with its spec or `spec` (the same nodes and
   * partitions; transforms, SQL, parameters, checks and limits may differ).
   */
  async resume(
    backfillId: string,
    options: { spec?: ResolvedSpec } & GoOnOptions = {},
  ): Promise<{ state: ControlState | null; changed: string[]; /** As retry-failed's: published partitions the new spec does not reach. */ keptOldOutput?: KeptOldOutput; resumed: Started | null }> {
    let description = await this.describe(backfillId);
    if (description.status.name === 'RUNNING') {
      if (options.signKey !== undefined) throw signedWhileRunning('resume', backfillId);
      if (limitsGiven(options.limits)) throw limitsWhileRunning('resume', backfillId, options.limits);
      const outcome = await this.changeRunning(
        backfillId,
        async () => {
          const kept = options.spec ? await this.keptWhileRunning(backfillId, options.spec) : null;
          const changed = options.spec ? await this.replaceSpec(backfillId, options.spec, options) : [];
          const state = await this.update(backfillId, resumeUpdate, [this.meta(options)]);
          return { state, changed, kept };
        },
        (state) =>
          state === 'staged'
            ? `a new spec cannot change what it staged: publish it (backfill publish ${shellWord(backfillId)}), or discard it (backfill discard ${shellWord(backfillId)}) and then stage the fix as a new run: backfill start <spec> --id ${shellWord(backfillId)} --rerun --stage`
            : `a new spec cannot change the slice it staged: approve it first (backfill approve ${shellWord(backfillId)} --reason ...; the new spec then applies to the rest with resume --spec), or discard it and start again with the fix (backfill start <spec> --id ${shellWord(backfillId)} --rerun --canary <n>)`,
      );
      if ('applied' in outcome) {
        const { state, changed, kept } = outcome.applied;
        // A new spec that changed nodes is a change, though the backfill was not paused: no `unchanged`.
        const { unchanged: _unchanged, ...changedState } = state;
        return { state: changed.length > 0 ? changedState : state, changed, ...(kept && changed.length > 0 ? { keptOldOutput: kept } : {}), resumed: null };
      }
      // Caught in the moment it ended: the new spec goes on in a new run.
      if (outcome.ended.state === 'completed') {
        throw new BackfillError(
          'not_running',
          `backfill '${backfillId}' completed before the new spec could apply: nothing is left to run with it (start it again with --rerun to recompute with the new spec)`,
        );
      }
      description = await this.describe(backfillId);
    }
    // Every partition of a backfill that completed is published: a new run would skip them all, and compute nothing with a new spec.
    // Judged on the run a new one goes on from (a run the policy refused at admission ran nothing: the one before it).
    description = await this.goOnBase(backfillId, description);
    if (description.status.name === 'COMPLETED' && (await this.runResult(backfillId, description.runId)).state === 'completed') {
      throw new BackfillError(
        'not_running',
        `backfill '${backfillId}' completed: nothing is left to resume${options.spec ? ' with the new spec' : ''} (start it again with --rerun to recompute it)`,
      );
    }
    const resumed = await this.goOn(backfillId, description, {
      ...(options.spec ? { spec: options.spec } : {}),
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
      ...(options.signKey !== undefined ? { signKey: options.signKey } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
    });
    return { state: null, changed: resumed.changed, ...(resumed.kept ? { keptOldOutput: resumed.kept } : {}), resumed: resumed.started };
  }

  /**
   * A change to a running backfill (`change` sends its updates). One refused because the backfill
   * has settled (`finishing`) is sent again until it applies or the backfill has ended (then
   * `ended`), for at most FINISHING_WAIT_MS; a backfill that settled into waiting for a decision
   * (staged, or a canary's slice) ends only after one, so the change is refused at once, with
   * `whileDeciding`: what to do instead.
   */
  private async changeRunning<R>(backfillId: string, change: () => Promise<R>, whileDeciding: (state: 'staged' | 'awaiting_canary') => string): Promise<{ applied: R } | { ended: Outcome }> {
    const deadline = Date.now() + FINISHING_WAIT_MS;
    for (let settling = false; ; settling = true) {
      try {
        return { applied: await change() };
      } catch (error) {
        if (!(error instanceof BackfillError && (error.code === 'finishing' || (settling && error.code === 'not_running')))) throw error;
        // Ended meanwhile (an update in flight as it closed is aborted too): the caller goes on from its end.
        const status = (await this.describe(backfillId)).status.name;
        if (status !== 'RUNNING') return { ended: await this.wait(backfillId) };
        if (error.code !== 'finishing') throw error;
      }
      const state = await this.progress(backfillId).then((p) => p.state, () => null);
      if (state === 'staged' || state === 'awaiting_canary') {
        const what = state === 'staged' ? 'has staged its partitions and waits for publish or discard' : "has run its canary's slice and waits for approve or discard";
        throw new BackfillError('finishing', `backfill '${backfillId}' ${what}: ${whileDeciding(state)}`);
      }
      if (Date.now() >= deadline) {
        throw new BackfillError(
          'timeout',
          `backfill '${backfillId}' has settled but did not end within ${FINISHING_WAIT_MS / 60_000} minutes: nothing changed (see backfill status ${shellWord(backfillId)}; once it has ended, send this again)`,
        );
      }
      await new Promise((r) => setTimeout(r, FINISHING_POLL_MS));
    }
  }

  /** The state a closed backfill (its run `runId`, else its latest) ended with: its result, or (cancelled, failed) a query a worker answers by replaying it. */
  private async endState(backfillId: string, status: string, runId?: string): Promise<BackfillCarry> {
    const handle = runId === undefined ? this.handle(backfillId) : this.client.workflow.getHandle<typeof backfillWorkflow>(backfillWorkflowId(backfillId), runId, { followRuns: false });
    if (status === 'COMPLETED') return ((await handle.result()) as BackfillResult).carry;
    try {
      return await this.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(carryQuery));
    } catch (error) {
      throw new BackfillError('not_running', `cannot read where backfill '${backfillId}' stopped (${(error as Error).message}): start a worker on its task queue, then try again`);
    }
  }

  /**
   * Refuses to go on with a backfill rolled back since its last run began (or being rolled
   * back): a new run would count the partitions the rollback restored as done, publish only
   * what failed, and end `completed` with most of its data undone. A rollback the policy
   * refused restored nothing, so it does not count.
   */
  private async notRolledBack(backfillId: string, description: WorkflowExecutionDescription): Promise<void> {
    const workflowId = rollbackWorkflowId(backfillId);
    const latest = await this.describeIfAny(workflowId);
    const since = description.startTime.getTime();
    if (!latest || latest.startTime.getTime() < since) return;
    const runs = new Map<string, string>([[latest.runId, latest.status.name]]);
    for await (const execution of this.client.workflow.list({ query: `WorkflowId = ${visibilityLiteral(workflowId)}` })) {
      if (execution.startTime.getTime() >= since) runs.set(execution.runId, execution.status.name);
    }
    const fix = `start it again, deliberately, to recompute every partition: backfill start <spec> --id ${shellWord(backfillId)} --rerun`;
    if (latest.status.name === 'RUNNING') {
      throw new BackfillError('not_running', `backfill '${backfillId}' is being rolled back, so there is nothing to resume: wait for the rollback to end ('backfill rollback ${shellWord(backfillId)}' attaches to it), then ${fix}`);
    }
    for (const [runId, status] of runs) {
      if (status === 'FAILED' && (await this.refusedByPolicy(workflowId, runId))) continue;
      throw new BackfillError(
        'not_running',
        `backfill '${backfillId}' was rolled back after its last run (rollback ${status.toLowerCase()}): the partitions it published are back at their versions before it, ` +
          `and a resumed run would count them done and recompute nothing; ${fix}`,
      );
    }
  }

  /**
   * The backfill's rollback since its latest run began, as `status` shows it; undefined when there
   * is none, or only one the policy refused (it restored nothing).
   */
  private async rollbackSince(backfillId: string, description: WorkflowExecutionDescription): Promise<StatusRollback | undefined> {
    const workflowId = rollbackWorkflowId(backfillId);
    const latest = await this.describeIfAny(workflowId);
    if (!latest || latest.startTime.getTime() < description.startTime.getTime()) return undefined;
    const state = latest.status.name === 'RUNNING' ? 'running' : latest.status.name === 'COMPLETED' ? 'completed' : 'failed';
    if (state === 'failed' && (await this.refusedByPolicy(workflowId, latest.runId))) return undefined;
    const input = await this.firstInput<RollbackInput>(workflowId, latest.runId).catch(() => undefined);
    let counts: StatusRollback['counts'] = null;
    if (state === 'completed') {
      const { restored, removed, alreadyRestored, leftAlone } = await this.client.workflow.getHandle<typeof rollbackWorkflow>(workflowId, latest.runId, { followRuns: false }).result();
      counts = { restored, removed, alreadyRestored, leftAlone };
    }
    return {
      state,
      endedAt: latest.closeTime?.toISOString() ?? null,
      by: input?.audit?.identity ?? null,
      counts,
    };
  }

  /** The backfill's rollback workflow, if one is running. */
  private async runningRollback(backfillId: string): Promise<WorkflowExecutionDescription | undefined> {
    const description = await this.describeIfAny(rollbackWorkflowId(backfillId));
    return description?.status.name === 'RUNNING' ? description : undefined;
  }

  /** The latest run of a backfill, or undefined when the server keeps no history of it (its retention removed it, or no such id). */
  private async describeKept(backfillId: string): Promise<Awaited<ReturnType<BackfillClient['describe']>> | undefined> {
    // No backfill has such an id (backfill/<id>, say, copied from the Web UI): a rollback of it would look for it in the ledger, as
    // one whose history is gone. Other ids the client would not start with may still name one a hand-made start ran: those go on.
    if (backfillId.trim() === '' || backfillId.includes('/')) {
      const hint = prefixedIdHint(backfillId);
      throw new BackfillError('invalid_argument', `'${backfillId}' is not a backfill id (none holds a '/')${hint !== null ? `: ${hint}` : ''}`, 'id');
    }
    try {
      return await this.describe(backfillId);
    } catch (error) {
      if (error instanceof BackfillError && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  /** The latest run of a workflow, or undefined when there is none. */
  private describeIfAny(workflowId: string): Promise<WorkflowExecutionDescription | undefined> {
    return this.client.workflow
      .getHandle(workflowId)
      .describe()
      .catch((error: unknown) => (error instanceof WorkflowNotFoundError ? undefined : Promise.reject(error)));
  }

  /**
   * Refuses `start --rerun` of a backfill whose last run ended with versions it staged (with
   * --stage or a canary) neither published nor discarded: a new run publishes or discards only
   * its own, so they would stay in the warehouse for good, out of any command's reach.
   */
  private async noStagedLeftBehind(backfillId: string): Promise<void> {
    const description = await this.describeIfAny(backfillWorkflowId(backfillId));
    if (!description || description.status.name === 'RUNNING') return;
    const input = await this.firstInput(backfillWorkflowId(backfillId), description.runId);
    if (!input || (input.stage !== true && input.canary === undefined)) return;
    const carry = await this.endState(backfillId, description.status.name);
    const phase = carry.staged?.phase ?? carry.canary?.phase;
    if (phase === undefined || DECIDED_PHASES.has(phase)) return;
    if (await this.discardedAfterEnd(backfillId, carry.runKey)) return;
    const id = shellWord(backfillId);
    throw new BackfillError(
      'staged_undecided',
      `backfill '${backfillId}' ended (${await this.endedText(backfillId, description)}) with versions it staged neither published nor discarded: a new run could not reach them, and they would stay in the warehouse. ` +
        `Drop them first (backfill discard ${id}), then start again with --rerun; or go on from them (backfill resume ${id}), then publish or discard`,
    );
  }

  /** Refuses `start --rerun` while the backfill is being rolled back: the new run would lease its datasets, and the rollback's restores would fail half-way. */
  private async notBeingRolledBack(backfillId: string): Promise<void> {
    if (!(await this.runningRollback(backfillId))) return;
    throw new BackfillError(
      'still_running',
      `backfill '${backfillId}' is being rolled back: wait for it to end ('backfill rollback ${shellWord(backfillId)}' attaches to it and waits), then start again with --rerun`,
    );
  }

  /** Whether a failed rollback run was the policy's refusal, which it meets before restoring anything. */
  private async refusedByPolicy(workflowId: string, runId: string): Promise<boolean> {
    try {
      await this.client.workflow.getHandle(workflowId, runId, { followRuns: false }).result();
      return false;
    } catch (error) {
      return error instanceof WorkflowFailedError && (rootCause(error) as { type?: string }).type === 'policy_violation';
    }
  }

  /**
   * The run of a closed backfill that a new run goes on from (core/go-on-from.ts): its latest,
   * or, when the policy refused that one at admission, the latest run before it that was admitted.
   */
  private async goOnBase(backfillId: string, latest: WorkflowExecutionDescription): Promise<WorkflowExecutionDescription> {
    const { admittedBefore, refusedAtAdmission } = await import('../core/go-on-from.ts');
    if (!refusedAtAdmission(latest)) return latest;
    const { runsOfWorkflowId } = await import('./workflow-runs.ts');
    const workflowId = backfillWorkflowId(backfillId);
    const listed = () => runsOfWorkflowId(this.connection, this.namespace, workflowId);
    // The list may lag behind the runs' ends: a run continued may not have its next run listed yet (listed again), and
    // one may have been refused since it was listed. Its description is current.
    let runs = await listed();
    for (let relisted = 0; ; ) {
      const from = admittedBefore({ runId: latest.runId, startedAt: latest.startTime.getTime() }, runs);
      if (from === null) return latest;
      const described = await this.client.workflow.getHandle(workflowId, from.runId, { followRuns: false }).describe();
      if (described.status.name === 'CONTINUED_AS_NEW') {
        if (++relisted > RELISTS) {
          throw new BackfillError('failed', `the server's list of the runs of backfill '${backfillId}' lags behind them (run ${from.runId} continued, its next is not listed yet): try again in a few seconds`);
        }
        await sleep(RELIST_WAIT_MS);
        runs = await listed();
      } else if (refusedAtAdmission(described)) runs = runs.filter((r) => r.runId !== from.runId);
      else return described;
    }
  }

  /** A new run of a closed backfill that skips what is published (the failures of `node`, or of every node, run again). */
  private async goOn(
    backfillId: string,
    latest: Awaited<ReturnType<BackfillClient['describe']>>,
    options: { spec?: ResolvedSpec; node?: string; retryFailed?: boolean } & GoOnOptions,
  ): Promise<{ started: Started; changed: string[]; plan: Plan; kept: KeptOldOutput | null }> {
    // A run the policy refused at admission ran nothing and holds what it was refused for: the new run goes on from the one before it.
    const description = await this.goOnBase(backfillId, latest);
    await this.notRolledBack(backfillId, description);
    const original = await this.firstInput(backfillWorkflowId(backfillId), description.runId);
    if (!original) throw new BackfillError('failed', `cannot read the input of backfill '${backfillId}'`);
    // Loaded here: the coordinator and the spec's schemas weigh on every other command's start.
    const [{ changedNodes }, { resumeCarry, resumedSpec }, { carrySpecProblem }] = await Promise.all([
      import('../core/spec-changes.ts'),
      import('../core/coordinator.ts'),
      import('../core/carry-shape.ts'),
    ]);
    const carry = await this.endState(backfillId, description.status.name, description.runId);
    // A fix sent while the last run ran (resume --spec) is in its end state, not in its input; one that cannot be read is refused, unless a new spec replaces it.
    const currentSpec = options.spec && carry.spec !== undefined && carrySpecProblem(carry.spec) !== null ? original.spec : resumedSpec(carry, original.spec);
    const changed = options.spec ? changedNodes(currentSpec, options.spec) : [];
    if (options.node !== undefined && !currentSpec.nodes.some((n) => n.id === options.node)) {
      throw new BackfillError('invalid_argument', `unknown node '${options.node}': this backfill's nodes are ${currentSpec.nodes.map((n) => n.id).join(', ')}`);
    }
    // Its staged versions are gone: a new run would count their partitions done and recompute nothing.
    if (carry.staged?.phase === 'discarded' || carry.canary?.phase === 'discarded' || ((carry.staged || carry.canary) && (await this.discardedAfterEnd(backfillId, carry.runKey)))) {
      throw new BackfillError(
        'not_running',
        `backfill '${backfillId}' was discarded: the versions it staged were dropped, so there is nothing to resume (start it again with backfill start <spec> --id ${shellWord(backfillId)} --rerun)`,
      );
    }
    await this.nodesClosed(backfillId, currentSpec.nodes.map((n) => n.id));
    // The new run's limits are its carry's (the coordinator takes no others): those asked for replace the ended run's, and its admission judges them.
    const asked = limitsGiven(options.limits) ? options.limits : undefined;
    const resumedCarry = resumeCarry(carry, options.node);
    const limits = asked || original.limits ? { ...original.limits, ...asked } : undefined;
    const started = await this.start(
      options.spec ?? currentSpec,
      {
        id: backfillId,
        range: original.range,
        taskQueue: description.taskQueue,
        ...(limits ? { limits } : {}),
        ...(original.tuning ? { tuning: original.tuning } : {}),
        ...(resumedBudgets(carry, original.governance?.budgets)),
        ...(description.priority?.priorityKey ? { priority: description.priority.priorityKey } : {}),
        ...(description.priority?.fairnessWeight ? { fairnessWeight: description.priority.fairnessWeight } : {}),
        ...(options.reason !== undefined ? { reason: options.reason } : {}),
        ...(options.signKey !== undefined ? { signKey: options.signKey } : {}),
        action: 'resume',
        // For the new run's audit entry: a retry-failed (workers from before it record a resume), what a new spec changed, the limits asked for.
        ...(options.retryFailed || options.spec || asked
          ? {
              resumeRequest: {
                ...(options.retryFailed ? { retryFailed: options.node !== undefined ? { node: options.node } : {} } : {}),
                ...(options.spec ? { specChanged: changed } : {}),
                ...(asked ? { limits: asked } : {}),
              },
            }
          : {}),
      },
      // The run it goes on from: the one whose end is its carry (not the latest, when that was refused at admission).
      { carry: asked ? { ...resumedCarry, limits: { ...resumedCarry.limits, ...asked } } : resumedCarry, fromRunId: description.runId },
    );
    // What the published partitions were made with, which the new run skips: a new spec's SQL does not reach them.
    const { keptOldOutput } = await import('../core/kept-output.ts');
    const keptNodes = options.spec ? keptOldOutput(currentSpec, options.spec, carry.readiness) : [];
    const kept = keptNodes.length > 0 ? { nodes: keptNodes, range: original.range } : null;
    return { started, changed, plan: expandPlan(options.spec ?? currentSpec, original.range), kept };
  }

  setRate(backfillId: string, rate: number | null, node?: string, options: ControlOptions = {}): Promise<ControlState> {
    return this.update(backfillId, setRateUpdate, [rate, node ?? null, this.meta(options)]);
  }

  setConcurrency(backfillId: string, concurrency: number | null, node?: string, options: ControlOptions = {}): Promise<ControlState> {
    return this.update(backfillId, setConcurrencyUpdate, [concurrency, node ?? null, this.meta(options)]);
  }

  /** `set-budget`: a new cap for the retry or the cost budget; a paused backfill goes on from where it is. */
  setBudget(backfillId: string, budget: 'retries' | 'cost', limit: number, options: ControlOptions = {}): Promise<ControlState> {
    return this.update(backfillId, setBudgetUpdate, [{ budget, limit }, this.meta(options)]);
  }

  /**
   * Asks a running backfill's policy how it judges each change, applying none (a query), and
   * throws the refusals together. A command that sends several updates (`set-budget --retries
   * --cost`, `retry-failed --spec`) judges them all first, so that one refused applies none. A
   * backfill whose code predates the query judges each change as it applies.
   */
  async judgeChanges(backfillId: string, changes: readonly JudgedChange[], options: ControlOptions = {}): Promise<void> {
    const description = await this.describe(backfillId);
    if (description.status.name !== 'RUNNING') return; // the update says it is not running
    const refusals: BackfillError[] = [];
    for (const change of changes) {
      let refused;
      try {
        ({ refused } = await this.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => this.handle(backfillId).query(judgeChangeQuery, change, this.meta(options))));
      } catch (error) {
        if (error instanceof QueryNotRegisteredError) return;
        if (noPollerSeen(error)) throw controlNoWorker(backfillId, description.taskQueue);
        throw error;
      }
      const label = change.action === 'set-budget' ? change.budget : change.action;
      if (refused) refusals.push(new BackfillError(refused.code, `${label}: ${refused.message}`, refused.path));
    }
    throwTogether(refusals, 'nothing was changed');
  }

  /**
   * Approves a backfill that waits for an approval: signs its id, the plan's hash (read from the
   * backfill) and `reason` with `signKey` (ssh-keygen -Y sign), and sends it. The workers verify
   * the signature against the policy's allowed signers; a refusal throws `approval_refused` with why.
   */
  async approve(backfillId: string, options: { reason: string; signKey: string }): Promise<{ approver: string; state: ControlState; planHash: string }> {
    const progress = await this.progress(backfillId);
    if (!isActive(progress.state)) throw notRunningError(backfillId, progress.state);
    const governance = progress.governance;
    if (!governance) throw new BackfillError('approval_refused', `backfill '${backfillId}' runs under no policy (it started before governance existed): there is nothing to approve`);
    if (!governance.approval.needed || governance.approval.approvedBy !== null) {
      throw new BackfillError(
        'approval_refused',
        governance.approval.approvedBy !== null ? `backfill '${backfillId}' was approved already, by ${governance.approval.approvedBy}` : `backfill '${backfillId}' does not wait for an approval: its policy asks for none`,
      );
    }
    const { signSubject } = await import('./sign.ts');
    const signed = await signSubject(
      { action: 'approve', backfillId, namespace: this.namespace, planHash: governance.planHash, reason: options.reason.trim(), signedAt: new Date().toISOString() },
      { keyFile: options.signKey },
    );
    const result = await this.update(backfillId, approveUpdate, [signed, this.meta()]);
    return { ...result, planHash: governance.planHash };
  }

  /** Every operator action on a backfill, from the histories of all its runs (the workflows keep only the newest). */
  audit(backfillId: string): Promise<AuditEntry[]> {
    return auditTrail(this, backfillId);
  }

  /**
   * Runs the failed partitions again (then the partitions they blocked). A running backfill
   * does it in place; a finished one is resumed in a new run that skips what is done.
   */
  async retryFailed(
    backfillId: string,
    node?: string,
    spec?: ResolvedSpec,
    options: GoOnOptions = {},
  ): Promise<{
    retried: number;
    /** In a new run for every node's failures: the partitions blocked behind them, which run too. */
    blocked?: number;
    changed: string[];
    /** In a new run with a new spec: partitions published before it whose transform, SQL or parameters the spec changed (they are skipped). */
    keptOldOutput?: KeptOldOutput;
    resumed: Started | null;
  }> {
    let description = await this.describe(backfillId);
    if (description.status.name === 'RUNNING') {
      if (options.signKey !== undefined) throw signedWhileRunning('retry-failed', backfillId);
      if (limitsGiven(options.limits)) throw limitsWhileRunning('retry-failed', backfillId, options.limits);
      const outcome = await this.changeRunning(
        backfillId,
        async () => {
          // With a new spec, two updates: the retry is judged first, so that a refused one leaves the spec as it was.
          if (spec) await this.judgeChanges(backfillId, [{ action: 'retry', ...(node !== undefined ? { node } : {}) }], options);
          const kept = spec ? await this.keptWhileRunning(backfillId, spec) : null;
          const changed = spec ? await this.replaceSpec(backfillId, spec, options) : [];
          const retried = await this.update(backfillId, retryFailedUpdate, [node ?? null, this.meta(options)]);
          return { retried, changed, ...(kept && changed.length > 0 ? { keptOldOutput: kept } : {}) };
        },
        (state) =>
          state === 'staged'
            ? `publish or discard first (backfill publish|discard ${shellWord(backfillId)}); after a publish, retry-failed stages the failed partitions again in a new run`
            : `its slice has no failures to retry (a failure stops a canary): approve or discard it first (backfill approve|discard ${shellWord(backfillId)})`,
      );
      if ('applied' in outcome) return { ...outcome.applied, resumed: null };
      // Caught in the moment it ended: it is resumed.
      description = await this.describe(backfillId);
    }
    // A retry-failed the policy refused ran nothing: the failures to retry are those of the run before it.
    description = await this.goOnBase(backfillId, description);
    const status = description.status.name;
    if (status === 'COMPLETED' && (await this.runResult(backfillId, description.runId)).state !== 'completed_with_failures') {
      throw new BackfillError('invalid_argument', `backfill '${backfillId}' completed with no failures: there is nothing to retry`);
    }
    const carry = await this.endState(backfillId, status, description.runId);
    const failed = Object.entries(carry.readiness)
      .filter(([id]) => node === undefined || id === node)
      .reduce((sum, [, state]) => sum + RangeSet.fromJSON(state.failed).size, 0);
    const { nothingFailed, nothingToRetryOn } = await import('../core/retry-failed.ts');
    // A cancelled run with no failure went on as resume does, saying it retried 0.
    const nothing = node !== undefined ? nothingToRetryOn(backfillId, node, carry.readiness) : nothingFailed(backfillId, carry.readiness, status !== 'COMPLETED');
    if (nothing !== null) throw new BackfillError('invalid_argument', nothing);
    const { started, changed, plan, kept } = await this.goOn(backfillId, description, {
      retryFailed: true,
      ...(spec ? { spec } : {}),
      ...(node !== undefined ? { node } : {}),
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
      ...(options.signKey !== undefined ? { signKey: options.signKey } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
    });
    // Of every node's failures, what they blocked is known; of one node's, what else blocked the same partitions is not.
    const { retryCounts } = await import('../core/readiness.ts');
    return { retried: failed, ...(node === undefined ? { blocked: retryCounts(plan, carry.readiness).blocked } : {}), changed, ...(kept ? { keptOldOutput: kept } : {}), resumed: started };
  }

  /**
   * The input of the backfill's latest run. Its spec is the one the run started with (after a
   * continue-as-new, the current one); a spec a `resume --spec` sent to it since is in its carry.
   */
  async inputOf(backfillId: string): Promise<BackfillInput | undefined> {
    const description = await this.describe(backfillId);
    return this.firstInput(backfillWorkflowId(backfillId), description.runId);
  }

  /**
   * Starts rolling a finished backfill back: every partition it published returns to the
   * version before it (downstream nodes first), or, when it created the partition, is no
   * longer published. Partitions a later backfill changed are left alone unless `force`.
   */
  async startRollback(backfillId: string, options: RollbackOptions = {}): Promise<RollbackStarted> {
    const description = await this.describeKept(backfillId);
    if (description?.status.name === 'RUNNING') throw await this.rollbackWhileRunning(backfillId, false);
    const batchSize = options.tuning?.batchSize;
    if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000)) {
      throw new BackfillError('invalid_argument', `rollback batch size must be a whole number from 1 to 10000 (got ${batchSize})`);
    }
    const workflowId = rollbackWorkflowId(backfillId);
    const running = await this.runningRollback(backfillId);
    if (running) return { backfillId, workflowId, runId: running.runId, uiUrl: this.uiUrl(workflowId, running.runId), attached: true, historyGone: !description };

    // History gone (the namespace's retention): the workflow finds the nodes in the ledger, and a worker with a policy judges it.
    const { order, taskQueues } = description ? await this.rollbackOrder(backfillId, description.runId) : { order: [], taskQueues: {} };
    if (description) await this.nodesClosed(backfillId, order);
    const admittedUnder = description ? pinnedPolicy(description.memo?.governance as { policy?: { hash?: unknown } } | undefined) : UNKNOWN_PIN;
    const taskQueue = description?.taskQueue ?? (options.taskQueue !== undefined ? checkTaskQueue(options.taskQueue, 'the rollback\'s taskQueue', 'taskQueue') : (this.defaults.taskQueue ?? DEFAULT_TASK_QUEUE));
    const input: RollbackInput = {
      backfillId,
      rollbackId: rollbackId(backfillId),
      order,
      force: options.force === true,
      taskQueues,
      ...(options.tuning ? { tuning: options.tuning } : {}),
      audit: this.meta(options),
      // The policy its last run was admitted under (the memo its workers wrote): only a worker with it judges the rollback.
      ...(admittedUnder !== null ? { admittedUnder } : {}),
    };
    // A rollback may run again after one finished (it then finds everything restored); one running already is joined.
    const handle = await this.taggedStart(() =>
      this.client.workflow.start<typeof rollbackWorkflow>('rollbackWorkflow', { workflowId, taskQueue, args: [input], ...this.afterEnd(backfillId) }),
    );
    return { backfillId, workflowId, runId: handle.firstExecutionRunId, uiUrl: this.uiUrl(workflowId, handle.firstExecutionRunId), attached: false, historyGone: !description };
  }

  /**
   * The nodes a rollback of the backfill walks, downstream first, as the histories the server
   * still keeps say: those of every run of its id (the ledger keeps what each published), not
   * only the latest run's (`start --rerun` may name fewer). A run whose history is gone is
   * skipped: the rollback workflow adds every node the ledger holds versions of (withLedger).
   */
  async rollbackOrder(backfillId: string, latestRunId: string): Promise<RollbackNodes> {
    const workflowId = backfillWorkflowId(backfillId);
    const runs: Array<{ runId: string; startMs: number }> = [];
    for await (const execution of this.client.workflow.list({ query: `WorkflowId = ${visibilityLiteral(workflowId)}` })) {
      runs.push({ runId: execution.runId, startMs: execution.startTime.getTime() });
    }
    // Visibility lags a little behind a run that just started: the latest run is always there.
    if (!runs.some((r) => r.runId === latestRunId)) runs.push({ runId: latestRunId, startMs: Infinity });
    runs.sort((a, b) => a.startMs - b.startMs);
    const specs: RunNode[][] = [];
    for (const run of runs) {
      const input = await this.firstInput(workflowId, run.runId).catch((error: unknown) => (grpcCode(error) === GRPC.NOT_FOUND ? undefined : Promise.reject(error)));
      if (input) specs.push(input.spec.nodes);
    }
    return rollbackNodes(specs);
  }

  /** How a workflow that acts on an ended backfill (a rollback, a discard of what it staged) starts: again after one finished, joining one that runs, tagged with the backfill's id. */
  private afterEnd(backfillId: string) {
    return {
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      workflowIdConflictPolicy: 'USE_EXISTING' as const,
      typedSearchAttributes: [{ key: BACKFILL_ID, value: backfillId }],
    };
  }

  /** A start whose search attribute the namespace may lack: refused, it names the attribute and how to register it. */
  private async taggedStart<T>(start: () => Promise<T>): Promise<T> {
    this.searchAttributes ??= { listed: await requireSearchAttributes(this.connection, this.namespace) };
    try {
      return await start();
    } catch (error) {
      const unregistered = unregisteredAttribute(error);
      if (unregistered !== undefined) throw rejectedAttribute(this.namespace, unregistered, this.searchAttributes.listed);
      throw error;
    }
  }

  /**
   * Waits for a rollback to end; its summary, or an error saying why it failed and what to do.
   * Without a worker it waits on (the rollback is durable: it runs once one polls its queue);
   * `onNoWorker` is told once, where it waits, when none takes it (`rollbackWorkerGone`).
   */
  async rollbackResult(backfillId: string, options: { onNoWorker?: (waiting: RollbackWaiting) => void; lookEveryMs?: number } = {}): Promise<RollbackSummary> {
    const workflowId = rollbackWorkflowId(backfillId);
    const handle = this.client.workflow.getHandle<typeof rollbackWorkflow>(workflowId);
    const looking = new AbortController();
    const { onNoWorker } = options;
    if (onNoWorker) {
      // Only a hint: a look that fails says nothing, and never fails the wait.
      void this.rollbackWorkerGone(workflowId, looking.signal, options.lookEveryMs ?? WORKER_LOOK_MS)
        .catch(() => undefined)
        .then((waiting) => {
          if (waiting && !looking.signal.aborted) onNoWorker(waiting);
        });
    }
    try {
      const summary = await handle.result();
      if (summary.notFound) throw this.unknownToLedger(backfillId);
      return summary;
    } catch (error) {
      if (!(error instanceof WorkflowFailedError)) throw error;
      const cause = rootCause(error);
      if ((cause as { type?: string }).type === 'policy_violation') throw new BackfillError('policy_violation', cause.message);
      if ((cause as { type?: string }).type === 'not_found') throw this.unknownToLedger(backfillId);
      throw new BackfillError(
        'failed',
        `the rollback of backfill '${backfillId}' failed: ${rootCause(error).message} — the partitions it restored before stay restored; ` +
          `fix the cause and run 'backfill rollback ${shellWord(backfillId)}' again (what is restored already is skipped)`,
      );
    } finally {
      looking.abort();
    }
  }

  /** A rollback's backfill that neither the server nor the workers' ledger knows: a mistyped id, as every other command says it. */
  private unknownToLedger(backfillId: string): BackfillError {
    return this.noBackfill(backfillId, "the server keeps no history of it, and the workers' ledger has no version of it: ", ', and that the workers write the warehouse it ran on');
  }

  /** `no backfill with id …`, as every command says it: `where` it was looked for, and what to `alsoCheck` beside the id. */
  private noBackfill(backfillId: string, where = '', alsoCheck = ''): BackfillError {
    // The Web UI shows the workflow's id, backfill/<id>: the prefix is not the backfill's.
    const check = prefixedIdHint(backfillId) ?? `check the id ('backfill start' printed it)${alsoCheck}`;
    return new BackfillError('not_found', `no backfill with id '${backfillId}' in namespace ${this.namespace}: ${where}${check}`);
  }

  /**
   * Resolves, where the rollback waits, once no worker takes it: at once when nobody polls its
   * workflow task queue (`unpolled`), else when the same workflow task stayed untaken for
   * UNTAKEN_MS (a stopped worker stays listed as a poller for minutes), looking every `everyMs`;
   * or, once a worker took it, when its judgement waits for a worker with the policy
   * (`judgement`). Undefined once it ended, or `signal` aborted.
   */
  private async rollbackWorkerGone(workflowId: string, signal: AbortSignal, everyMs: number): Promise<RollbackWaiting | undefined> {
    const handle = this.client.workflow.getHandle(workflowId);
    const { PENDING_WORKFLOW_TASK_STATE_STARTED } = proto.temporal.api.enums.v1.PendingWorkflowTaskState;
    /** The pending task first seen untaken, and when (this client's clock). */
    let untaken: { task: PendingTask; at: number } | null = null;
    /** A worker took one of its tasks: it has a worker (the no-worker hint is for one that never gets one). */
    let taken = false;
    while (!signal.aborted) {
      const description = await handle.describe().catch(() => undefined);
      if (description && description.status.name !== 'RUNNING') return undefined;
      const judgement = description ? judgementWait(description.raw.pendingActivities) : undefined;
      if (description && judgement !== undefined) return { taskQueue: description.taskQueue, activityQueues: [], judgement };
      if (description && !taken) {
        const task = description.raw.pendingWorkflowTask;
        const now: PendingTask = task ? { scheduledMs: optionalTsToMs(task.scheduledTime) ?? 0, attempt: task.attempt ?? 0, started: task.state === PENDING_WORKFLOW_TASK_STATE_STARTED } : null;
        taken = now?.started === true;
        if (!taken) {
          if (untaken === null || !taskUntaken(untaken.task, now)) untaken = now === null ? null : { task: now, at: Date.now() };
          // Untaken past a sticky queue's wait (a worker that died holding the run: another takes it then).
          const longUntaken = untaken !== null && Date.now() - untaken.at >= UNTAKEN_MS;
          if (longUntaken || (await this.unpolled(description.taskQueue))) {
            const input = await this.firstInput<RollbackInput>(workflowId, description.runId).catch(() => undefined);
            const queues = [...new Set(Object.values(input?.taskQueues ?? {}))];
            // No node's queue known: its batches run on the rollback's own queue (workflows/rollback.ts).
            return { taskQueue: description.taskQueue, activityQueues: queues.length > 0 ? queues : [description.taskQueue] };
          }
        }
      }
      await sleep(everyMs, undefined, { signal }).catch(() => undefined);
    }
    return undefined;
  }

  /**
   * What `rollback` would do, read from `warehouse`'s ledger (the workers' warehouse): per node,
   * what it would restore, remove and leave alone, and who changed what it leaves alone. It
   * starts nothing and writes nothing (orphaned node workflows, which a rollback ends, are left).
   */
  async previewRollback(backfillId: string, warehouse: LineageReader & Pick<Warehouse, 'location' | 'ledger'>, options: Pick<RollbackOptions, 'force'> = {}): Promise<RollbackPreview> {
    const description = await this.describeKept(backfillId);
    if (description?.status.name === 'RUNNING') throw await this.rollbackWhileRunning(backfillId, true);
    const { order } = description ? await this.rollbackOrder(backfillId, description.runId) : { order: [] };
    const { previewRollback } = await import('./rollback-preview.ts');
    const preview = await previewRollback(warehouse, backfillId, { order, historyGone: !description }, options.force === true);
    // Nothing to do, by this ledger: is it the workers' ledger? The workflow knows what it published.
    if (description && (await warehouse.changesBy(backfillId, { limit: 1 })).changes.length === 0 && (await warehouse.ledger({ backfillId })).length === 0) {
      const input = await this.firstInput(backfillWorkflowId(backfillId), description.runId);
      const progress = await this.progress(backfillId).catch(() => null);
      if (input && progress) {
        const { keptPartitions, otherWarehouse } = await import('./other-warehouse.ts');
        const published = progress.done - keptPartitions(expandPlan(input.spec, input.range), input.skip);
        if (published > 0) throw otherWarehouse(backfillId, published, warehouse.location);
      }
    }
    return preview;
  }

  /**
   * Why a running backfill cannot be rolled back, and what to do: one that waits for its decision
   * (staged, a canary's slice) published nothing, so it is discarded, not rolled back ("wait for
   * it to end" would wait for ever, and a cancel leaves its staged versions behind).
   */
  private async rollbackWhileRunning(backfillId: string, preview: boolean): Promise<BackfillError> {
    const id = shellWord(backfillId);
    const state = await this.progress(backfillId).then((p) => p.state, () => null);
    if (state === 'staged') {
      return new BackfillError('still_running', `backfill '${backfillId}' is staged and waits for its decision: nothing of it is published, so there is nothing to roll back. Drop what it staged with 'backfill discard ${id}' (or publish it with 'backfill publish ${id}')`);
    }
    if (state === 'awaiting_canary') {
      return new BackfillError('still_running', `backfill '${backfillId}' waits for its canary's decision: nothing of it is published. Drop the slice with 'backfill discard ${id}' (the backfill ends), or approve it ('backfill approve ${id} --reason ...') and roll back once it has ended`);
    }
    const [running, then] = preview ? ['is still running, so it cannot be rolled back yet', 'preview its rollback'] : ['is still running', 'roll it back'];
    return new BackfillError('still_running', `backfill '${backfillId}' ${running}: cancel it first ('backfill cancel ${id}') or wait for it to end ('backfill wait ${id}'), then ${then}`);
  }

  /** `startRollback`, then its summary once it ends. */
  async rollback(backfillId: string, options: RollbackOptions = {}): Promise<RollbackSummary> {
    await this.startRollback(backfillId, options);
    return this.rollbackResult(backfillId);
  }

  /**
   * Sets the server-enforced cap on activities started per second on a task queue, across
   * all its workers (UpdateTaskQueueConfig, server 1.29+); null removes it, which restores
   * the cap the workers set (maxTaskQueueActivitiesPerSecond).
   *
   * A task-queue RPC, not a workflow message, so every running backfill with nodes on the queue
   * judges it by its policy first, and records it only once all agreed and the cap changed:
   * one refusal leaves the cap and every trail as they were. A backfill with nodes on the queue
   * that does not answer (no worker) stops the change too, unless `force`: then the cap changes
   * without its judgement, and `unreachable` names it. Only those are waited on: a backfill whose
   * nodes are known to run elsewhere is not asked (`judgeQueueRate`). A rate that is the cap in
   * force (read after the judgement) changes nothing: no cap is sent, no backfill that judged it
   * records it, and `unchanged` says since when, by whom and why the cap is so.
   */
  async setQueueRate(taskQueue: string, rate: number | null, options: ControlOptions & { force?: boolean } = {}): Promise<QueueRateResult> {
    checkTaskQueue(taskQueue, 'task queue', 'task-queue');
    // What every backfill would refuse, whatever its policy, is refused here, whether any is asked or not.
    (await import('../core/limits.ts')).parseQueueRate(rate);
    parseMeta(this.meta(options));
    const judged = await this.judgeQueueRate(taskQueue, rate, options);
    if (judged.unreachable.length > 0 && !options.force) {
      throw new BackfillError(
        'no_worker',
        `${judged.unreachable.map((id) => `'${id}'`).join(', ')} (nodes on task queue ${taskQueue}) did not answer (no worker, or none in time), so ${judged.unreachable.length === 1 ? 'its policy' : 'their policies'} could not judge the rate: ` +
          `the cap is unchanged and nothing was recorded. Start ${judged.unreachable.length === 1 ? 'its' : 'their'} workers ('backfill status <id>' says why) and run set-queue-rate again, ` +
          `or pass --force to change the cap without ${judged.unreachable.length === 1 ? 'its' : 'their'} judgement (it is not recorded in ${judged.unreachable.length === 1 ? 'its' : 'their'} audit trail)`,
        'force',
      );
    }
    // Backfills whose code predates the judging query judge and record in one step, before the cap changes (as before, even when it does not).
    const recordedBy: string[] = [];
    for (const backfillId of judged.unjudged) if (await this.recordQueueRate(backfillId, taskQueue, rate, options, true)) recordedBy.push(backfillId);
    // Read last, just before it would be sent; a server that cannot tell its cap is sent the rate, as before.
    const cap = await currentQueueCap(this.connection, this.namespace, taskQueue).catch(() => null);
    if (cap !== null && sameQueueRate(rate, cap.rate)) {
      const unused = recordedBy.length + judged.agreed.length + judged.unreachable.length === 0 && (await this.queueUnpolled(taskQueue));
      // The rate as asked: the server keeps a 32-bit float (0.1 comes back 0.10000000149011612).
      return { taskQueue, rate, recordedBy, unreachable: judged.unreachable, notRecorded: [], unused, unchanged: cap.setBy };
    }
    const reason = options.reason?.trim() || (rate === null ? 'backfill set-queue-rate unlimited' : `backfill set-queue-rate ${rate}`);
    const response = await this.connection.workflowService.updateTaskQueueConfig({
      namespace: this.namespace,
      identity: this.identity,
      taskQueue,
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      updateQueueRateLimit: {
        ...(rate === null ? {} : { rateLimit: { requestsPerSecond: rate } }),
        reason,
      },
    });
    const notRecorded: string[] = [];
    for (const backfillId of judged.agreed) {
      if (await this.recordQueueRate(backfillId, taskQueue, rate, options, false).catch(() => false)) recordedBy.push(backfillId);
      else notRecorded.push(backfillId);
    }
    const unused = recordedBy.length + judged.unreachable.length + notRecorded.length === 0 && (await this.queueUnpolled(taskQueue));
    return { taskQueue, rate: queueCap(response.config?.queueRateLimit).rate, recordedBy, unreachable: judged.unreachable, notRecorded, unused };
  }

  /** Those of these activity task queues that no worker polls (a queue the server cannot describe is left out). */
  async unpolledQueues(taskQueues: Iterable<string>): Promise<string[]> {
    const queues = [...new Set(taskQueues)];
    const unpolled = await Promise.all(queues.map((queue) => this.queueUnpolled(queue)));
    return queues.filter((_, i) => unpolled[i]);
  }

  /** No worker polls the activity task queue (false when the server cannot say). */
  private queueUnpolled(taskQueue: string): Promise<boolean> {
    return pollersOf(this.connection, this.namespace, taskQueue, 'activity').then((p) => p.length === 0, () => false);
  }

  /**
   * Asks the running backfills with nodes on the queue how their policies judge the rate (a query:
   * nothing is recorded). A backfill's policy judges only a queue of its own (a request it would
   * refuse whatever the queue, `setQueueRate` refuses first), so one whose nodes are known to run
   * elsewhere (`hasNodesOn`) is not asked: with its worker gone, it held every call to the
   * query's deadline. One whose nodes cannot be known is asked. `agreed`: the queue is theirs and
   * the rate allowed; `unjudged`: code from before the query; `unreachable`: no answer (at once
   * when no worker polls its workflow task queue). Throws the refusals, naming every backfill
   * that refused.
   */
  private async judgeQueueRate(taskQueue: string, rate: number | null, options: ControlOptions): Promise<{ agreed: string[]; unjudged: string[]; unreachable: string[] }> {
    const agreed: string[] = [];
    const unjudged: string[] = [];
    const unreachable: string[] = [];
    const refusals: BackfillError[] = [];
    const running: Array<{ workflowId: string; runId: string; workflowQueue: string; memo: Record<string, unknown> | undefined }> = [];
    for await (const execution of this.client.workflow.list({ query: `WorkflowType = 'backfillWorkflow' AND ExecutionStatus = 'Running'` })) {
      running.push({ workflowId: execution.workflowId, runId: execution.runId, workflowQueue: execution.taskQueue, memo: execution.memo });
    }
    // Backfills share their workflow task queues: each is described once.
    const unpolled = new Map<string, Promise<boolean>>();
    const unpolledOnce = (queue: string) => unpolled.get(queue) ?? unpolled.set(queue, this.unpolled(queue)).get(queue)!;
    // At once, not one by one: a backfill whose worker is gone holds its query up to the deadline,
    // and a namespace may have many such backfills.
    const answers = await mapLimit(running, QUEUE_RATE_JUDGES, async ({ workflowId, runId, workflowQueue, memo }) => {
      const backfillId = workflowId.replace(/^backfill\//, '');
      if ((await this.hasNodesOn(backfillId, runId, taskQueue, memo)) === false) return { kind: 'elsewhere', backfillId } as const;
      if (await unpolledOnce(workflowQueue)) return { kind: 'unanswered', backfillId } as const;
      try {
        const judgement = await this.client.withDeadline(Date.now() + 10_000, () =>
          this.client.workflow.getHandle<typeof backfillWorkflow>(workflowId).query(judgeQueueRateQuery, { queue: taskQueue, rate }, this.meta(options)),
        );
        return { kind: 'judged', backfillId, judgement } as const;
      } catch (error) {
        if (error instanceof QueryNotRegisteredError) return { kind: 'unjudged', backfillId } as const;
        return { kind: 'unanswered', backfillId } as const;
      }
    });
    for (const answer of answers) {
      const { backfillId } = answer;
      if (answer.kind === 'judged') {
        const { judgement } = answer;
        if (judgement.refused) refusals.push(new BackfillError(judgement.refused.code, `backfill '${backfillId}' (on task queue ${taskQueue}) ${judgement.refused.message}`, judgement.refused.path));
        else if (judgement.mine) agreed.push(backfillId);
      } else if (answer.kind === 'unjudged') unjudged.push(backfillId);
      else if (answer.kind === 'unanswered') unreachable.push(backfillId);
    }
    throwTogether(refusals, 'the cap is unchanged and nothing was recorded');
    return { agreed, unjudged, unreachable };
  }

  /**
   * Whether a running backfill has nodes on `taskQueue`, without asking it: its memo, as the list
   * of running backfills shows it (core/node-queues.ts). A run started before the workflow kept
   * them there: its input says, and the specs that replaced it since (its history, read only
   * when the input says no). Undefined when they cannot be read, or are too many to list.
   *
   * A memo that names another run (the start's caller's: Temporal's CLI can give any) is not
   * trusted (docs/governance.md). The list may lag a spec accepted a moment ago, as it lags a start.
   */
  private async hasNodesOn(backfillId: string, runId: string, taskQueue: string, memo: Readonly<Record<string, unknown>> | undefined): Promise<boolean | undefined> {
    const listed = readNodeQueuesMemo(memo, runId);
    if (listed === 'unlisted') return undefined;
    if (listed !== null) return listed.includes(taskQueue);
    const started = await this.queuesOf(backfillId, runId);
    if (started.size === 0) return undefined;
    if ([...started.values()].includes(taskQueue)) return true;
    const history = await this.client.workflow.getHandle(backfillWorkflowId(backfillId), runId).fetchHistory().catch(() => undefined);
    const replaced = history ? replacedSpecQueues(history.events ?? [], (payload) => this.client.options.loadedDataConverter.payloadConverter.fromPayload(payload)) : null;
    return replaced === null ? undefined : replaced.includes(taskQueue);
  }

  /**
   * Sends `queueRate` to one backfill, which records it when the queue is its own (true). With
   * `refuse` a refusal stops the change (a backfill that could not be asked first); a backfill
   * from before governance has no such update and records nothing (false).
   */
  private async recordQueueRate(backfillId: string, taskQueue: string, rate: number | null, options: ControlOptions, refuse: boolean): Promise<boolean> {
    try {
      return await this.client.withDeadline(Date.now() + 10_000, () =>
        this.handle(backfillId).executeUpdate(queueRateUpdate, { args: [{ queue: taskQueue, rate }, this.meta(options)] }),
      );
    } catch (error) {
      if (!(error instanceof WorkflowUpdateFailedError)) throw error;
      const refused = refusedError(error.cause);
      if (!refused && /handler|not found|unknown update/i.test(String(error.cause?.message))) return false;
      if (refused && refuse) throw new BackfillError(refused.code, `backfill '${backfillId}' (on task queue ${taskQueue}) ${refused.message}`, refused.path);
      throw error;
    }
  }

  /**
   * Cancels a running backfill. It says who and why first (an update the policy may refuse when
   * it requires a reason), then asks the server to cancel with the same identity and reason,
   * which the history's WorkflowExecutionCancelRequested event keeps. When the announcement
   * cannot be delivered (no worker polls the workflow task queue, or none took it in time) the
   * server's cancellation is sent all the same, as Temporal cancels without workers:
   * `announcement` then says why it was skipped (the audit trail takes who and why from the
   * request).
   */
  async cancel(backfillId: string, options: ControlOptions = {}): Promise<Cancelled> {
    const description = await this.describe(backfillId);
    if (description.status.name !== 'RUNNING') {
      // A termination leaves the datasets' leases (and the node workflows for a while), which a cancel cannot end.
      throw notRunningError(backfillId, await this.endedState(backfillId, description), endedWithoutCleanup(description.status.name) ? leftRunning(backfillId) : undefined);
    }
    let skipped: string | null = null;
    try {
      await this.update(backfillId, announceCancelUpdate, [this.meta(options)]);
    } catch (error) {
      if (error instanceof BackfillError && (error.code === 'no_worker' || error.code === 'timeout')) {
        skipped =
          error.code === 'no_worker'
            ? `no worker polls its workflow task queue '${description.taskQueue}'`
            : `no worker took it within ${UPDATE_TIMEOUT_MS / 1000}s (it may still be recorded when one does)`;
      } else {
        if (error instanceof BackfillError) throw error;
        // A backfill from before governance has no such update: it is cancelled all the same.
        if (!(error instanceof WorkflowUpdateFailedError) || !/handler|not found|unknown update/i.test(String(error.cause?.message))) throw error;
      }
    }
    await this.connection.workflowService.requestCancelWorkflowExecution({
      namespace: this.namespace,
      workflowExecution: { workflowId: backfillWorkflowId(backfillId) },
      identity: this.identity,
      requestId: randomUUID(),
      reason: options.reason?.trim() || 'backfill cancel',
    });
    return { announced: skipped === null, ...(skipped !== null ? { skipped } : {}) };
  }
}

/** The task-queue priority of a start: its priority key, and its fairness key (its id) and weight. */
export function startPriority(backfillId: string, options: Pick<StartOptions, 'priority' | 'fairnessWeight'>): Priority | undefined {
  if (options.priority !== undefined && (!Number.isInteger(options.priority) || options.priority < 1 || options.priority > 5)) {
    throw new BackfillError('invalid_argument', `--priority must be a whole number from 1 (most urgent) to 5 (got ${options.priority})`, 'priority');
  }
  if (options.fairnessWeight !== undefined && !(options.fairnessWeight > 0 && Number.isFinite(options.fairnessWeight))) {
    throw new BackfillError('invalid_argument', `--fairness-weight must be a number above 0 (got ${options.fairnessWeight})`, 'fairness-weight');
  }
  if (options.priority === undefined && options.fairnessWeight === undefined) return undefined;
  return {
    ...(options.priority !== undefined ? { priorityKey: options.priority } : {}),
    fairnessKey: backfillId,
    ...(options.fairnessWeight !== undefined ? { fairnessWeight: options.fairnessWeight } : {}),
  };
}

/** A new rollback's id, recorded with each of its restores: the backfill, the UTC time and a random suffix. */
export function rollbackId(backfillId: string, now = new Date()): string {
  return `${backfillId}/rollback-${compactUtc(now)}-${randomBytes(3).toString('hex')}`;
}

/** The innermost cause of a failure (an activity's own message, under the workflow's and the activity's wrappers). */
function rootCause(error: Error): Error {
  let cause = error;
  while (cause.cause instanceof Error) cause = cause.cause;
  return cause;
}

/** An error's message and those of its causes, outermost first (`Activity task failed: dataset orders is leased ...`); null without one. */
function causeChain(error: Error | undefined): string | null {
  const messages: string[] = [];
  for (let e: unknown = error; e instanceof Error && messages.length < 5; e = e.cause) if (e.message !== '') messages.push(e.message);
  return messages.length > 0 ? messages.join(': ') : null;
}
