/**
 * The priority and fairness experiment (docs/deploying.md, "Priority and fairness between
 * backfills"): bare workflows put activities with fairness keys or priority keys into the
 * backlog of one task queue capped at `rate` activities per second (the workers'
 * maxTaskQueueActivitiesPerSecond), and a worker counts what each group gets.
 *
 *   node --import tsx scripts/fairness.ts [dev|dev-fair|server|server-fair ...] [--seconds 60]
 *   node --import tsx scripts/fairness.ts --backfills [dev-fair|server-fair ...] [--seconds 60] [--partitions 1]
 *
 * `--backfills` does the same with real backfills (scripts/fairness/backfills.ts): started
 * through BackfillClient with `fairnessWeight` and `priority`, one partition per activity,
 * their shares counted from the warehouse's ledger.
 *
 * `dev` is the dev server of the Temporal CLI (host/temporal-cli.ts), `server` the Temporal
 * server we build (scripts/temporal-server.ts) on PostgreSQL; `-fair` turns on
 * matching.useNewMatcher and matching.enableFairness. `--partitions 1` gives every task queue
 * one partition instead of the server's four: priority holds within a partition only.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import type { Priority } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { startDevServer } from '../host/dev-server.ts';
import { dropDatabase } from './postgres.ts';
import { startTemporalCluster } from './temporal-cluster.ts';
import type { LoadInput } from './fairness/workflows.ts';

import { FAIRNESS_DYNAMIC_CONFIG } from '../client/local.ts';

export { FAIRNESS_DYNAMIC_CONFIG };

export type Server = { kind: string; address: string; stop(): Promise<void> };

/** Every task queue's partitions, read and write (the server's default is four). */
const partitionsConfig = (partitions: number): Record<string, string> => ({
  'matching.numTaskqueueReadPartitions': String(partitions),
  'matching.numTaskqueueWritePartitions': String(partitions),
});

export async function startServer(kind: 'dev' | 'server', fair: boolean, dir: string, options: { partitions?: number } = {}): Promise<Server> {
  const dynamicConfig = { ...(fair ? FAIRNESS_DYNAMIC_CONFIG : {}), ...(options.partitions ? partitionsConfig(options.partitions) : {}) };
  if (kind === 'dev') {
    const dev = await startDevServer({
      dbFile: join(dir, 'temporal.db'),
      uiPort: null,
      logFile: join(dir, 'temporal.log'),
      searchAttributes: false,
      dynamicConfig,
    });
    return { kind: fair ? 'dev-fair' : 'dev', address: dev.address, stop: () => dev.stop() };
  }
  const dynamicConfigFile = join(dir, 'dynamicconfig.yaml');
  const lines = ['history.timerProcessorMaxTimeShift:', '  - value: 100ms'];
  for (const [key, value] of Object.entries(dynamicConfig)) lines.push(`${key}:`, `  - value: ${value}`);
  writeFileSync(dynamicConfigFile, `${lines.join('\n')}\n`);
  const prefix = `fairness_${randomUUID().slice(0, 8)}`;
  const cluster = await startTemporalCluster({ databasePrefix: prefix, dynamicConfigFile, logFile: join(dir, 'temporal-server.log') });
  return {
    kind: fair ? 'server-fair' : 'server',
    address: cluster.address,
    stop: async () => {
      await cluster.stop();
      await dropDatabase(cluster.databases.temporal);
      await dropDatabase(cluster.databases.visibility);
    },
  };
}

export function bundleLoadWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  const silent = () => undefined;
  return bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./fairness/workflows.ts', import.meta.url)),
    logger: { log: silent, trace: silent, debug: silent, info: silent, warn: silent, error: (m: string) => console.error(m) },
  });
}

type Group = LoadInput & { startAfterMs?: number };

export type GroupResult = { label: string; started: number; firstAt: number | null; lastAt: number | null; inWindow: number; share: number };

export type Measurement = { queue: string; rate: number; windowMs: number; total: number; groups: GroupResult[]; starts: Array<{ label: string; at: number }> };

/**
 * Starts one workflow per group (in order, each once the one before has all its activities
 * scheduled, and `startAfterMs` later) on a fresh
 * task queue whose worker caps activities at `rate` per second, and counts the activities each
 * group started within [window start, + windowMs). The window starts `warmupMs` after the last
 * group started, when every group's activities are in the backlog.
 */
export async function measure(options: {
  address: string;
  bundle: WorkflowBundleWithSourceMap;
  groups: Group[];
  rate: number;
  windowMs: number;
  warmupMs?: number;
  /** Stop when every group's workflow is done (true) or this group's; else after the window. */
  untilDone?: boolean | string;
}): Promise<Measurement & { startedAt: Record<string, number> }> {
  const queue = `fairness-${randomUUID().slice(0, 8)}`;
  const starts: Array<{ label: string; at: number }> = [];
  const connection = await NativeConnection.connect({ address: options.address });
  const worker = await Worker.create({
    connection,
    taskQueue: queue,
    workflowBundle: options.bundle,
    activities: { tick: async (label: string) => void starts.push({ label, at: Date.now() }) },
    maxTaskQueueActivitiesPerSecond: options.rate,
    maxConcurrentActivityTaskExecutions: 100,
  });
  const running = worker.run();
  const clientConnection = await Connection.connect({ address: options.address });
  const client = new Client({ connection: clientConnection });
  const startedAt: Record<string, number> = {};
  try {
    const handles = [];
    for (const group of options.groups) {
      if (group.startAfterMs) await new Promise((r) => setTimeout(r, group.startAfterMs));
      startedAt[group.label] = Date.now();
      const { startAfterMs: _ignored, ...rest } = group;
      const input: LoadInput = { ...rest, childId: `${queue}-${group.label}-child` };
      const handle = await client.workflow.start('loadWorkflow', {
        taskQueue: queue,
        workflowId: `${queue}-${group.label}`,
        args: [input],
        // Inherited: set on the workflow only, it reaches its child and the child's activities.
        ...(group.inherit && group.priority ? { priority: group.priority } : {}),
      });
      handles.push(handle);
      // Its activities are in the backlog once their scheduled events are in the (child's) history.
      const scheduler = group.inherit ? client.workflow.getHandle(input.childId!) : handle;
      for (;;) {
        const historyLength = await scheduler.describe().then((d) => d.historyLength, () => 0);
        if (historyLength >= group.count + 4) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const windowStart = Date.now() + (options.warmupMs ?? 3000);
    const windowEnd = windowStart + options.windowMs;
    if (typeof options.untilDone === 'string') await handles[options.groups.findIndex((g) => g.label === options.untilDone)]!.result();
    else if (options.untilDone) await Promise.all(handles.map((h) => h.result()));
    else await new Promise((r) => setTimeout(r, windowEnd - Date.now()));
    const inWindow = starts.filter((s) => s.at >= windowStart && s.at < windowEnd);
    const groups = options.groups.map((g): GroupResult => {
      const mine = starts.filter((s) => s.label === g.label);
      const counted = inWindow.filter((s) => s.label === g.label).length;
      return {
        label: g.label,
        started: mine.length,
        firstAt: mine.length > 0 ? mine[0]!.at - startedAt[g.label]! : null,
        lastAt: mine.length > 0 ? mine[mine.length - 1]!.at - startedAt[g.label]! : null,
        inWindow: counted,
        share: inWindow.length > 0 ? counted / inWindow.length : 0,
      };
    });
    await Promise.all(handles.map((h) => h.terminate('experiment over').catch(() => undefined)));
    return { queue, rate: options.rate, windowMs: options.windowMs, total: inWindow.length, groups, starts: [...starts], startedAt };
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
    await clientConnection.close();
  }
}

/** Two groups with fairness keys of these weights; `inherit`: set on the workflows' starts only (activities inherit it through a child). */
export const fairnessGroups = (count: number, weights: [number, number] = [1, 3], inherit = false): Group[] => [
  { label: `weight-${weights[0]}`, count, inherit, priority: { fairnessKey: 'backfill-a', fairnessWeight: weights[0] } },
  { label: `weight-${weights[1]}`, count, inherit, priority: { fairnessKey: 'backfill-b', fairnessWeight: weights[1] } },
];

/** A priority-1 group's time to finish `count` activities, started after a priority-5 backlog, against its time alone. */
export async function measurePriority(address: string, bundle: WorkflowBundleWithSourceMap, rate: number, count: number, backlog: number) {
  const high: Priority = { priorityKey: 1 };
  const solo = await measure({ address, bundle, rate, windowMs: 0, warmupMs: 0, untilDone: true, groups: [{ label: 'priority-1', count, priority: high }] });
  const mixed = await measure({
    address,
    bundle,
    rate,
    warmupMs: 0,
    groups: [
      { label: 'priority-5', count: backlog, priority: { priorityKey: 5 } },
      { label: 'priority-1', count, priority: high, startAfterMs: 2000 },
    ],
    windowMs: 0,
    untilDone: 'priority-1',
  });
  const soloMs = solo.groups[0]!.lastAt!;
  const afterMs = mixed.groups.find((g) => g.label === 'priority-1')!.lastAt;
  // Priority-5 activities that started while the priority-1 ones were waiting: few when priority is honoured, the backlog when not.
  const highStart = mixed.startedAt['priority-1']!;
  const highEnd = highStart + (afterMs ?? 0);
  const overtaken = mixed.starts.filter((s) => s.label === 'priority-5' && s.at > highStart && s.at < highEnd).length;
  return { soloMs, afterMs, ratio: afterMs === null ? null : afterMs / soloMs, lowStartedMeanwhile: overtaken, mixed: mixed.groups };
}

/** The experiment with real backfills on each server: the shares of weights 1 and 3, and priority 1 behind priority 5. */
async function mainBackfills(kinds: string[], seconds: number, partitions: number | undefined): Promise<void> {
  const { measureBackfillPriority, measureBackfillShares, priorityOfRuns, startFleet } = await import('./fairness/backfills.ts');
  const rate = 20;
  for (const kind of kinds.length > 0 ? kinds : ['dev-fair']) {
    const dir = mkdtempSync(join(tmpdir(), 'fairness-backfills-'));
    const server = await startServer(kind.startsWith('server') ? 'server' : 'dev', kind.endsWith('-fair'), dir, partitions ? { partitions } : {});
    const fleet = await startFleet({ address: server.address, dir, rate });
    try {
      // More partitions than the window serves each, so that both stay queued throughout.
      const shares = await measureBackfillShares(fleet, { rate, windowMs: seconds * 1000, partitions: Math.ceil(rate * (seconds + 20)) });
      const runs = (await Promise.all(shares.backfills.map((b, i) => priorityOfRuns(fleet.client, b.id, [`load_${i === 0 ? 'a' : 'b'}`])))).flat();
      console.log(JSON.stringify({ server: server.kind, experiment: 'backfills with fairness weights 1 and 3', rate, seconds, total: shares.total, backfills: shares.backfills, runs: runs.length, runPriorities: [...new Set(runs.map((r) => JSON.stringify(r.priority)))] }));
      const priority = await measureBackfillPriority(fleet, { partitions: 300, backlog: 1500 });
      console.log(JSON.stringify({ server: server.kind, queuePartitions: partitions ?? 'default', experiment: 'a priority-1 backfill behind a priority-5 one', rate, ...priority }));
    } finally {
      await fleet.stop();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const seconds = args.includes('--seconds') ? Number(args[args.indexOf('--seconds') + 1]) : 60;
  const kinds = args.filter((a) => /^(dev|server)(-fair)?$/.test(a));
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const partitions = args.includes('--partitions') ? Number(args[args.indexOf('--partitions') + 1]) : undefined;
  if (args.includes('--backfills')) return mainBackfills(kinds, seconds, partitions);
  const bundle = await bundleLoadWorkflows();
  const rate = 20;
  for (const kind of kinds.length > 0 ? kinds : ['dev', 'dev-fair']) {
    const dir = mkdtempSync(join(tmpdir(), 'fairness-'));
    const server = await startServer(kind.startsWith('server') ? 'server' : 'dev', kind.endsWith('-fair'), dir, partitions ? { partitions } : {});
    try {
      // Each group has more than the window can serve, so both stay backlogged throughout.
      const count = Math.min(1900, Math.ceil(rate * (seconds + 10)));
      const fairness = await measure({ address: server.address, bundle, rate, windowMs: seconds * 1000, groups: fairnessGroups(count) });
      console.log(JSON.stringify({ server: server.kind, experiment: 'fairness weights 1 and 3', rate, seconds, total: fairness.total, groups: fairness.groups }));
      if (args.includes('--inherit')) {
        const inherited = await measure({ address: server.address, bundle, rate, windowMs: seconds * 1000, groups: fairnessGroups(count, [1, 3], true) });
        console.log(JSON.stringify({ server: server.kind, experiment: 'fairness weights 1 and 3, set on the workflow start only (child workflow, activities inherit)', rate, seconds, total: inherited.total, groups: inherited.groups }));
      }
      const priority = await measurePriority(server.address, bundle, rate, 100, 600);
      console.log(JSON.stringify({ server: server.kind, experiment: 'priority 1 after a priority-5 backlog', rate, ...priority }));
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
