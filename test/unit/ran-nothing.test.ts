/**
 * A used id is taken again without --rerun only after runs whose history shows they ran nothing:
 * the memo that marks a refusal can be set by whoever starts the workflow, the history cannot.
 */
import { describe, expect, it } from 'vitest';
import proto from '@temporalio/proto';
import { ranNothing } from '../../client/workflow-runs.ts';

type Event = proto.temporal.api.history.v1.IHistoryEvent;
const { EventType } = proto.temporal.api.enums.v1;

const started: Event = { eventType: EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED };
const activity: Event = { eventType: EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED };
const child: Event = { eventType: EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED };
const failed = (type: string): Event => ({
  eventType: EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
  workflowExecutionFailedEventAttributes: { failure: { message: 'the policy refuses this backfill', applicationFailureInfo: { type } } },
});

describe('ranNothing', () => {
  it('a run that failed with the policy refusal and started no node workflow ran nothing (its admission may run activities)', () => {
    expect(ranNothing([started, activity, failed('policy_violation')])).toBe(true);
  });

  it('a run that started a node workflow ran, whatever it failed with', () => {
    expect(ranNothing([started, child, failed('policy_violation')])).toBe(false);
  });

  it('a run that failed otherwise, or has not failed, is not a refusal', () => {
    expect(ranNothing([started, failed('failed')])).toBe(false);
    expect(ranNothing([started, { eventType: EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED }])).toBe(false);
    expect(ranNothing([])).toBe(false);
  });
});
