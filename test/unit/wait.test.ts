/** `wait`: what it says of a backfill that has ended, whatever happens to the calls it makes. */
import { describe, expect, it, vi } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { waitTimedOut } from '../../client/wait-timeout.ts';
import { noteHolds, waitNote } from '../../client/wait-notes.ts';
import type { Progress } from '../../core/protocol.ts';
import { BackfillError } from '../../core/errors.ts';
import { fakeBackfillClient, noDeadline } from './fake-backfill-client.ts';

type Final = { state: string; progress: { state: string; nodes: never[] } };
const completed: Final = { state: 'completed', progress: { state: 'completed', nodes: [] } };

/** A client of one backfill: `describe` answers `statuses` in turn (the last from then on), `result` is `result`. */
function fakeClient(statuses: Array<string | Error>, result: () => Promise<Final>) {
  let described = 0;
  const handle = {
    result,
    describe: async () => {
      const status = statuses[Math.min(described++, statuses.length - 1)]!;
      if (status instanceof Error) throw status;
      return { type: 'backfillWorkflow', status: { name: status }, runId: 'r1', taskQueue: 'q', startTime: new Date() };
    },
  };
  return fakeBackfillClient({
    client: { workflow: { getHandle: () => handle } },
    settings: { namespace: 'default', address: 'localhost:7233', profile: null, configFile: null, tls: false, apiKey: false, options: { address: 'localhost:7233' } },
  });
}

/** A result that arrives after `ms` (a long poll's answer on its way). */
const after = (ms: number) => () => new Promise<Final>((resolve) => setTimeout(() => resolve(completed), ms));

describe('wait --timeout', () => {
  it('--timeout 0 of a completed backfill says completed, not still running', async () => {
    const outcome = await fakeClient(['COMPLETED'], after(20)).wait('b1', 0);
    expect(outcome.state).toBe('completed');
  });

  it('a backfill that ends as the timeout runs out is looked at again before it is said to run', async () => {
    const outcome = await fakeClient(['RUNNING', 'COMPLETED'], after(200)).wait('b1', 10);
    expect(outcome.state).toBe('completed');
  });

  it('one still running when the timeout runs out: timeout', async () => {
    await expect(fakeClient(['RUNNING'], () => new Promise<never>(() => undefined)).wait('b1', 10)).rejects.toMatchObject({ code: 'timeout', message: expect.stringContaining('still running') });
  });

  it('one staged when the timeout runs out: says it waits for publish or discard, and the commands', async () => {
    const client = withProgress(fakeClient(['RUNNING'], () => new Promise<never>(() => undefined)), async () => ({ state: 'staged', paused: false }));
    const refusal = client.wait('b1', 10);
    await expect(refusal).rejects.toMatchObject({ code: 'timeout', message: expect.stringContaining('still running: it has staged its partitions and waits for publish or discard') });
    await expect(refusal).rejects.toThrow("'backfill diff b1', then 'backfill publish b1' or 'backfill discard b1'");
  });

  it('one whose progress is slow to read when the timeout runs out: still running, said within about a second (a slow worker does not stretch the timeout)', async () => {
    const client = withProgress(fakeClient(['RUNNING'], () => new Promise<never>(() => undefined)), () => new Promise((resolve) => setTimeout(() => resolve({ state: 'staged', paused: false }), 5000)));
    const asked = Date.now();
    await expect(client.wait('b1', 10)).rejects.toThrow(/^backfill 'b1' did not finish within 0.01s; it is still running$/);
    expect(Date.now() - asked).toBeLessThan(4000);
  });

  it('one whose progress cannot be read when the timeout runs out: still running, nothing more', async () => {
    const client = withProgress(fakeClient(['RUNNING'], () => new Promise<never>(() => undefined)), () => Promise.reject(new Error('no worker')));
    await expect(client.wait('b1', 10)).rejects.toThrow(/^backfill 'b1' did not finish within 0.01s; it is still running$/);
  });
});

/** `client`, whose `progress` answers with `progress`. */
function withProgress(client: BackfillClient, progress: () => Promise<Pick<Progress, 'state' | 'paused'>>): BackfillClient {
  return Object.defineProperty(client, 'progress', { value: progress });
}

describe('what wait --timeout says of a backfill waiting on an operator', () => {
  const said = (progress: Pick<Progress, 'state' | 'paused'> | null) => waitTimedOut('b1', 300_000, progress).message;

  it("a canary's slice: approve or discard", () => {
    expect(said({ state: 'awaiting_canary', paused: false })).toContain(`waits for approve or discard (compare with 'backfill diff b1', then 'backfill approve b1 --reason "..."' or 'backfill discard b1')`);
  });

  it('a paused one: resume', () => {
    expect(said({ state: 'running', paused: true })).toContain("it is paused, and starts no partition until 'backfill resume b1'");
  });

  it('one a spent budget holds: set-budget, not resume (which changed nothing)', () => {
    const reason = 'the retries budget is spent: 4 of 3 failed attempts, 1 over; raise it with backfill set-budget <id> --retries <more> to go on';
    const message = waitTimedOut('b1', 300_000, { state: 'running', paused: true, governance: { holds: [{ kind: 'budget', reason }] } }).message;
    expect(message).toBe(
      "backfill 'b1' did not finish within 300s; it is still running: a spent budget holds it until 'backfill set-budget b1' raises it (resume changes nothing; 'backfill status b1' says which budget)",
    );
  });

  it('an approval or a run window: status says why or when', () => {
    expect(said({ state: 'awaiting_approval', paused: false })).toContain("waits for the approval its policy asks for before it runs ('backfill status b1' says why)");
    expect(said({ state: 'waiting_for_window', paused: false })).toContain("waits for its run window to open ('backfill status b1' says when)");
  });

  it('one that runs: only that it runs', () => {
    expect(said({ state: 'running', paused: false })).toBe("backfill 'b1' did not finish within 300s; it is still running");
    expect(said(null)).toBe("backfill 'b1' did not finish within 300s; it is still running");
  });
});

/** A result that fails `times` times with a dropped connection, then is `completed`. */
function failingFirst(times: number) {
  let calls = 0;
  return async () => {
    if (calls++ < times) throw Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 });
    return completed;
  };
}

describe('wait through failing calls', () => {
  it('reports a backfill that completed while its result failed once as completed, not failed', async () => {
    const outcome = await fakeClient(['COMPLETED'], failingFirst(1)).wait('b1');
    expect(outcome.state).toBe('completed');
  });

  it('a backfill that failed is failed (its result says so), without asking again and again', async () => {
    let calls = 0;
    const failed = async (): Promise<Final> => {
      calls++;
      throw new WorkflowFailedError('Workflow execution failed', new Error('boom'), 'NON_RETRYABLE_FAILURE');
    };
    const outcome = await fakeClient(['FAILED'], failed).wait('b1');
    expect(outcome.state).toBe('failed');
    // And why, from that answer (wait and start --watch print it).
    expect(outcome.failure).toBe('boom');
    expect(calls).toBe(1);
  });

  it('stops with the error when describing the backfill is refused for good (PERMISSION_DENIED), instead of looping', { timeout: 10_000 }, async () => {
    const denied = Object.assign(new Error('7 PERMISSION_DENIED: Request unauthorized.'), { code: 7, details: 'Request unauthorized.' });
    const lost = async (): Promise<Final> => {
      throw Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 });
    };
    await expect(fakeClient(['RUNNING', denied], lost).wait('b1')).rejects.toMatchObject({ code: 'server_unavailable', message: expect.stringContaining('refused these credentials') });
  });

  it('rides out a describe that fails for a passing reason, then tells how it ended', async () => {
    const unavailable = Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 });
    const outcome = await fakeClient(['RUNNING', unavailable, 'COMPLETED'], failingFirst(2)).wait('b1');
    expect(outcome.state).toBe('completed');
  });
});

describe('the progress of a backfill that ended, with no worker to tell it', () => {
  /** A client whose backfill ended `status` and whose queries find no worker. */
  function endedAs(status: string) {
    const handle = { describe: async () => ({ type: 'backfillWorkflow', status: { name: status }, runId: 'r1', taskQueue: 'q', startTime: new Date() }), query: () => Promise.reject(new Error('no worker')) };
    return fakeBackfillClient({ client: { workflow: { getHandle: () => handle }, withDeadline: noDeadline } });
  }

  it('says a terminated or timed-out one ended so, not that it failed', async () => {
    await expect(endedAs('TERMINATED').progress('b1')).rejects.toMatchObject({ code: 'not_running', message: expect.stringContaining("backfill 'b1' ended terminated (through Temporal") });
    await expect(endedAs('TIMED_OUT').progress('b1')).rejects.toMatchObject({ message: expect.stringContaining('ended timed out') });
    await expect(endedAs('FAILED').progress('b1')).rejects.toMatchObject({ message: "backfill 'b1' ended failed, and no worker is there to tell its final progress" });
  });
});

describe('what wait says while it blocks on a held backfill', () => {
  type Looked = Pick<Progress, 'state' | 'paused' | 'governance'>;
  const budgetSpent = 'the retries budget is spent: 3 of 3 failed attempts; raise it with backfill set-budget <id> --retries <more> to go on';
  const governed = (holds: Array<{ kind: 'operator' | 'budget' | 'window' | 'approval'; reason: string }>): Looked =>
    ({ state: 'running', paused: holds.some((h) => h.kind === 'operator' || h.kind === 'budget'), governance: { holds } as unknown as Progress['governance'] });
  const running: Looked = governed([]);
  const spent = (used: number) => governed([{ kind: 'budget', reason: budgetSpent.replace('3 of 3', `${used} of 3`) }]);

  it('a spent budget: one line naming it and the set-budget that lets it go on, with the backfill id; nothing more on the next looks; one line when it goes on', () => {
    const first = waitNote('d-1', '', spent(3));
    expect(first.line).toBe("d-1 is held, and starts no partition: the retries budget is spent: 3 of 3 failed attempts; raise it with backfill set-budget d-1 --retries <more> to go on");
    // The same hold, its count moved on: said once.
    expect(waitNote('d-1', first.held, spent(4)).line).toBeNull();
    const on = waitNote('d-1', first.held, running);
    expect(on.line).toBe('d-1 goes on: nothing holds it any more');
    expect(waitNote('d-1', on.held, running).line).toBeNull();
  });

  it('a backfill that runs: nothing; one that ended: nothing either (wait tells how it ended)', () => {
    expect(waitNote('d-1', '', running).line).toBeNull();
    expect(waitNote('d-1', 'budget', { ...spent(3), state: 'completed' }).line).toBeNull();
  });

  it('a pause without a policy, a staged backfill, a closed window: each says why and the command', () => {
    expect(waitNote('d-1', '', { state: 'running', paused: true }).line).toBe("d-1 is held, and starts no partition: paused by an operator ('backfill resume d-1' goes on)");
    expect(waitNote('d-1', '', { state: 'staged', paused: false }).line).toContain("waits for publish or discard (compare with 'backfill diff d-1', then 'backfill publish d-1' or 'backfill discard d-1')");
    const window = waitNote('d-1', '', { ...governed([{ kind: 'window', reason: 'outside the run windows; opens Mon 02:00 UTC' }]), state: 'waiting_for_window' });
    expect(window.line).toBe('d-1 is held, and starts no partition: outside the run windows; opens Mon 02:00 UTC');
    // Another hold comes on top: said again, with both.
    const both = governed([{ kind: 'window', reason: 'outside the run windows' }, { kind: 'operator', reason: 'paused by an operator (backfill resume goes on)' }]);
    expect(waitNote('d-1', window.held, both).line).toBe('d-1 is held, and starts no partition: outside the run windows; paused by an operator (backfill resume goes on)');
  });

  /** noteHolds every 5 ms on a backfill whose looks answer `looks` in turn (then the last again); what it said, and how often it looked. */
  const noting = (looks: ReadonlyArray<Looked | Error>) => {
    let n = 0;
    const client = { progress: async () => { const next = looks[Math.min(n++, looks.length - 1)]!; if (next instanceof Error) throw next; return next as Progress; } };
    const said: string[] = [];
    const stop = noteHolds(client, 'd-1', (line) => said.push(line), 5);
    return { said, stop, looked: () => n };
  };

  it('noteHolds looks until stopped and says only the changes; a look that fails says nothing', async () => {
    const looks: Array<Looked | Error> = [running, spent(3), new Error('no worker'), spent(4), running];
    const { said, stop, looked } = noting(looks);
    await vi.waitFor(() => expect(looked()).toBeGreaterThanOrEqual(looks.length + 2));
    stop();
    const after = looked();
    await new Promise((r) => setTimeout(r, 30));
    expect(looked()).toBe(after);
    expect(said).toEqual([expect.stringMatching(/^d-1 is held, and starts no partition: the retries budget is spent: 3 of 3/), 'd-1 goes on: nothing holds it any more']);
  });

  it('noteHolds says once that no worker polls the workflow task queue (wait was silent), and when it answers again', async () => {
    const away = new BackfillError('no_worker', "backfill 'd-1' is running but no worker polls its workflow task queue 'orphanq': start one with backfill worker");
    const looks: Array<Looked | Error> = [away, away, away, running, running];
    const { said, stop, looked } = noting(looks);
    await vi.waitFor(() => expect(looked()).toBeGreaterThanOrEqual(looks.length + 1));
    stop();
    expect(said).toEqual([`d-1 cannot move: ${away.message} (wait goes on waiting)`, 'd-1 goes on: its workflow answers again']);
  });
});
