/**
 * A read-only connection for `status`: the five WorkflowService calls it makes (describe the
 * workflow, query it, read the first event of its history or, when its workflow task keeps
 * failing, the last events, describe a task queue), over
 * @grpc/grpc-js with the small descriptor of client/status-wire.ts. It loads neither
 * @temporalio/client nor the whole API's descriptor, which together take most of the time
 * `status` took. It speaks plain gRPC only: client/light-status.ts uses it when the settings
 * have neither TLS nor an API key, and goes through the SDK's client otherwise.
 */
import { Client, Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import protobuf from 'protobufjs/light.js';
import type { ConnectionSettings } from './connection.ts';
import { TASK_QUEUE_TYPE, statusDescriptor } from './status-wire.ts';
import { FAILURE_EVENTS, lastTaskFailure, timestampMs, type FailureEvent, type TaskFailure } from './task-failing.ts';
import type { Poller } from './waiting.ts';
import type { PendingActivity } from './activity-failing.ts';
import type { NodeActivity } from './queued.ts';

const SERVICE = 'temporal.api.workflowservice.v1.WorkflowService';
const MESSAGES = 'temporal.api.workflowservice.v1';
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;

/** The messages `status` reads, as protobufjs decodes them to plain objects. */
type Execution = { workflowId?: string; runId?: string };
type Payload = { metadata?: Record<string, Buffer>; data?: Buffer };
type Payloads = { payloads?: Payload[] };

/**
 * The pending workflow task: its attempt (from 2 on, it failed or timed out that many times less
 * one in a row). Its `originalScheduledTime` is left out: for a task failing again and again it is
 * the current attempt's, not the streak's first.
 */
export type PendingWorkflowTask = { attempt: number };

/** `type`: the workflow's type name; `workflowTask`: the pending one, if any; `pendingActivities`: its activities scheduled and not done. */
export type WorkflowDescription = { runId: string; type: string; status: number; taskQueue: string; workflowTask?: PendingWorkflowTask; pendingActivities?: Array<PendingActivity & NodeActivity> };

/** A call the server (or the channel) failed, with gRPC's status code. */
export class StatusRpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number | undefined,
    message: string,
  ) {
    super(`${method}: ${message}`);
    this.name = 'StatusRpcError';
  }
}

/** Whether `settings` are ones this connection speaks: plain gRPC, no TLS, no API key. */
export function speaksPlainGrpc(settings: ConnectionSettings): boolean {
  return !settings.tls && !settings.apiKey;
}

let root: protobuf.Root | undefined;

function type(name: string): protobuf.Type {
  root ??= protobuf.Root.fromJSON(statusDescriptor());
  return root.lookupType(name);
}

/**
 * A payload as the SDK's default data converter decodes it: JSON (`json/plain`), or nothing
 * (`binary/null`). Any other encoding (a codec, protobuf payloads) is refused: the caller then
 * goes through the SDK's client, which knows it.
 */
export function decodePayload(payload: Payload | undefined): unknown {
  if (payload === undefined) return undefined;
  const encoding = payload.metadata?.encoding?.toString('utf8');
  if (encoding === 'binary/null') return undefined;
  if (encoding !== 'json/plain') throw new Error(`a payload encoded as ${encoding ?? 'nothing'}, not json/plain`);
  return JSON.parse((payload.data ?? Buffer.alloc(0)).toString('utf8')) as unknown;
}

function firstPayload(payloads: Payloads | undefined): unknown {
  return decodePayload(payloads?.payloads?.[0]);
}

export class StatusRpc {
  private readonly client: Client;
  private readonly metadata: Metadata;

  constructor(private readonly settings: ConnectionSettings) {
    if (!speaksPlainGrpc(settings)) throw new Error('the light status connection speaks plain gRPC only (no TLS, no API key)');
    this.client = new Client(settings.address, credentials.createInsecure(), { 'grpc.max_receive_message_length': 128 * 1024 * 1024 });
    this.metadata = new Metadata();
    for (const [key, value] of Object.entries(settings.options.metadata ?? {})) this.metadata.set(key, value);
  }

  /**
   * One call, tried again while the server says RESOURCE_EXHAUSTED (e.g. "consistent query buffer
   * is full": a workflow takes only a few queries at a time) until `deadline`, as the SDK's
   * connection does. Every other failure is final: the caller then asks the SDK's client.
   */
  private async call<T>(method: string, request: object, deadline: number): Promise<T> {
    for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
      try {
        return await this.callOnce<T>(method, request, deadline);
      } catch (error) {
        if (!(error instanceof StatusRpcError) || error.code !== GRPC_RESOURCE_EXHAUSTED) throw error;
        // Busy until the deadline: a timeout, as the SDK's connection reports it.
        if (Date.now() + wait >= deadline) throw new StatusRpcError(method, GRPC_DEADLINE_EXCEEDED, `deadline exceeded while the server was busy (${error.message})`);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  private callOnce<T>(method: string, request: object, deadline: number): Promise<T> {
    const requestType = type(`${MESSAGES}.${method}Request`);
    const responseType = type(`${MESSAGES}.${method}Response`);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/${SERVICE}/${method}`,
        (value: object) => Buffer.from(requestType.encode(requestType.fromObject(value)).finish()),
        (bytes: Buffer) => responseType.toObject(responseType.decode(bytes), { longs: Number, bytes: Buffer }) as T,
        request,
        this.metadata,
        { deadline },
        (error: ServiceError | null, response?: T) => {
          if (error) reject(new StatusRpcError(method, error.code, error.details || error.message));
          else resolve(response as T);
        },
      );
    });
  }

  private get namespace(): string {
    return this.settings.namespace;
  }

  async describe(workflowId: string, deadline: number): Promise<WorkflowDescription> {
    const response = await this.call<{
      workflowExecutionInfo?: { execution?: Execution; type?: { name?: string }; status?: number; taskQueue?: string };
      pendingActivities?: Array<PendingActivity & NodeActivity>;
      pendingWorkflowTask?: { attempt?: number };
    }>('DescribeWorkflowExecution', { namespace: this.namespace, execution: { workflowId } }, deadline);
    const info = response.workflowExecutionInfo;
    const pending = response.pendingWorkflowTask;
    return {
      runId: info?.execution?.runId ?? '',
      type: info?.type?.name ?? '',
      status: info?.status ?? 0,
      taskQueue: info?.taskQueue ?? '',
      ...(pending ? { workflowTask: { attempt: pending.attempt ?? 1 } } : {}),
      pendingActivities: response.pendingActivities ?? [],
    };
  }

  /** A query's answer, decoded; a rejected query throws. */
  async query(workflowId: string, queryType: string, deadline: number): Promise<unknown> {
    const response = await this.call<{ queryResult?: Payloads; queryRejected?: object }>(
      'QueryWorkflow',
      { namespace: this.namespace, execution: { workflowId }, query: { queryType } },
      deadline,
    );
    if (response.queryRejected) throw new StatusRpcError('QueryWorkflow', undefined, `query ${queryType} rejected`);
    return firstPayload(response.queryResult);
  }

  /** The input a run was started with: the first event of its history only. */
  async firstInput(execution: Required<Execution>, deadline: number): Promise<unknown> {
    const response = await this.call<{ history?: { events?: Array<{ workflowExecutionStartedEventAttributes?: { input?: Payloads } }> } }>(
      'GetWorkflowExecutionHistory',
      { namespace: this.namespace, execution, maximumPageSize: 1 },
      deadline,
    );
    return firstPayload(response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input);
  }

  /** The failure that began the run's current streak of failed workflow tasks: one read of its newest events. */
  async taskFailure(execution: Required<Execution>, deadline: number): Promise<TaskFailure | undefined> {
    const response = await this.call<{ history?: { events?: FailureEvent[] } }>(
      'GetWorkflowExecutionHistoryReverse',
      { namespace: this.namespace, execution, maximumPageSize: FAILURE_EVENTS },
      deadline,
    );
    return lastTaskFailure(response.history?.events ?? []);
  }

  async pollers(taskQueue: string, kind: keyof typeof TASK_QUEUE_TYPE, deadline: number): Promise<Poller[]> {
    const response = await this.call<{ pollers?: Array<{ identity?: string; lastAccessTime?: { seconds?: number; nanos?: number } }> }>(
      'DescribeTaskQueue',
      { namespace: this.namespace, taskQueue: { name: taskQueue }, taskQueueType: TASK_QUEUE_TYPE[kind] },
      deadline,
    );
    return (response.pollers ?? []).map((p) => ({ identity: p.identity ?? '', lastAccessMs: timestampMs(p.lastAccessTime) }));
  }

  close(): void {
    this.client.close();
  }
}
