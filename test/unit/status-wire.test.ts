/**
 * The light status path's descriptor (client/status-wire.ts) is Temporal's API, field for field:
 * every field it names has the number and type @temporalio/proto gives it (enums travel as
 * int32), and it reads what the SDK's own encoding of a full message says, skipping the rest.
 */
import proto from '@temporalio/proto';
import protobuf from 'protobufjs/light.js';
import { describe, expect, it } from 'vitest';
import { decodePayload } from '../../client/status-rpc.ts';
import { EVENT_TYPE, PENDING_ACTIVITY_STATE_SCHEDULED, STATUS_MESSAGES, TASK_QUEUE_TYPE, WORKFLOW_EXECUTION_STATUS_RUNNING, WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR, statusDescriptor } from '../../client/status-wire.ts';

type ReflectionRoot = { lookupType(name: string): protobuf.Type };
const full = proto as unknown as ReflectionRoot;
const light = protobuf.Root.fromJSON(statusDescriptor());

describe('the status descriptor', () => {
  for (const [message, fields] of Object.entries(STATUS_MESSAGES)) {
    it(`${message}: each field as Temporal's API defines it`, () => {
      const type = full.lookupType(message);
      for (const [name, spec] of Object.entries(fields)) {
        const field = type.fields[name];
        expect(field, `${message}.${name}`).toBeDefined();
        field!.resolve();
        // @temporalio/proto has its own copy of protobufjs: an enum is told by its values, not its class.
        const isEnum = field!.resolvedType !== null && 'values' in field!.resolvedType;
        const typeName = field!.resolvedType ? field!.resolvedType.fullName.slice(1) : field!.type;
        expect({ name, id: field!.id, type: isEnum ? 'int32' : typeName, repeated: field!.repeated, keyType: 'keyType' in field! ? field.keyType : undefined }).toEqual({
          name,
          id: spec.id,
          type: spec.type,
          repeated: spec.rule === 'repeated',
          keyType: spec.keyType,
        });
      }
    });
  }

  it('the enum values it uses are Temporal\'s', () => {
    const enums = (proto as unknown as { temporal: { api: { enums: { v1: Record<string, Record<string, number>> } } } }).temporal.api.enums.v1;
    expect(WORKFLOW_EXECUTION_STATUS_RUNNING).toBe(enums.WorkflowExecutionStatus!.WORKFLOW_EXECUTION_STATUS_RUNNING);
    expect(TASK_QUEUE_TYPE).toEqual({ workflow: enums.TaskQueueType!.TASK_QUEUE_TYPE_WORKFLOW, activity: enums.TaskQueueType!.TASK_QUEUE_TYPE_ACTIVITY });
    expect(EVENT_TYPE).toEqual({
      workflowTaskCompleted: enums.EventType!.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      workflowTaskTimedOut: enums.EventType!.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
      workflowTaskFailed: enums.EventType!.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    });
    expect(WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR).toBe(enums.WorkflowTaskFailedCause!.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR);
    expect(PENDING_ACTIVITY_STATE_SCHEDULED).toBe(enums.PendingActivityState!.PENDING_ACTIVITY_STATE_SCHEDULED);
  });

  it('reads the fields it needs from a full answer the SDK encodes, and skips the others', () => {
    const name = 'temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse';
    const bytes = full
      .lookupType(name)
      .encode({
        executionConfig: { taskQueue: { name: 'elsewhere' }, defaultWorkflowTaskTimeout: { seconds: 10 } },
        workflowExecutionInfo: {
          execution: { workflowId: 'backfill/b1', runId: 'run-1' },
          type: { name: 'backfillWorkflow' },
          status: WORKFLOW_EXECUTION_STATUS_RUNNING,
          historyLength: 42,
          taskQueue: 'backfill',
          memo: { fields: { note: { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"x"') } } },
        },
        pendingActivities: [
          { activityId: 'a/1', activityType: { name: 'warehouseIdentity' }, state: 2, attempt: 3, maximumAttempts: 20, lastFailure: { message: 'Permission denied', stackTrace: 'at x', applicationFailureInfo: { type: 'Error', nonRetryable: false } }, lastWorkerIdentity: 'w@h' },
        ],
        pendingWorkflowTask: { state: 1, scheduledTime: { seconds: 1_700_000_100 }, originalScheduledTime: { seconds: 1_700_000_000 }, attempt: 7 },
      })
      .finish();
    const read = light.lookupType(name);
    expect(read.toObject(read.decode(bytes), { longs: Number })).toEqual({
      workflowExecutionInfo: { execution: { workflowId: 'backfill/b1', runId: 'run-1' }, type: { name: 'backfillWorkflow' }, status: WORKFLOW_EXECUTION_STATUS_RUNNING, taskQueue: 'backfill' },
      // What status says of a step that keeps failing (client/activity-failing.ts).
      pendingActivities: [{ activityId: 'a/1', activityType: { name: 'warehouseIdentity' }, state: 2, attempt: 3, lastFailure: { message: 'Permission denied', applicationFailureInfo: { type: 'Error' } } }],
      pendingWorkflowTask: { attempt: 7 },
    });
  });

  it("reads a WorkflowTaskFailed event's time, cause and message from a history read in reverse", () => {
    const name = 'temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryReverseResponse';
    const failed = {
      eventId: 9,
      eventTime: { seconds: 1_700_000_000, nanos: 5_000_000 },
      eventType: EVENT_TYPE.workflowTaskFailed,
      workflowTaskFailedEventAttributes: { scheduledEventId: 7, startedEventId: 8, cause: 14, failure: { message: 'boom', stackTrace: 'at x', applicationFailureInfo: { type: 'Error' } }, identity: 'w@h' },
    };
    const bytes = full.lookupType(name).encode({ history: { events: [failed] }, nextPageToken: Buffer.from('next') }).finish();
    const read = light.lookupType(name);
    expect(read.toObject(read.decode(bytes), { longs: Number })).toEqual({
      history: { events: [{ eventTime: { seconds: 1_700_000_000, nanos: 5_000_000 }, eventType: EVENT_TYPE.workflowTaskFailed, workflowTaskFailedEventAttributes: { cause: 14, failure: { message: 'boom', applicationFailureInfo: { type: 'Error' } } } }] },
    });
  });

  it('reads a poller\'s last access time and a query\'s answer', () => {
    const pollers = 'temporal.api.workflowservice.v1.DescribeTaskQueueResponse';
    const bytes = full.lookupType(pollers).encode({ pollers: [{ identity: 'w@h', lastAccessTime: { seconds: 1_700_000_000, nanos: 250_000_000 }, ratePerSecond: 5 }] }).finish();
    const read = light.lookupType(pollers);
    expect(read.toObject(read.decode(bytes), { longs: Number })).toEqual({ pollers: [{ identity: 'w@h', lastAccessTime: { seconds: 1_700_000_000, nanos: 250_000_000 } }] });

    const query = 'temporal.api.workflowservice.v1.QueryWorkflowResponse';
    const answer = full.lookupType(query).encode({ queryResult: { payloads: [{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"state":"running"}') }] } }).finish();
    const decoded = light.lookupType(query).toObject(light.lookupType(query).decode(answer), { bytes: Buffer }) as { queryResult: { payloads: Array<{ metadata: Record<string, Buffer>; data: Buffer }> } };
    expect(decodePayload(decoded.queryResult.payloads[0])).toEqual({ state: 'running' });
  });
});

describe('decodePayload', () => {
  it('reads JSON and nothing as the SDK\'s default converter does, and refuses any other encoding', () => {
    expect(decodePayload({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('[1,"a"]') })).toEqual([1, 'a']);
    expect(decodePayload({ metadata: { encoding: Buffer.from('binary/null') } })).toBeUndefined();
    expect(decodePayload(undefined)).toBeUndefined();
    expect(() => decodePayload({ metadata: { encoding: Buffer.from('binary/encrypted') }, data: Buffer.from('x') })).toThrow(/binary\/encrypted, not json\/plain/);
  });
});
