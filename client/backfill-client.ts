/** The typed client library behind the `backfill` command line. */
import {
  Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Connection,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import proto from '@temporalio/proto';
import { BackfillError } from '../core/errors.ts';
import { DEFAULT_TASK_QUEUE, type BackfillCarry, type BackfillInput, type BackfillResult, type Limits, type Progress, type Tuning } from '../core/protocol.ts';
import type { PartitionRange, ResolvedSpec } from '../core/spec.ts';
import {
  BACKFILL_ID,
  backfillWorkflowId,
  nodeWorkflowId,
  pauseUpdate,
  progressQuery,
  resumeUpdate,
  retryFailedUpdate,
  setConcurrencyUpdate,
  setRateUpdate,
  type ControlState,
} from '../workflows/definitions.ts';
import type { backfillWorkflow } from '../workflows/backfill.ts';
import { openConnection, resolveConnection, type ConnectionOverrides, type ConnectionSettings } from './connection.ts';
import { registerSearchAttributes, rejectedAttribute, requireSearchAttributes, unregisteredAttribute, type SetupResult } from './search-attributes.ts';
import { pollersOf, queueState, waitingNodes, type QueueState, type Waiting } from './waiting.ts';
import { startTracing, tracingRequested, type Tracing } from '../workers/tracing.ts';

/** Where to connect: overrides of Temporal's environment configuration, or settings resolved already. */
export type ConnectOptions = ConnectionOverrides & { settings?: ConnectionSettings; uiUrl?: string };

export type StartOptions = {
  id?: string;
  range?: PartitionRange;
  limits?: Partial<Limits>;
  tuning?: Partial<Tuning>;
  /** Run again an id whose earlier backfill has finished. */
  rerun?: boolean;
  taskQueue?: string;
};

export type Started = { backfillId: string; workflowId: string; runId: string; uiUrl: string };

export type Outcome = { backfillId: string; state: Progress['state']; progress: Progress | null };

/** What `status` shows: the progress, and the nodes whose work waits for a worker nobody runs. */
export type Status = Progress & { waiting: Waiting[] };

/** How long a progress query waits for a worker to answer. */
const QUERY_TIMEOUT_MS = 15_000;
/** The same when no worker polls the workflows' task queue: only a worker starting right now could answer. */
const UNPOLLED_QUERY_TIMEOUT_MS = 3000;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

/** A deadline or timeout, whether the client or the server ("query timed out", wrapped in a ServiceError) saw it. */
function timedOut(error: unknown): boolean {
  for (let e: unknown = error; e !== undefined; e = e instanceof Error ? e.cause : undefined) {
    if (/deadline|timed? ?out/i.test(String(e))) return true;
  }
  return false;
}

/** A readable default id: the spec's name and the UTC start time. */
export function defaultBackfillId(name: string, now = new Date()): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'backfill';
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
  return `${slug}-${stamp}`;
}

export class BackfillClient {
  /** Whether `start` has checked the search attributes, and whether it could list them. */
  private searchAttributes: { listed: boolean } | undefined;
  /** Each node's activity task queue, by the run whose input told it. */
  private readonly nodeQueues = new Map<string, ReadonlyMap<string, string>>();

  private constructor(
    readonly client: Client,
    readonly connection: Connection,
    readonly settings: ConnectionSettings,
    private readonly uiBase: string,
    private readonly tracing: Tracing | undefined,
  ) {}

  static async connect(options: ConnectOptions = {}): Promise<BackfillClient> {
    const { settings: given, uiUrl, ...overrides } = options;
    const settings = given ?? resolveConnection(overrides);
    const tracing = tracingRequested() ? await startTracing('backfill-client') : undefined;
    const connection = await openConnection(settings);
    const uiBase = uiUrl ?? process.env.BACKFILL_UI_URL ?? 'http://localhost:8233';
    const client = new Client({ connection, namespace: settings.namespace, ...(tracing ? { interceptors: tracing.client } : {}) });
    return new BackfillClient(client, connection, settings, uiBase.replace(/\/$/, ''), tracing);
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

  /** Describes the latest run of a backfill, or throws `not_found`. */
  async describe(backfillId: string) {
    try {
      return await this.handle(backfillId).describe();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) {
        throw new BackfillError('not_found', `no backfill with id '${backfillId}' in namespace ${this.namespace}: check the id ('backfill start' printed it)`);
      }
      throw error;
    }
  }

  async start(spec: ResolvedSpec, options: StartOptions = {}, carry?: BackfillCarry): Promise<Started> {
    const backfillId = options.id ?? defaultBackfillId(spec.name);
    if (!ID_PATTERN.test(backfillId)) {
      throw new BackfillError('invalid_argument', `--id '${backfillId}' must be letters, digits and . _ : - (at most 200)`, 'id');
    }
    const workflowId = backfillWorkflowId(backfillId);
    this.searchAttributes ??= { listed: await requireSearchAttributes(this.connection, this.namespace) };
    if (options.rerun || carry) await this.nodesClosed(backfillId, spec.nodes.map((n) => n.id));
    const input: BackfillInput = {
      backfillId,
      spec,
      range: options.range ?? {},
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.tuning ? { tuning: options.tuning } : {}),
      ...(carry ? { carry } : {}),
    };
    try {
      const handle = await this.client.workflow.start<typeof backfillWorkflow>('backfillWorkflow', {
        workflowId,
        taskQueue: options.taskQueue ?? process.env.BACKFILL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
        args: [input],
        workflowIdReusePolicy: options.rerun || carry ? WorkflowIdReusePolicy.ALLOW_DUPLICATE : WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [{ key: BACKFILL_ID, value: backfillId }],
      });
      return { backfillId, workflowId, runId: handle.firstExecutionRunId, uiUrl: this.uiUrl(workflowId, handle.firstExecutionRunId) };
    } catch (error) {
      // Credentials that may not list search attributes learn of missing ones here, before anything ran.
      const unregistered = unregisteredAttribute(error);
      if (unregistered !== undefined) throw rejectedAttribute(this.namespace, unregistered, this.searchAttributes.listed);
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        const running = await this.describe(backfillId).then((d) => d.status.name === 'RUNNING', () => false);
        throw new BackfillError(
          'already_exists',
          running
            ? `backfill '${backfillId}' is already running: watch it with 'backfill status ${backfillId} --watch', or choose another --id`
            : `backfill '${backfillId}' already ran: pass --rerun to run it again deliberately, or choose another --id`,
          'id',
        );
      }
      throw error;
    }
  }

  /** Current progress: queried from a running backfill, or the final result of a finished one. */
  async progress(backfillId: string): Promise<Progress> {
    return this.progressOf(backfillId, await this.describe(backfillId));
  }

  /**
   * Progress, plus the nodes whose partitions wait on a task queue that no worker polls
   * (`waiting`, empty once the backfill has ended).
   */
  async status(backfillId: string): Promise<Status> {
    const description = await this.describe(backfillId);
    const progress = await this.progressOf(backfillId, description);
    if (progress.state !== 'running') return { ...progress, waiting: [] };
    return { ...progress, waiting: await this.waiting(backfillId, description.runId, progress) };
  }

  private async progressOf(backfillId: string, description: WorkflowExecutionDescription): Promise<Progress> {
    const status = description.status.name;
    const handle = this.handle(backfillId);
    if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') {
      // Nobody polling the workflows' queue: a short wait covers a worker that is just starting.
      const unpolled = await this.unpolled(description.taskQueue);
      try {
        return await this.client.withDeadline(Date.now() + (unpolled ? UNPOLLED_QUERY_TIMEOUT_MS : QUERY_TIMEOUT_MS), () => handle.query(progressQuery));
      } catch (error) {
        if (!timedOut(error)) throw error;
        if (unpolled) {
          throw new BackfillError(
            'no_worker',
            `backfill '${backfillId}' is running but no worker polls its workflow task queue '${description.taskQueue}': start one with 'backfill worker --workflow-queue ${description.taskQueue}'`,
          );
        }
        throw new BackfillError(
          'timeout',
          `backfill '${backfillId}' is running but no worker answered within ${QUERY_TIMEOUT_MS / 1000}s: start one with 'backfill worker' (task queue ${description.taskQueue})`,
        );
      }
    }
    if (status === 'COMPLETED') return ((await handle.result()) as BackfillResult).progress;
    const state = status === 'CANCELLED' ? 'cancelled' : 'failed';
    // A closed run still answers queries when a worker can replay it.
    const last = await this.client
      .withDeadline(Date.now() + 5000, () => handle.query(progressQuery))
      .catch(() => null);
    if (last) return { ...last, state };
    throw new BackfillError('not_running', `backfill '${backfillId}' ended ${state}, and no worker is there to tell its final progress`);
  }

  /** Whether no worker has polled the workflow task queue for minutes (unknown, when describing it is not allowed: false). */
  private async unpolled(taskQueue: string): Promise<boolean> {
    const pollers = await pollersOf(this.connection, this.namespace, taskQueue, 'workflow').catch(() => undefined);
    return pollers !== undefined && queueState(pollers, Date.now())?.reason === 'no_worker';
  }

  private async waiting(backfillId: string, runId: string, progress: Progress): Promise<Waiting[]> {
    const busy = progress.nodes.filter((n) => (progress.paused ? n.running : n.running + n.pending) > 0);
    if (busy.length === 0) return [];
    const queueOf = await this.queuesOf(backfillId, runId);
    const now = Date.now();
    const states = new Map<string, QueueState>();
    const queues = new Set(busy.map((n) => queueOf.get(n.id)).filter((q): q is string => q !== undefined));
    await Promise.all(
      [...queues].map(async (queue) => {
        const pollers = await pollersOf(this.connection, this.namespace, queue, 'activity').catch(() => undefined);
        const state = pollers && queueState(pollers, now);
        if (state) states.set(queue, state);
      }),
    );
    return waitingNodes(busy, progress.paused, queueOf, states);
  }

  /** Each node's activity task queue, from the spec in the run's input (read once per run). */
  private async queuesOf(backfillId: string, runId: string): Promise<ReadonlyMap<string, string>> {
    const known = this.nodeQueues.get(runId);
    if (known) return known;
    // A history this reader may not see leaves the check out rather than failing `status`.
    const input = await this.startInput(backfillId, runId).catch(() => undefined);
    const queues = new Map((input?.spec.nodes ?? []).map((n) => [n.id, n.taskQueue]));
    if (input) this.nodeQueues.set(runId, queues);
    return queues;
  }

  /** Blocks until the backfill ends; `timeoutMs` bounds the wait. */
  async wait(backfillId: string, timeoutMs?: number): Promise<Outcome> {
    await this.describe(backfillId);
    const handle = this.handle(backfillId);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const outcome = async (): Promise<Outcome> => {
      for (;;) {
        try {
          const r = await handle.result();
          return { backfillId, state: r.state, progress: r.progress };
        } catch (error) {
          // A lost connection is not the end of the backfill: look again, and wait on if it runs.
          const status = await handle.describe().then((d) => d.status.name, () => 'UNKNOWN');
          if (status === 'RUNNING' || status === 'UNKNOWN') {
            if (status === 'UNKNOWN') await new Promise((r) => setTimeout(r, 1000));
            continue;
          }
          return { backfillId, state: status === 'CANCELLED' ? 'cancelled' : 'failed', progress: await this.progress(backfillId).catch(() => null) };
        }
      }
    };
    if (deadline === undefined) return outcome();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BackfillError('timeout', `backfill '${backfillId}' did not finish within ${timeoutMs! / 1000}s; it is still running`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([outcome(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Waits until the node workflows of a finished backfill have closed too (they end just
   * after their parent), so that a new run can start them again under the same ids.
   */
  private async nodesClosed(backfillId: string, nodes: readonly string[], timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const node of nodes) {
      const workflowId = nodeWorkflowId(backfillId, node);
      for (;;) {
        const status = await this.client.workflow
          .getHandle(workflowId)
          .describe()
          .then((d) => d.status.name, (error: unknown) => (error instanceof WorkflowNotFoundError ? 'NOT_FOUND' : Promise.reject(error)));
        if (status !== 'RUNNING') break;
        if (Date.now() > deadline) {
          throw new BackfillError(
            'failed',
            `node workflow ${workflowId} is still running although its backfill ended: wait for it, or end it with 'temporal workflow terminate --workflow-id ${workflowId}'`,
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** The final result of a finished backfill (to resume it). */
  async result(backfillId: string): Promise<BackfillResult> {
    return (await this.handle(backfillId).result()) as BackfillResult;
  }

  private async update<R>(backfillId: string, run: (handle: WorkflowHandle<typeof backfillWorkflow>) => Promise<R>): Promise<R> {
    const description = await this.describe(backfillId);
    if (description.status.name !== 'RUNNING') {
      throw new BackfillError('not_running', `backfill '${backfillId}' is not running (it ended ${description.status.name.toLowerCase()})`);
    }
    try {
      return await run(this.handle(backfillId));
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) {
        const cause = error.cause as Error | undefined;
        throw new BackfillError('invalid_argument', cause?.message ?? error.message);
      }
      throw error;
    }
  }

  pause(backfillId: string): Promise<ControlState> {
    return this.update(backfillId, (h) => h.executeUpdate(pauseUpdate));
  }

  resume(backfillId: string): Promise<ControlState> {
    return this.update(backfillId, (h) => h.executeUpdate(resumeUpdate));
  }

  setRate(backfillId: string, rate: number | null, node?: string): Promise<ControlState> {
    return this.update(backfillId, (h) => h.executeUpdate(setRateUpdate, { args: node === undefined ? [rate] : [rate, node] }));
  }

  setConcurrency(backfillId: string, concurrency: number | null, node?: string): Promise<ControlState> {
    return this.update(backfillId, (h) => h.executeUpdate(setConcurrencyUpdate, { args: node === undefined ? [concurrency] : [concurrency, node] }));
  }

  /**
   * Runs the failed partitions again (then the partitions they blocked). A running backfill
   * does it in place; a finished one is resumed in a new run that skips what is done.
   */
  async retryFailed(backfillId: string, node?: string): Promise<{ retried: number; resumed: Started | null }> {
    let description = await this.describe(backfillId);
    if (description.status.name === 'RUNNING') {
      try {
        const retried = await this.update(backfillId, (h) => h.executeUpdate(retryFailedUpdate, { args: [node ?? null] }));
        return { retried, resumed: null };
      } catch (error) {
        // Caught in the moment it ends: let it end, then resume it.
        if (!(error instanceof BackfillError && /finishing/.test(error.message))) throw error;
        await this.wait(backfillId);
        description = await this.describe(backfillId);
      }
    }
    if (description.status.name !== 'COMPLETED') {
      throw new BackfillError('not_running', `backfill '${backfillId}' ended ${description.status.name.toLowerCase()}: only a running backfill or one that completed with failures can retry`);
    }
    const previous = await this.result(backfillId);
    if (previous.state !== 'completed_with_failures') {
      throw new BackfillError('invalid_argument', `backfill '${backfillId}' completed with no failures: there is nothing to retry`);
    }
    const original = await this.inputOf(backfillId);
    if (!original) throw new BackfillError('failed', `cannot read the input of backfill '${backfillId}'`);
    const retried = node === undefined ? previous.progress.failed : (previous.progress.nodes.find((n) => n.id === node)?.failed ?? 0);
    if (node !== undefined && !original.spec.nodes.some((n) => n.id === node)) {
      throw new BackfillError('invalid_argument', `unknown node '${node}': this backfill's nodes are ${original.spec.nodes.map((n) => n.id).join(', ')}`);
    }
    await this.nodesClosed(backfillId, original.spec.nodes.map((n) => n.id));
    const resumed = await this.start(
      original.spec,
      {
        id: backfillId,
        range: original.range,
        taskQueue: description.taskQueue,
        ...(original.limits ? { limits: original.limits } : {}),
        ...(original.tuning ? { tuning: original.tuning } : {}),
      },
      resumeCarry(previous.carry, node),
    );
    return { retried, resumed };
  }

  /** The input the backfill's latest run was started with. */
  async inputOf(backfillId: string): Promise<BackfillInput | undefined> {
    const description = await this.describe(backfillId);
    return this.startInput(backfillId, description.runId);
  }

  /** A run's input, from the first event of its history (one event, not the whole history). */
  private async startInput(backfillId: string, runId: string): Promise<BackfillInput | undefined> {
    const response = await this.connection.workflowService.getWorkflowExecutionHistory({
      namespace: this.namespace,
      execution: { workflowId: backfillWorkflowId(backfillId), runId },
      maximumPageSize: 1,
    });
    const payload = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) return undefined;
    return this.client.options.loadedDataConverter.payloadConverter.fromPayload<BackfillInput>(payload);
  }

  /**
   * Sets the server-enforced cap on activities started per second on a task queue, across
   * all its workers (UpdateTaskQueueConfig, server 1.29+); null removes it, which restores
   * the cap the workers set (maxTaskQueueActivitiesPerSecond).
   */
  async setQueueRate(taskQueue: string, rate: number | null): Promise<{ taskQueue: string; rate: number | null }> {
    const response = await this.connection.workflowService.updateTaskQueueConfig({
      namespace: this.namespace,
      identity: 'backfill-cli',
      taskQueue,
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      updateQueueRateLimit: {
        ...(rate === null ? {} : { rateLimit: { requestsPerSecond: rate } }),
        reason: rate === null ? 'backfill set-queue-rate unlimited' : `backfill set-queue-rate ${rate}`,
      },
    });
    const current = response.config?.queueRateLimit?.rateLimit?.requestsPerSecond;
    return { taskQueue, rate: current ?? null };
  }

  async cancel(backfillId: string): Promise<void> {
    const description = await this.describe(backfillId);
    if (description.status.name !== 'RUNNING') {
      throw new BackfillError('not_running', `backfill '${backfillId}' is not running (it ended ${description.status.name.toLowerCase()})`);
    }
    await this.handle(backfillId).cancel();
  }
}

/**
 * The carry that resumes a finished backfill: keep what is done, and run again what failed
 * (of every node, or of `node` only; other nodes keep their failures) and what it blocked.
 */
export function resumeCarry(carry: BackfillCarry, node?: string): BackfillCarry {
  const readiness = Object.fromEntries(
    Object.entries(carry.readiness).map(([id, state]) => [id, node === undefined || id === node ? { done: state.done, failed: [] } : state]),
  );
  return {
    ...carry,
    readiness,
    childrenRunning: false,
    paused: false,
    failures: node === undefined ? {} : { ...carry.failures, [node]: [] },
    outbox: {},
    settings: {},
  };
}
