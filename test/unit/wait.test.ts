/** `wait`: what it says of a backfill that has ended, whatever happens to the calls it makes. */
import { describe, expect, it } from 'vitest';
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
    settings: { value: { namespace: 'default', address: 'localhost:7233', profile: null, tls: false, apiKey: false } },
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
