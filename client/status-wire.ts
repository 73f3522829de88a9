/**
 * The part of Temporal's API that `status` reads, as a protobuf descriptor: the messages of the
 * five WorkflowService calls it makes, with only the fields it reads or sends. Decoding skips
 * every field left out, as protobuf does for fields it does not know, so a small descriptor reads
 * the server's full answers. Loading it takes a few milliseconds, against ~250 ms for the whole
 * API's (@temporalio/proto), which the SDK's client loads before its first call.
 *
 * Field numbers and types are Temporal's (temporal/api, as @temporalio/proto ships it):
 * test/unit/status-wire.test.ts checks every one against that package. Enums travel as int32.
 */
import type { INamespace, IType } from 'protobufjs/light.js';

/** A field: its number and type, `repeated`, or a map from string keys. */
export type WireField = { id: number; type: string; rule?: 'repeated'; keyType?: 'string' };

/** Messages by full name, each with the fields `status` uses. */
export const STATUS_MESSAGES: Record<string, Record<string, WireField>> = {
  'google.protobuf.Timestamp': { seconds: { id: 1, type: 'int64' }, nanos: { id: 2, type: 'int32' } },
  'temporal.api.common.v1.WorkflowExecution': { workflowId: { id: 1, type: 'string' }, runId: { id: 2, type: 'string' } },
  'temporal.api.common.v1.Payload': { metadata: { id: 1, type: 'bytes', keyType: 'string' }, data: { id: 2, type: 'bytes' } },
  'temporal.api.common.v1.Payloads': { payloads: { id: 1, type: 'temporal.api.common.v1.Payload', rule: 'repeated' } },
  'temporal.api.common.v1.WorkflowType': { name: { id: 1, type: 'string' } },
  'temporal.api.query.v1.WorkflowQuery': { queryType: { id: 1, type: 'string' } },
  'temporal.api.query.v1.QueryRejected': { status: { id: 1, type: 'int32' } },
  'temporal.api.taskqueue.v1.TaskQueue': { name: { id: 1, type: 'string' } },
  'temporal.api.taskqueue.v1.PollerInfo': { lastAccessTime: { id: 1, type: 'google.protobuf.Timestamp' }, identity: { id: 2, type: 'string' } },
  'temporal.api.workflow.v1.WorkflowExecutionInfo': {
    execution: { id: 1, type: 'temporal.api.common.v1.WorkflowExecution' },
    type: { id: 2, type: 'temporal.api.common.v1.WorkflowType' },
    status: { id: 5, type: 'int32' },
    taskQueue: { id: 13, type: 'string' },
  },
  'temporal.api.workflow.v1.PendingWorkflowTaskInfo': { attempt: { id: 5, type: 'int32' } },
  'temporal.api.failure.v1.Failure': {
    message: { id: 1, type: 'string' },
    applicationFailureInfo: { id: 5, type: 'temporal.api.failure.v1.ApplicationFailureInfo' },
  },
  'temporal.api.failure.v1.ApplicationFailureInfo': { type: { id: 1, type: 'string' } },
  'temporal.api.common.v1.ActivityType': { name: { id: 1, type: 'string' } },
  'temporal.api.workflow.v1.PendingActivityInfo': {
    activityId: { id: 1, type: 'string' },
    activityType: { id: 2, type: 'temporal.api.common.v1.ActivityType' },
    state: { id: 3, type: 'int32' },
    attempt: { id: 7, type: 'int32' },
    lastFailure: { id: 11, type: 'temporal.api.failure.v1.Failure' },
  },
  'temporal.api.history.v1.History': { events: { id: 1, type: 'temporal.api.history.v1.HistoryEvent', rule: 'repeated' } },
  'temporal.api.history.v1.HistoryEvent': {
    eventTime: { id: 2, type: 'google.protobuf.Timestamp' },
    eventType: { id: 3, type: 'int32' },
    workflowExecutionStartedEventAttributes: { id: 6, type: 'temporal.api.history.v1.WorkflowExecutionStartedEventAttributes' },
    workflowTaskFailedEventAttributes: { id: 14, type: 'temporal.api.history.v1.WorkflowTaskFailedEventAttributes' },
  },
  'temporal.api.history.v1.WorkflowExecutionStartedEventAttributes': { input: { id: 6, type: 'temporal.api.common.v1.Payloads' } },
  'temporal.api.history.v1.WorkflowTaskFailedEventAttributes': {
    cause: { id: 3, type: 'int32' },
    failure: { id: 4, type: 'temporal.api.failure.v1.Failure' },
  },
  'temporal.api.workflowservice.v1.DescribeWorkflowExecutionRequest': {
    namespace: { id: 1, type: 'string' },
    execution: { id: 2, type: 'temporal.api.common.v1.WorkflowExecution' },
  },
  'temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse': {
    workflowExecutionInfo: { id: 2, type: 'temporal.api.workflow.v1.WorkflowExecutionInfo' },
    pendingActivities: { id: 3, type: 'temporal.api.workflow.v1.PendingActivityInfo', rule: 'repeated' },
    pendingWorkflowTask: { id: 5, type: 'temporal.api.workflow.v1.PendingWorkflowTaskInfo' },
  },
  'temporal.api.workflowservice.v1.QueryWorkflowRequest': {
    namespace: { id: 1, type: 'string' },
    execution: { id: 2, type: 'temporal.api.common.v1.WorkflowExecution' },
    query: { id: 3, type: 'temporal.api.query.v1.WorkflowQuery' },
  },
  'temporal.api.workflowservice.v1.QueryWorkflowResponse': {
    queryResult: { id: 1, type: 'temporal.api.common.v1.Payloads' },
    queryRejected: { id: 2, type: 'temporal.api.query.v1.QueryRejected' },
  },
  'temporal.api.workflowservice.v1.DescribeTaskQueueRequest': {
    namespace: { id: 1, type: 'string' },
    taskQueue: { id: 2, type: 'temporal.api.taskqueue.v1.TaskQueue' },
    taskQueueType: { id: 3, type: 'int32' },
  },
  'temporal.api.workflowservice.v1.DescribeTaskQueueResponse': { pollers: { id: 1, type: 'temporal.api.taskqueue.v1.PollerInfo', rule: 'repeated' } },
  'temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryRequest': {
    namespace: { id: 1, type: 'string' },
    execution: { id: 2, type: 'temporal.api.common.v1.WorkflowExecution' },
    maximumPageSize: { id: 3, type: 'int32' },
  },
  'temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse': { history: { id: 1, type: 'temporal.api.history.v1.History' } },
  'temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryReverseRequest': {
    namespace: { id: 1, type: 'string' },
    execution: { id: 2, type: 'temporal.api.common.v1.WorkflowExecution' },
    maximumPageSize: { id: 3, type: 'int32' },
  },
  'temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryReverseResponse': { history: { id: 1, type: 'temporal.api.history.v1.History' } },
};

/** Temporal's enum values that `status` sends or compares (temporal.api.enums.v1). */
export const WORKFLOW_EXECUTION_STATUS_RUNNING = 1;
export const TASK_QUEUE_TYPE = { workflow: 1, activity: 2 } as const;
/** PendingActivityState's SCHEDULED: no worker has started the activity (a retry waiting for its next attempt too). */
export const PENDING_ACTIVITY_STATE_SCHEDULED = 1;
/** The history events that end a workflow task's attempt (temporal.api.enums.v1.EventType). */
export const EVENT_TYPE = { workflowTaskCompleted: 7, workflowTaskTimedOut: 8, workflowTaskFailed: 9 } as const;
/** WorkflowTaskFailedCause's NON_DETERMINISTIC_ERROR: the worker's code did not replay the history. */
export const WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR = 24;

/** The descriptor as protobufjs reads it (`Root.fromJSON`): namespaces nested by the names' parts. */
export function statusDescriptor(): INamespace {
  const root: INamespace = { nested: {} };
  for (const [fullName, fields] of Object.entries(STATUS_MESSAGES)) {
    const parts = fullName.split('.');
    const name = parts.pop()!;
    let namespace = root;
    for (const part of parts) namespace = (namespace.nested![part] ??= { nested: {} }) as INamespace;
    // Absolute type names (a leading dot): protobufjs resolves them from the root.
    const absolute = Object.fromEntries(Object.entries(fields).map(([field, spec]) => [field, { ...spec, type: spec.type.includes('.') ? `.${spec.type}` : spec.type }]));
    namespace.nested![name] = { fields: absolute } satisfies IType;
  }
  return root;
}
