/** `backfill worker`'s queues as it passes them to the worker, without a server (startWorker is replaced). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli } from './run-cli.ts';
import type { WorkerProcessOptions } from '../../client/local.ts';

const started: WorkerProcessOptions[] = [];
/** What the worker's run() fails with (null: it ends), and how often the command stopped it. */
const worker = { failure: null as Error | null, stops: 0 };
vi.mock('../../client/local.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../client/local.ts')>()),
  startWorker: async (options: WorkerProcessOptions) => {
    started.push(options);
    const done = worker.failure ? Promise.reject(worker.failure) : Promise.resolve();
    return { warehouse: { location: 'memory' }, workers: { described: { policy: null, lineage: null } }, done, stop: async () => void (worker.stops += 1) };
  },
}));

afterEach(() => {
  started.splice(0);
  worker.failure = null;
  worker.stops = 0;
});

describe('backfill worker: a fatal failure', () => {
  it('stops the worker (its connection and warehouse close) before the failure ends the command, and says what failed', async () => {
    worker.failure = new Error('native core failed: Poll failed');
    const result = await runCli('worker');
    expect(worker.stops).toBe(1);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('the worker failed: native core failed: Poll failed; stopping it (closing its connection and warehouse)');
  });
});

describe('backfill worker', () => {
  it("polls the 'backfill' activity queue whatever the workflow queue, as its help says", async () => {
    const result = await runCli('worker', '--workflow-queue', 'wf-only', '--json');
    expect(result.code).toBe(0);
    expect(started.map((o) => [o.workflowQueue, o.queues.map((q) => q.name)])).toEqual([['wf-only', ['backfill']]]);
    expect(JSON.parse(result.stdout)).toMatchObject({ workflowQueue: 'wf-only', activityQueues: [{ name: 'backfill' }] });
    // A worker that runs workflows says it enforces no policy.
    expect(result.stderr).toMatch(/^worker polling backfill on .*; no policy$/m);
  });

  it('polls the activity queues --task-queue names', async () => {
    await runCli('worker', '--workflow-queue', 'wf-only', '--task-queue', 'warehouse=20', '--json');
    expect(started[0]!.queues).toEqual([{ name: 'warehouse', maxActivitiesPerSecond: 20 }]);
  });
});

describe('backfill worker: queue options', () => {
  it('refuses a --max-concurrent-activities too large to be a count (it panicked the native core), naming the range', async () => {
    const result = await runCli('worker', '--max-concurrent-activities', '99999999999999999999');
    expect(result.code).not.toBe(0);
    expect(started).toEqual([]);
    expect(result.stderr).toContain("--max-concurrent-activities must be a whole number from 1 to 9007199254740991 (got '99999999999999999999')");
  });

  it.each(['warehouse=5=6', 'warehouse=Infinity', 'warehouse=1e400'])("refuses --task-queue '%s' instead of reading part of it", async (entry) => {
    const result = await runCli('worker', '--task-queue', entry, '--json');
    expect(result.code).not.toBe(0);
    expect(started).toEqual([]);
    expect(result.stdout).toContain(`--task-queue '${entry}'`);
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
