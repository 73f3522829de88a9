/** `wait`: what it says of a backfill that has ended, whatever happens to the calls it makes. */
import { describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { BackfillClient } from '../../client/backfill-client.ts';

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
      return { status: { name: status }, runId: 'r1', taskQueue: 'q', startTime: new Date() };
    },
  };
  const client = Object.create(BackfillClient.prototype) as BackfillClient;
  Object.defineProperties(client, {
    client: { value: { workflow: { getHandle: () => handle } } },
    settings: { value: { namespace: 'default', address: 'localhost:7233', profile: null, configFile: null, tls: false, apiKey: false, options: { address: 'localhost:7233' } } },
  });
  return client;
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
