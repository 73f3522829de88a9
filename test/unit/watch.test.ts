import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
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

describe('--watch on a pipe', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('prints a line per state it passes, but not the one it ends at: the command prints how it ended', async () => {
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
    const isTTY = process.stderr.isTTY;
    process.stderr.isTTY = false;
    try {
      const final = await watch(answering('awaiting_approval', 'awaiting_approval', 'running', 'running', 'completed'), 'b', false, 1);
      expect(final.state).toBe('completed');
    } finally {
      process.stderr.isTTY = isTTY;
    }
    // Before, the end's headline was printed here and again by the command: twice in a log.
    expect(stderr.split('\n').filter(Boolean).map((line) => line.split(' · ')[0])).toEqual(['b awaiting_approval', 'b running']);
  });
});

describe('--watch while the worker is away', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A client whose status fails with `failures` in turn, then answers `completed`. */
  function away(...failures: Error[]) {
    let polls = 0;
    return {
      get polls() {
        return polls;
      },
      status: async () => {
        const failure = failures[polls++];
        if (failure) throw failure;
        return status('completed');
      },
    };
  }

  it('rides out no_worker and timeout (a worker restarting), as wait does, saying it waits for a worker', async () => {
    vi.useFakeTimers();
    const noWorker = new BackfillError('no_worker', "backfill 'b' is running but no worker polls its workflow task queue 'q'");
    const client = away(noWorker, noWorker, new BackfillError('timeout', "backfill 'b' is running but no worker answered within 15s"), new Error('14 UNAVAILABLE'));
    const notes: string[] = [];
    const final = watch(client, 'b', true, 1, (line) => notes.push(line));
    await vi.advanceTimersByTimeAsync(10_000);
    expect((await final).state).toBe('completed');
    expect(client.polls).toBe(5);
    expect(notes).toEqual([expect.stringMatching(/^b: backfill 'b' is running but no worker polls .*; waiting for a worker \(for up to 120s\)$/)]);
  });

  it('gives up with the error once the worker has been away for two minutes', async () => {
    vi.useFakeTimers();
    const noWorker = new BackfillError('no_worker', 'no worker');
    const client = { status: async (): Promise<never> => Promise.reject(noWorker) };
    const outcome = watch(client, 'b', true, 1, () => undefined).then(
      () => 'ended',
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(60_000);
    await vi.advanceTimersByTimeAsync(70_000);
    expect(await outcome).toBe(noWorker);
  });

  it('ends at once on any other error the server answers (not found)', async () => {
    const missing = new BackfillError('not_found', 'no backfill');
    await expect(watch(away(missing), 'b', true, 1, () => undefined)).rejects.toBe(missing);
  });
});
