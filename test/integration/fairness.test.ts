/**
 * Temporal's task-queue fairness and priority, as backfill will use them between backfills
 * (docs/deploying.md, "Priority and fairness between backfills"): activities with fairness
 * keys of weights 1 and 3, and priority keys 1 and 5, on one task queue capped at 20
 * activities per second by its worker (maxTaskQueueActivitiesPerSecond). On a dev server
 * started with matching.useNewMatcher and matching.enableFairness, each key gets its weight's
 * share and priority 1 goes first; on the suite's dev server (no such config) neither holds.
 * scripts/fairness.ts runs the same over 60 s, on the dev server and the Temporal server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { installRuntime } from '../../client/local.ts';
import { bundleLoadWorkflows, fairnessGroups, measure, measurePriority, startServer, type Server } from '../../scripts/fairness.ts';
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
