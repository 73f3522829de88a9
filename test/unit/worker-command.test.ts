/** `backfill worker`'s queues as it passes them to the worker, without a server (startWorker is replaced). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli } from './run-cli.ts';
import type { WorkerProcessOptions } from '../../client/local.ts';

const started: WorkerProcessOptions[] = [];
vi.mock('../../client/local.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../client/local.ts')>()),
  startWorker: async (options: WorkerProcessOptions) => {
    started.push(options);
    return { warehouse: { location: 'memory' }, done: Promise.resolve(), stop: async () => undefined };
  },
}));

afterEach(() => void started.splice(0));

describe('backfill worker', () => {
  it("polls the 'backfill' activity queue whatever the workflow queue, as its help says", async () => {
    const result = await runCli('worker', '--workflow-queue', 'wf-only', '--json');
    expect(result.code).toBe(0);
    expect(started.map((o) => [o.workflowQueue, o.queues.map((q) => q.name)])).toEqual([['wf-only', ['backfill']]]);
    expect(JSON.parse(result.stdout)).toMatchObject({ workflowQueue: 'wf-only', activityQueues: [{ name: 'backfill' }] });
  });

  it('polls the activity queues --task-queue names', async () => {
    await runCli('worker', '--workflow-queue', 'wf-only', '--task-queue', 'warehouse=20', '--json');
    expect(started[0]!.queues).toEqual([{ name: 'warehouse', maxActivitiesPerSecond: 20 }]);
  });
});

describe('backfill worker --policy', () => {
  it('refuses a policy named blank (an empty BACKFILL_POLICY) instead of running without one, naming the fix', async () => {
    const result = await runCli('worker', '--policy', '  ', '--json');
    expect(result.code).not.toBe(0);
    expect(started).toEqual([]);
    expect(result.stdout).toMatch(/--policy \(or BACKFILL_POLICY\) is empty: .*unset BACKFILL_POLICY/);
  });

  it('hands a policy given to the worker as an absolute path', async () => {
    await runCli('worker', '--policy', 'team.policy.yaml', '--json');
    expect(started[0]!.policyFile).toMatch(/^\/.*team\.policy\.yaml$/);
  });
});
