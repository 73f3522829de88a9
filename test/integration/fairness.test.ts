/**
 * Temporal's task-queue fairness and priority, as backfill will use them between backfills
 * (docs/deploying.md, "Priority and fairness between backfills"): activities with fairness
 * keys of weights 1 and 3, and priority keys 1 and 5, on one task queue capped at 20
 * activities per second by its worker (maxTaskQueueActivitiesPerSecond). On a dev server
 * started with matching.useNewMatcher and matching.enableFairness, each key gets its weight's
 * share and priority 1 goes first; on the suite's dev server (no such config) neither holds.
 * Then the same with real backfills, started through BackfillClient with a fairness weight and
 * a priority, one partition per activity, their shares read from the warehouse's ledger; and
 * priority again on a server whose task queues have one partition, where it is strict.
 * scripts/fairness.ts runs the same over 60 s (`--backfills` for real backfills), on the dev
 * server and the Temporal server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { installRuntime } from '../../client/local.ts';
import { bundleLoadWorkflows, fairnessGroups, measure, measurePriority, startServer, type Server } from '../../scripts/fairness.ts';
import { measureBackfillPriority, measureBackfillShares, priorityOfRuns, startFleet, type Fleet } from '../../scripts/fairness/backfills.ts';
import { address } from './helpers.ts';

const RATE = 20;
let bundle: WorkflowBundleWithSourceMap;
let fair: Server;
let dir: string;

beforeAll(async () => {
  process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
  installRuntime();
  dir = mkdtempSync(join(tmpdir(), 'backfill-fairness-'));
  [bundle, fair] = await Promise.all([bundleLoadWorkflows(), startServer('dev', true, dir)]);
});

afterAll(async () => {
  await fair?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const share = (result: Awaited<ReturnType<typeof measure>>, label: string) => result.groups.find((g) => g.label === label)!.share;

describe('fairness keys and priority on a capped task queue', () => {
  it('with fairness on, weights 1 and 3 get 25 % and 75 % (±10 points) of the queue', async () => {
    const result = await measure({ address: fair.address, bundle, rate: RATE, windowMs: 30_000, groups: fairnessGroups(800) });
    // The cap holds: about 20/s over the window.
    expect(result.total).toBeGreaterThan(RATE * 30 * 0.6);
    expect(result.total).toBeLessThanOrEqual(RATE * 30 * 1.1);
    expect(share(result, 'weight-1')).toBeGreaterThan(0.15);
    expect(share(result, 'weight-1')).toBeLessThan(0.35);
    expect(share(result, 'weight-3')).toBeGreaterThan(0.65);
    expect(share(result, 'weight-3')).toBeLessThan(0.85);
  });

  it('with the new matcher, priority-1 activities go ahead of a priority-5 backlog', async () => {
    const result = await measurePriority(fair.address, bundle, RATE, 100, 600);
    // Only what was dispatched while the priority-1 workflow scheduled its activities went first.
    expect(result.lowStartedMeanwhile).toBeLessThan(150);
    expect(result.afterMs).not.toBeNull();
  });

  it('without that config (the suite dev server), the keys are ignored: the queue stays first in, first out', async () => {
    const result = await measure({ address: address(), bundle, rate: RATE, windowMs: 15_000, groups: fairnessGroups(800) });
    expect(share(result, 'weight-3')).toBeLessThan(0.5);
    const priority = await measurePriority(address(), bundle, RATE, 50, 400);
    expect(priority.lowStartedMeanwhile).toBeGreaterThan(150);
  });
});

describe('between real backfills, on a task queue capped at 20/s with fairness on', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet({ address: fair.address, dir, rate: RATE, workflowBundlePath: inject('workflowBundlePath') });
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('backfills started with fairness weights 1 and 3 get 25 % and 75 % (±10 points) of the queue, and every run carries its key and weight', async () => {
    const result = await measureBackfillShares(fleet, { rate: RATE, windowMs: 20_000, partitions: RATE * 40 });
    expect(result.total).toBeGreaterThan(RATE * 20 * 0.6);
    expect(result.total).toBeLessThanOrEqual(RATE * 20 * 1.1);
    const [light, heavy] = result.backfills;
    expect(light!.share).toBeGreaterThan(0.15);
    expect(light!.share).toBeLessThan(0.35);
    expect(heavy!.share).toBeGreaterThan(0.65);
    expect(heavy!.share).toBeLessThan(0.85);
    // The weight reaches the activities through the node workflows, which inherit the parent's.
    for (const [i, b] of result.backfills.entries()) {
      const runs = await priorityOfRuns(fleet.client, b.id, [i === 0 ? 'load_a' : 'load_b']);
      expect(runs.length).toBeGreaterThanOrEqual(2);
      for (const run of runs) expect(run.priority).toMatchObject({ fairnessKey: b.id, fairnessWeight: b.weight });
    }
  }, 180_000);

  it("a priority-1 backfill started behind a priority-5 one goes first, on a task queue of the server's four partitions", async () => {
    const result = await measureBackfillPriority(fleet, { partitions: 300, backlog: 1500 });
    // Priority holds within each partition, and its partitions are spread over four unevenly: one
    // that runs out of them first starts priority-5 partitions while the others still have its
    // own (21 to 58 of them in four runs on 2 cores, every one in the last 30 % of its span;
    // with one partition, none: below). So they come late, and are few.
    expect(result.lowStartedInItsFirstHalf, JSON.stringify(result)).toBeLessThan(0.1 * result.partitions);
    const among = result.lowStartedAmongIts;
    expect(among, JSON.stringify(result)).toBeLessThan(0.25 * (among + result.partitions));
    // From start to end it also pays for starting its workflows on a worker busy with the other
    // backfill, which on a loaded 2-core machine took 1.7 to 11.9 s (docs/deploying.md): the goal's
    // 1.2× is not asserted on the whole; 2× still tells priority from first in, first out, where
    // its first partition would wait for the 1,500 queued before it (75 s at 20/s).
    expect(result.ratio, JSON.stringify(result)).toBeLessThan(2);
  }, 180_000);
});

describe('between real backfills, on a task queue of one partition capped at 20/s with priority on', () => {
  let server: Server;
  let fleet: Fleet;
  beforeAll(async () => {
    const own = mkdtempSync(join(dir, 'one-partition-'));
    server = await startServer('dev', true, own, { partitions: 1 });
    fleet = await startFleet({ address: server.address, dir: own, rate: RATE, workflowBundlePath: inject('workflowBundlePath') });
  });
  afterAll(async () => {
    await fleet?.stop();
    await server?.stop();
  });

  it('a priority-1 backfill started behind a priority-5 one: its partitions go through the queue within 1.2× of their time alone', async () => {
    const result = await measureBackfillPriority(fleet, { partitions: 300, backlog: 1500 });
    // The queue's part (its first partition's start to its last one's end): what priority decides.
    expect(result.queue.ratio, JSON.stringify(result)).toBeLessThan(1.2);
    // Strict: no priority-5 partition starts among its own, but those dispatched while its
    // workflow's 300 activities were being added to the queue (none in four runs).
    expect(result.lowStartedAmongIts, JSON.stringify(result)).toBeLessThan(0.05 * result.partitions);
    expect(result.ratio, JSON.stringify(result)).toBeLessThan(2);
  }, 180_000);
});
