/**
 * `backfill status <id>` of a running backfill without the Temporal SDK's client: the same reads
 * as `BackfillClient.status` (progress, the live ETA, the nodes waiting for a worker), made
 * through client/status-rpc.ts, so that the command answers in a fraction of the time the SDK
 * takes to load.
 *
 * It answers only what it can answer exactly as the SDK's client would: a running backfill, on
 * plain gRPC, with JSON payloads. For anything else (a backfill that ended, TLS or an API key, a
 * call that failed, a payload it cannot decode) it returns null, and the caller asks the SDK's
 * client, which also words every error. The errors it throws itself are the SDK path's own
 * verdicts: no worker polls the workflows' queue, none answered in time, or the workers poll
 * but the workflow's task keeps failing.
 */
import { BackfillError } from '../core/errors.ts';
import { expandPlan } from '../core/plan.ts';
import { withoutLiveHolds } from '../core/ended-status.ts';
import type { BackfillCarry, BackfillInput, Progress } from '../core/protocol.ts';
import { BACKFILL_WORKFLOW_TYPE, QUERY_NAMES, backfillWorkflowId } from '../core/workflow-ids.ts';
import type { Status } from './backfill-client.ts';
import { pendingNotes } from './activity-failing.ts';
import type { ConnectionSettings } from './connection.ts';
import { NO_LIVE_ETA, anyMeasured, liveEta, liveWindows, withLiveEta, withStall, withoutEtaWithoutWorker, type LiveEta } from './eta.ts';
import { QUERY_TIMEOUT_MS, UNPOLLED_QUERY_TIMEOUT_MS, noPollerSeen, noWorkerError, polledLately, unansweredError } from './status-errors.ts';
import { StatusRpc, StatusRpcError, speaksPlainGrpc } from './status-rpc.ts';
import { WORKFLOW_EXECUTION_STATUS_RUNNING } from './status-wire.ts';
import { answeredWhileFailing, failingStreakOf, taskFailingError } from './task-failing.ts';
import { queueStates, waitingNodes, withTransforms, type Poller, type Waiting } from './waiting.ts';
import { inputNodes } from './input-nodes.ts';
import { queuedOf, withQueued } from './queued.ts';

/** How long describing the workflow may take before the SDK's client is asked instead. */
const DESCRIBE_TIMEOUT_MS = 5000;
/** gRPC's DEADLINE_EXCEEDED. */
const GRPC_DEADLINE_EXCEEDED = 4;
/** Nothing here cancels its own calls: one that ends CANCELLED (seen for a query no worker takes, at its deadline) timed out. */
const GRPC_CANCELLED = 1;

function timedOut(error: unknown): boolean {
  return error instanceof StatusRpcError && (error.code === GRPC_DEADLINE_EXCEEDED || error.code === GRPC_CANCELLED || /deadline|timed? ?out/i.test(error.message));
}

/** Whether `lightStatus` may answer for these settings (else go straight to the SDK's client). */
export function lightStatusApplies(settings: ConnectionSettings): boolean {
  return speaksPlainGrpc(settings);
}

/**
 * The status of a running backfill, as `BackfillClient.status` gives it; null when this path
 * cannot tell it exactly (see the module's comment). Throws only `no_worker`, `timeout` and
 * `workflow_task_failing`.
 */
export async function lightStatus(settings: ConnectionSettings, backfillId: string): Promise<Status | null> {
  if (!lightStatusApplies(settings)) return null;
  let rpc: StatusRpc | undefined;
  try {
    // Inside the try: a header gRPC refuses (its error quotes the value) sends status to the SDK's client, which words it.
    rpc = new StatusRpc(settings);
    return await statusOf(rpc, backfillId);
  } catch (error) {
    if (error instanceof BackfillError) throw error;
    return null;
  } finally {
    rpc?.close();
  }
}

/** The reads `statusOf` makes (a StatusRpc; a fake in tests). */
export type StatusReads = Pick<StatusRpc, 'describe' | 'query' | 'firstInput' | 'pollers' | 'taskFailure'>;

/** `lightStatus` over `rpc`: exported for tests. */
export async function statusOf(rpc: StatusReads, backfillId: string): Promise<Status | null> {
  const workflowId = backfillWorkflowId(backfillId);
  const description = await rpc.describe(workflowId, Date.now() + DESCRIBE_TIMEOUT_MS);
  // Another of a backfill's workflows (`shop-2024/orders`): the SDK's client says what the id names.
  if (description.status !== WORKFLOW_EXECUTION_STATUS_RUNNING || description.type !== BACKFILL_WORKFLOW_TYPE) return null;
  const execution = { workflowId, runId: description.runId };
  // What the ETA and the waiting check read is asked for beside the progress, not after it.
  let input: Promise<BackfillInput | undefined> | undefined;
  const inputOnce = () => (input ??= rpc.firstInput(execution, Date.now() + QUERY_TIMEOUT_MS) as Promise<BackfillInput | undefined>);
  const eta = etaOf(rpc, workflowId, inputOnce).catch(() => null);

  const asked = Date.now();
  const [workflowPollers, first] = await Promise.all([
    rpc.pollers(description.taskQueue, 'workflow', asked + QUERY_TIMEOUT_MS).catch(() => undefined),
    rpc.query(workflowId, QUERY_NAMES.progress, asked + UNPOLLED_QUERY_TIMEOUT_MS).then(
      (progress) => ({ progress: progress as Progress }),
      (error: unknown) => ({ error }),
    ),
  ]);
  // None listed, or the listed ones silent for over a minute (killed: the server lists them for minutes).
  const unpolled = workflowPollers !== undefined && !polledLately(workflowPollers);
  const attempt = description.workflowTask?.attempt ?? 0;
  const failureOf = () => rpc.taskFailure(execution, Date.now() + DESCRIBE_TIMEOUT_MS);
  let progress: Progress;
  let failingAnswered: ReturnType<typeof answeredWhileFailing> = Promise.resolve(undefined);
  if ('progress' in first) {
    progress = first.progress;
    // A worker that still holds the run may answer although its workflow task keeps failing: that progress no longer moves.
    failingAnswered = answeredWhileFailing(backfillId, attempt, failureOf);
  } else {
    // Right after the last worker went away the server refuses the query at once (FAILED_PRECONDITION).
    if (noPollerSeen(first.error)) throw noWorkerError(backfillId, description.taskQueue);
    // Workers poll, but the run's workflow task keeps failing: none can answer (or answers only the failure).
    const streak = unpolled ? undefined : await failingStreakOf(attempt, failureOf);
    if (streak) throw taskFailingError(backfillId, attempt, streak.failure);
    if (!timedOut(first.error)) throw first.error;
    if (unpolled) throw noWorkerError(backfillId, description.taskQueue);
    try {
      progress = (await rpc.query(workflowId, QUERY_NAMES.progress, asked + QUERY_TIMEOUT_MS)) as Progress;
    } catch (error) {
      if (noPollerSeen(error)) throw noWorkerError(backfillId, description.taskQueue);
      // A refusal (RESOURCE_EXHAUSTED) goes to the SDK's client, which waits it out.
      if (!timedOut(error)) throw error;
      // Workers that poll its queue are there: it is busy, not without a worker.
      const after = await rpc.pollers(description.taskQueue, 'workflow', Date.now() + DESCRIBE_TIMEOUT_MS).catch(() => undefined);
      throw unansweredError(backfillId, description.taskQueue, error, workflowPollers, after);
    }
  }
  // As the SDK's path says them (it missed them: `status` from the command line said nothing of a failing step or a declined judgement).
  const notes = pendingNotes(description.pendingActivities);
  const declined = notes.judgement !== undefined ? { judgement: notes.judgement } : {};
  if (progress.state !== 'running') return { ...withoutLiveHolds(progress), waiting: [], ...declined, ...(await failingAnswered) };
  const queuedReads = {
    pendingActivities: async (id: string) => (await rpc.describe(id, Date.now() + DESCRIBE_TIMEOUT_MS)).pendingActivities,
    partitions: async (node: string) => {
      const input = await inputOnce();
      return input ? expandPlan(input.spec, input.range).byId.get(node)?.partitions : undefined;
    },
  };
  const [live, waiting, failing, queued] = await Promise.all([eta, waitingOf(rpc, progress, inputOnce, workflowPollers), failingAnswered, queuedOf(backfillId, progress, queuedReads)]);
  const spec = waiting.length > 0 ? (await inputOnce().catch(() => undefined))?.spec : undefined;
  return {
    ...withQueued(withStall(withoutEtaWithoutWorker(live ? withLiveEta(progress, live) : progress, waiting, spec), live), queued),
    waiting: withTransforms(waiting, spec),
    ...notes,
    ...failing,
  };
}

/** The live ETA (client/eta.ts) from the backfill's carried state and its plan. */
async function etaOf(rpc: StatusReads, workflowId: string, inputOf: () => Promise<BackfillInput | undefined>): Promise<LiveEta> {
  // The input is asked for beside the carried state: the waiting check reads it too.
  const asked = inputOf();
  asked.catch(() => undefined);
  const carry = (await rpc.query(workflowId, QUERY_NAMES.carry, Date.now() + QUERY_TIMEOUT_MS)) as BackfillCarry;
  if (!anyMeasured(carry.reports)) return NO_LIVE_ETA;
  const input = await asked;
  if (!input) throw new Error(`no input in the history of ${workflowId}`);
  return liveEta(expandPlan(input.spec, input.range), carry, await liveWindows(carry.governance));
}

/** The nodes whose work waits on an activity task queue no worker polls; `workflowPollers` tell the server's time too (`serverNow`). */
async function waitingOf(rpc: StatusReads, progress: Progress, inputOf: () => Promise<BackfillInput | undefined>, workflowPollers: readonly Poller[] = []): Promise<Waiting[]> {
  const busy = progress.nodes.filter((n) => (progress.paused ? n.running : n.running + n.pending) > 0);
  if (busy.length === 0) return [];
  // A history this reader may not see leaves the check out rather than failing `status`.
  const input = await inputOf().catch(() => undefined);
  const queueOf = new Map(inputNodes(input).map((n) => [n.id, n.taskQueue]));
  const queues = new Set(busy.map((n) => queueOf.get(n.id)).filter((q): q is string => q !== undefined));
  const pollersByQueue = new Map<string, Poller[]>();
  await Promise.all(
    [...queues].map(async (queue) => {
      const pollers = await rpc.pollers(queue, 'activity', Date.now() + QUERY_TIMEOUT_MS).catch(() => undefined);
      if (pollers) pollersByQueue.set(queue, pollers);
    }),
  );
  return waitingNodes(busy, progress.paused, queueOf, queueStates(pollersByQueue, Date.now(), workflowPollers));
}
