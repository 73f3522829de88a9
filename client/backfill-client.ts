/** The typed client library behind the `backfill` command line. */
import {
  Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Connection,
  type WorkflowHandle,
} from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import proto from '@temporalio/proto';
import { BackfillError } from '../core/errors.ts';
import type { BackfillInputWithSkip } from '../core/only-changed.ts';
import { DEFAULT_TASK_QUEUE, type BackfillCarry, type BackfillInput, type BackfillResult, type Limits, type Progress, type Tuning } from '../core/protocol.ts';
import type { RangesJSON } from '../core/ranges.ts';
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
import { datasetWriters, datasetsBusy, type DatasetWriter } from './dataset-writers.ts';
import { registerSearchAttributes, rejectedAttribute, requireSearchAttributes, unregisteredAttribute, type SetupResult } from './search-attributes.ts';

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
  /** Partition index ranges, by node, whose published versions stand: counted as done, never run (`--only-changed`). */
  skip?: Record<string, RangesJSON>;
  /** When running backfills write some of its datasets, wait until they are free instead of failing. */
  waitForDatasets?: DatasetWait;
  /**
   * Skip the one-writer-per-dataset check: for a namespace shared by backfills that write to
   * different warehouses (where one node id names different datasets), and test suites.
   * Default: $BACKFILL_SHARED_DATASETS (1, true or yes), else false.
   */
  sharedDatasets?: boolean;
};

export type DatasetWait = {
  /** Give up after this long (default: wait as long as it takes). */
  timeoutMs?: number;
  /** How often to look again (default 2 s). */
  pollMs?: number;
  /** Called each time it looks and the datasets are still written by others. */
  onWait?: (writers: DatasetWriter[]) => void | Promise<void>;
};

export type Started = { backfillId: string; workflowId: string; runId: string; uiUrl: string };

export type Outcome = { backfillId: string; state: Progress['state']; progress: Progress | null };

/** How long a progress query waits for a worker to answer. */
const QUERY_TIMEOUT_MS = 15_000;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

/** A readable default id: the spec's name and the UTC start time. */
export function defaultBackfillId(name: string, now = new Date()): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'backfill';
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
  return `${slug}-${stamp}`;
}

export class BackfillClient {
  /** Whether `start` has checked the search attributes, and whether it could list them. */
  private searchAttributes: { listed: boolean } | undefined;

  private constructor(
    readonly client: Client,
    readonly connection: Connection,
    readonly settings: ConnectionSettings,
    private readonly uiBase: string,
  ) {}

  static async connect(options: ConnectOptions = {}): Promise<BackfillClient> {
    const { settings: given, uiUrl, ...overrides } = options;
    const settings = given ?? resolveConnection(overrides);
    const connection = await openConnection(settings);
    const uiBase = uiUrl ?? process.env.BACKFILL_UI_URL ?? 'http://localhost:8233';
    return new BackfillClient(new Client({ connection, namespace: settings.namespace }), connection, settings, uiBase.replace(/\/$/, ''));
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
    const shared = options.sharedDatasets ?? /^(1|true|yes)$/i.test(process.env.BACKFILL_SHARED_DATASETS ?? '');
    if (!shared) await this.datasetsFree(backfillId, spec.nodes.map((n) => n.id), options.waitForDatasets);
    if (options.rerun || carry) await this.nodesClosed(backfillId, spec.nodes.map((n) => n.id));
    const input: BackfillInputWithSkip = {
      backfillId,
      spec,
      range: options.range ?? {},
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.tuning ? { tuning: options.tuning } : {}),
      ...(carry ? { carry } : {}),
      ...(options.skip && Object.keys(options.skip).length > 0 ? { skip: options.skip } : {}),
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
    const description = await this.describe(backfillId);
    const status = description.status.name;
    const handle = this.handle(backfillId);
    if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') {
      try {
        return await this.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(progressQuery));
      } catch (error) {
        if (!/deadline|timed? ?out/i.test(String(error))) throw error;
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
      if (!wait) throw datasetsBusy(backfillId, writers);
      if (Date.now() >= deadline) throw datasetsBusy(backfillId, writers, wait.timeoutMs);
      await wait.onWait?.(writers);
      await new Promise((r) => setTimeout(r, wait.pollMs ?? 2000));
    }
  }

  /** The input a workflow run was started with, from the first event of its history only. */
  private async firstInput(workflowId: string, runId: string): Promise<BackfillInput | undefined> {
    const response = await this.connection.workflowService.getWorkflowExecutionHistory({
      namespace: this.namespace,
      execution: { workflowId, runId },
      maximumPageSize: 1,
    });
    const payload = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    return payload ? this.client.options.loadedDataConverter.payloadConverter.fromPayload<BackfillInput>(payload) : undefined;
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

  /** The input the backfill's first run was started with. */
  async inputOf(backfillId: string): Promise<BackfillInput | undefined> {
    const description = await this.describe(backfillId);
    const handle = this.client.workflow.getHandle(backfillWorkflowId(backfillId), description.runId);
    const history = await handle.fetchHistory();
    const attributes = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const payload = attributes?.input?.payloads?.[0];
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
