import { describe, expect, it } from 'vitest';
import type { Status } from '../../client/backfill-client.ts';
import { watch, watchEndsAt } from '../../client/watch.ts';
import { ACTIVE_STATES, type BackfillState } from '../../core/protocol.ts';

function status(state: BackfillState): Status {
  return {
    backfillId: 'b',
    name: 'shop',
    state,
    paused: false,
    rate: null,
    concurrency: null,
    total: 10,
    done: 0,
    running: 0,
    failed: 0,
    blocked: 0,
    pending: 10,
    throughput: null,
    etaSeconds: null,
    runs: 1,
    nodes: [],
    waiting: [],
  };
}

/** A client whose status answers these states in turn (the last one from then on), counting the polls. */
function answering(...states: BackfillState[]) {
  let polls = 0;
  return {
    get polls() {
      return polls;
    },
    status: async () => status(states[Math.min(polls++, states.length - 1)]!),
  };
}

describe('--watch', () => {
  it('watches a start the policy holds (for approval, or until its run window opens) until it ends', async () => {
    const client = answering('awaiting_approval', 'waiting_for_window', 'running', 'completed');
    const final = await watch(client, 'b', true, 1);
    expect(final.state).toBe('completed');
    expect(client.polls).toBe(4);
  });

  it('stops where the backfill waits for an operator to publish or approve what it computed', async () => {
    for (const state of ['staged', 'awaiting_canary'] as const) {
      const client = answering('running', state, 'completed');
      expect((await watch(client, 'b', true, 1)).state).toBe(state);
      expect(client.polls).toBe(2);
    }
  });

  it('stops at every state that has ended, and at no other active state than those two', () => {
    for (const state of ACTIVE_STATES) expect(watchEndsAt(state), state).toBe(state === 'staged' || state === 'awaiting_canary');
    for (const state of ['completed', 'completed_with_failures', 'failed', 'cancelled', 'discarded', 'canary_failed'] as const) expect(watchEndsAt(state), state).toBe(true);
  });
});
