/** The task queues a running backfill's nodes may have moved to since its run started, from its history. */
import { defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { replacedSpecQueues } from '../../client/replaced-queues.ts';

const accepted = (name: string, arg: unknown) => ({
  workflowExecutionUpdateAcceptedEventAttributes: { acceptedRequest: { input: { name, args: { payloads: [defaultPayloadConverter.toPayload(arg)] } } } },
});
const decode = (payload: Parameters<typeof defaultPayloadConverter.fromPayload>[0]) => defaultPayloadConverter.fromPayload(payload);

describe('replacedSpecQueues', () => {
  it('the queues of every spec the history accepted, and none of other updates', () => {
    const events = [
      { workflowExecutionStartedEventAttributes: {} },
      accepted('replaceSpec', { nodes: [{ id: 'a', taskQueue: 'warehouse' }, { id: 'b', taskQueue: 'lake' }] }),
      accepted('setRate', 5),
      accepted('replaceSpec', { nodes: [{ id: 'a', taskQueue: 'gpu' }, { id: 'b', taskQueue: 'lake' }] }),
    ];
    expect(replacedSpecQueues(events, decode)?.sort()).toEqual(['gpu', 'lake', 'warehouse']);
    expect(replacedSpecQueues([{ workflowExecutionStartedEventAttributes: {} }], decode)).toEqual([]);
  });

  it('null when an accepted spec cannot be read: its nodes could be anywhere', () => {
    expect(replacedSpecQueues([accepted('replaceSpec', { nodes: [{ id: 'a' }] })], decode)).toBeNull();
    expect(replacedSpecQueues([accepted('replaceSpec', 'not a spec')], decode)).toBeNull();
    const unreadable = { workflowExecutionUpdateAcceptedEventAttributes: { acceptedRequest: { input: { name: 'replaceSpec', args: { payloads: [{ metadata: { encoding: new TextEncoder().encode('binary/encrypted') }, data: new Uint8Array([1]) }] } } } } };
    expect(replacedSpecQueues([unreadable], decode)).toBeNull();
  });
});
