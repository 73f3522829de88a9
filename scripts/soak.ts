/**
 * The chaos soak: a SQL backfill runs while a driver kills worker processes with SIGKILL and
 * restarts the Temporal server. Afterwards every partition must be published exactly once, and
 * the data must equal an undisturbed run of the same backfill.
 *
 *   npm run soak                          # ten minutes of chaos over 20,000 partitions
 *   npm run soak -- --minutes 2 --hours 600
 *   npm run soak -- --topology postgres   # the production shape, thirty minutes (below)
 *
 * The warehouse is PostgreSQL ($BACKFILL_TEST_POSTGRES_URL, see scripts/postgres.ts) with three
 * worker processes. Topologies (scripts/soak-topology.ts):
 *   dev        the dev server on a SQLite file, restarted gracefully in place; random chaos every
 *              3 to 12 s until the backfill completes or the time is up.
 *   postgres   the real Temporal server on PostgreSQL (deploy/temporal/production.yaml) on databases
 *              the soak creates and drops. The backfill is paced (--rate partitions per second of
 *              its first node) to last the whole time, and a seeded schedule spreads a fixed number
 *              of worker kills (--kills, default 0.8 a minute) and server restarts (--restarts,
 *              default one per 5 minutes; a third of them SIGTERM, the rest SIGKILL) over it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openWarehouse, type Warehouse } from '../activities/warehouse/index.ts';
import type { LedgerRow } from '../activities/warehouse/types.ts';
import { BackfillClient, type Outcome } from '../client/backfill-client.ts';
import { fingerprint } from '../client/demo.ts';
import { expandPlan } from '../core/plan.ts';
import { resolveSpec, type ResolvedSpec } from '../core/spec.ts';
import { bundleWorkflows } from '../workers/worker.ts';
import { freePort } from '../host/dev-server.ts';
import { createDatabase, dropDatabase, testPostgresUrl } from './postgres.ts';
import { chaosSchedule, randomChaos, scheduledChaos, type ChaosAction, type ChaosPlan } from './soak-chaos.ts';
import { describeRunning, historyCensus, type HistoryCensus } from './soak-census.ts';
import { startSoakServer, TOPOLOGIES, type ServerRestart, type SoakServer, type Topology } from './soak-topology.ts';
import { WorkerProcess } from './worker-process.ts';

export type SoakOptions = {
  /** Where the Temporal server runs (default `dev`). */
  topology?: Topology;
  /** How long the chaos lasts (it stops earlier when the backfill completes). */
  chaosMs: number;
  /** Hourly partitions per node (four hourly nodes and one daily). */
  hours: number;
  /** Partitions per second the first node may start (the rest follow it): paces the backfill. Default: unpaced. */
  rate?: number | null;
  workers?: number;
  seed?: number;
  /** A fixed number of kills and restarts spread over `chaosMs` (scripts/soak-chaos.ts); without it, random chaos every 3 to 12 s. */
  schedule?: { workerKills: number; serverRestarts: number; gracefulRestarts?: number };
  /** Each worker kill waits (up to 10 s) until its worker runs a partition, so that the kill interrupts one (default false). */
  killBusyWorkers?: boolean;
  /** The soak fails, naming what is stuck, when no partition completes for this long (default 10 minutes). */
  stallMs?: number;
  /** Stops the soak (and cleans up) when aborted. */
  signal?: AbortSignal;
  log?: (line: string) => void;
};

/** A server restart as the backfill saw it. Durations in milliseconds. */
export type RestartFigures = {
  signal: ServerRestart['signal'];
  /** How the old process ended (a SIGTERM that outlasts 10 s ends in SIGKILL). */
  exit: string;
  stopMs: number;
  downMs: number;
  /** From the new process's start until it served the namespace. */
  readyMs: number;
  /** From serving again until the first partition started on it (null: none started afterwards). */
  resumedMs: number | null;
  /** From the stop until that first partition: the pause the backfill saw. */
  outageMs: number | null;
  failedStarts: string[];
};

export type SoakResult = {
  topology: Topology;
  partitions: number;
  published: number;
  lost: number;
  publishedTwice: number;
  /** Partitions an attempt reached after another had published them (work redone, not written twice). */
  reachedTwice: number;
  kills: number;
  /** Kills of a worker that was running partitions at that moment (its Prometheus metrics said so). */
  killsMidPartition: number;
  serverRestarts: number;
  /** Worker processes that exited without being killed (a worker gives up when the server stays away), and were started again. */
  workerExits: number;
  /** Worker starts that failed (timed out or exited before polling); the worker was started again. */
  workerStartFailures: number;
  /** The first node's pace, partitions per second (null: unpaced). */
  rate: number | null;
  fingerprint: string;
  undisturbedFingerprint: string;
  /** The disturbed backfill, start to completion. */
  chaosSeconds: number;
  undisturbedSeconds: number;
  /** Everything, from the first worker's start. */
  seconds: number;
  restarts: RestartFigures[];
  /** The disturbed backfill's workflow histories. */
  census: HistoryCensus;
};

/** Four hourly SQL nodes (generate, clean, aggregate, a rolling window) and a daily rollup; `rate` paces the first. */
export function soakSpec(hours: number, rate: number | null = null): ResolvedSpec {
  const end = new Date(Date.UTC(2024, 0, 1) + hours * 3_600_000).toISOString().slice(0, 13);
  return resolveSpec({
    name: 'soak',
    partitions: { grain: 'hour', start: '2024-01-01', end },
    defaults: { concurrency: 8, heartbeatTimeout: '3s', retry: { maxAttempts: 10, initialInterval: '200ms', maximumInterval: '2s' } },
    nodes: [
      {
        id: 'events',
        ...(rate === null ? {} : { rate }),
        sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 20) SELECT :partition AS hour, n AS id, (n * 7) % 13 AS v FROM r',
      },
      { id: 'clean', dependsOn: ['events'], sql: 'SELECT hour, id, v * 2 AS v2 FROM events WHERE v > 2' },
      { id: 'hourly', dependsOn: ['clean'], sql: 'SELECT :partition AS hour, COUNT(*) AS n, SUM(v2) AS total FROM clean' },
      { id: 'rolling', dependsOn: [{ node: 'hourly', mapping: { lag: { from: -5, to: 0 } } }], sql: 'SELECT :partition AS hour, SUM(total) AS total6 FROM hourly' },
      { id: 'daily', partitions: { grain: 'day' }, dependsOn: ['hourly'], sql: 'SELECT :partition AS day, SUM(n) AS n, SUM(total) AS total FROM hourly' },
    ],
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PROGRESS_EVERY_MS = 30_000;
const WORKER_START_MS = 120_000;
const BUSY_WAIT_MS = 10_000;

/** Partition activities the worker runs right now, from its Prometheus metrics (undefined: it did not answer). */
async function activitiesRunning(worker: WorkerProcess): Promise<number | undefined> {
  if (!worker.metricsUrl || !worker.running) return undefined;
  try {
    const text = await (await fetch(worker.metricsUrl, { signal: AbortSignal.timeout(2000) })).text();
    const match = /^temporal_worker_task_slots_used\{[^}]*worker_type="ActivityWorker"[^}]*\} (\d+)/m.exec(text);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

function published(rows: readonly LedgerRow[]): LedgerRow[] {
  return rows.filter((r) => r.status === 'published');
}

/** The first partition started at or after `since` (epoch ms), or null. */
function firstStartAfter(startTimes: readonly number[], since: number): number | null {
  let first: number | null = null;
  for (const t of startTimes) if (t >= since && (first === null || t < first)) first = t;
  return first;
}

/** Runs the chaos against one topology, keeps the workers running, and watches progress. */
class ChaosDriver {
  kills = 0;
  killsMidPartition = 0;
  serverRestarts = 0;
  workerExits = 0;
  workerStartFailures = 0;
  /** Workers whose last start failed (killed then): not run, but not exited on their own either. */
  private readonly notStarted = new Set<WorkerProcess>();
  readonly restarts: Array<ServerRestart & { downMs: number }> = [];

  constructor(
    private readonly server: SoakServer,
    private readonly workers: WorkerProcess[],
    private readonly client: BackfillClient,
    private readonly log: (line: string) => void,
    private readonly stallMs: number,
    private readonly signal: AbortSignal | undefined,
    private readonly killBusyWorkers: boolean,
  ) {}

  /** Drives `plan` for up to `chaosMs` while the backfill runs, then waits for its end. */
  async run(backfillId: string, plan: ChaosPlan | undefined, chaosMs: number): Promise<Outcome> {
    let outcome: Outcome | undefined;
    let failure: unknown;
    const ended = this.client.wait(backfillId).then(
      (o) => (outcome = o),
      (error: unknown) => (failure = error ?? new Error('waiting failed')),
    );
    const began = Date.now();
    let next = plan?.next(0);
    let lastDone = -1;
    let movedAt = Date.now();
    let lookedAt = 0;
    for (;;) {
      if (outcome) return outcome;
      if (failure) throw failure;
      if (this.signal?.aborted) throw new Error('the soak was interrupted');
      const elapsed = Date.now() - began;
      if (next && next.at >= chaosMs) next = undefined;
      if (next && elapsed >= next.at) {
        await this.act(next.action);
        next = plan?.next(Date.now() - began);
        continue;
      }
      await this.supervise();
      if (Date.now() - lookedAt >= PROGRESS_EVERY_MS) {
        lookedAt = Date.now();
        const done = await this.client.progress(backfillId).then(
          (p) => {
            this.log(`soak: ${backfillId} ${p.done}/${p.total} done, ${p.running} running, ${p.failed} failed (${Math.round((Date.now() - began) / 1000)} s)`);
            return p.done;
          },
          (error: unknown) => {
            this.log(`soak: no progress answer (${(error as Error).message})`);
            return lastDone;
          },
        );
        if (done > lastDone) {
          lastDone = done;
          movedAt = Date.now();
        } else if (Date.now() - movedAt > this.stallMs) {
          const running = await describeRunning(this.client, backfillId).catch((error: unknown) => [`(could not describe: ${(error as Error).message})`]);
          throw new Error(`backfill ${backfillId} made no progress for ${Math.round(this.stallMs / 1000)} s (${lastDone} done). Its running workflows:\n${running.join('\n')}`);
        }
      }
      const wake = next ? Math.min(1000, Math.max(0, next.at - (Date.now() - began))) : 1000;
      await Promise.race([ended, pause(wake)]);
    }
  }

  private async act(action: ChaosAction): Promise<void> {
    if (action.kind === 'kill-worker') {
      const worker = this.workers[action.worker % this.workers.length]!;
      const running = await this.busyMoment(worker);
      await worker.kill();
      this.kills++;
      if (running) this.killsMidPartition++;
      await pause(action.downMs);
      await this.startWorker(worker);
      this.log(`soak: killed worker ${action.worker} (kill ${this.kills}${running === undefined ? '' : `, running ${running} partition activities`})`);
      return;
    }
    const restart = await this.server.restart(action.signal, action.downMs);
    this.restarts.push({ ...restart, downMs: action.downMs });
    this.serverRestarts++;
    this.log(
      `soak: restarted the Temporal server with ${action.signal} (restart ${this.serverRestarts}): exited ${restart.exit} in ${restart.stopMs} ms, ` +
        `down ${action.downMs} ms, serving again ${restart.readyMs} ms after its start${restart.failedStarts.length ? ` (failed starts: ${restart.failedStarts.join('; ')})` : ''}`,
    );
    await this.supervise();
  }

  /** With killBusyWorkers, waits (up to 10 s) until the worker runs a partition; returns how many it runs. */
  private async busyMoment(worker: WorkerProcess): Promise<number | undefined> {
    const until = Date.now() + BUSY_WAIT_MS;
    let running = await activitiesRunning(worker);
    while (this.killBusyWorkers && running === 0 && Date.now() < until) {
      await pause(50);
      running = await activitiesRunning(worker);
    }
    return running;
  }

  /** A worker gives up when the server stays away too long; like a supervisor, start it again. */
  private async supervise(): Promise<void> {
    for (const [i, worker] of this.workers.entries()) {
      if (worker.running) continue;
      if (!this.notStarted.has(worker)) {
        this.workerExits++;
        this.log(`soak: worker ${i} had exited on its own; starting it again. Its last words: ${worker.log.trim().split('\n').slice(-3).join(' | ')}`);
      }
      await this.startWorker(worker);
    }
  }

  /** A start that fails (the machine is slow, the server is restarting) is left to the next supervise(). */
  private async startWorker(worker: WorkerProcess): Promise<void> {
    try {
      await worker.start(WORKER_START_MS);
      this.notStarted.delete(worker);
    } catch (error) {
      this.workerStartFailures++;
      this.notStarted.add(worker);
      this.log(`soak: a worker did not start: ${(error as Error).message.split('\n')[0]}`);
      await worker.kill();
    }
  }
}

export async function soak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const topology = options.topology ?? 'dev';
  const seed = options.seed ?? 1;
  const workerCount = options.workers ?? 3;
  const rate = options.rate ?? null;
  const dir = mkdtempSync(join(tmpdir(), 'backfill-soak-'));
  const prefix = `backfill_soak_${process.pid}_${Date.now().toString(36)}`;
  const database = `${prefix}_warehouse`;
  let server: SoakServer | undefined;
  let workers: WorkerProcess[] = [];
  let warehouse: Warehouse | undefined;
  let client: BackfillClient | undefined;
  const began = Date.now();
  let failed = true;
  try {
    await createDatabase(database);
    const url = new URL(testPostgresUrl());
    url.pathname = `/${database}`;
    // One workflow bundle for every worker start, as installed workers use the package's.
    const bundlePath = join(dir, 'workflow-bundle.js');
    writeFileSync(bundlePath, (await bundleWorkflows()).code);
    server = await startSoakServer(topology, { dir, databasePrefix: prefix });
    log(`soak: ${topology} topology, Temporal server at ${server.address} (log ${server.logFile})`);
    const address = server.address;
    const metricsPorts = new Set<number>();
    while (metricsPorts.size < workerCount) metricsPorts.add(await freePort());
    const ports = [...metricsPorts];
    workers = Array.from(
      { length: workerCount },
      (_, i) => new WorkerProcess({ address, warehouse: url.toString(), metricsPort: ports[i]!, env: { BACKFILL_WORKFLOW_BUNDLE: bundlePath } }),
    );
    warehouse = openWarehouse(url.toString(), { inline: true });
    await Promise.all(workers.map((w) => w.start(WORKER_START_MS)));
    client = await BackfillClient.connect({ address });
    const driver = new ChaosDriver(server, workers, client, log, options.stallMs ?? 600_000, options.signal, options.killBusyWorkers ?? false);

    const spec = soakSpec(options.hours, rate);
    const total = expandPlan(spec).totalPartitions;
    const plan = options.schedule
      ? scheduledChaos(chaosSchedule({ durationMs: options.chaosMs, workers: workerCount, seed, ...options.schedule }))
      : randomChaos(seed, workerCount);
    const chaosBegan = Date.now();
    const { backfillId } = await client.start(spec, { id: 'soak' });
    log(`soak: ${total} partitions${rate === null ? '' : ` paced at ${rate}/s`}, chaos for up to ${Math.round(options.chaosMs / 1000)} s (seed ${seed})`);
    const final = await driver.run(backfillId, plan, options.chaosMs);
    const chaosSeconds = Math.round((Date.now() - chaosBegan) / 1000);
    if (final.state !== 'completed') throw new Error(`the soak backfill ended ${final.state}`);
    const ledger = await warehouse.ledger({ backfillId });
    const rows = published(ledger);
    const perPartition = new Map<string, number>();
    for (const r of rows) perPartition.set(`${r.node}/${r.partition}`, (perPartition.get(`${r.node}/${r.partition}`) ?? 0) + 1);
    const startTimes = ledger.map((r) => Date.parse(r.startedAt));
    const restarts = driver.restarts.map((r): RestartFigures => {
      const first = firstStartAfter(startTimes, r.upAt);
      return {
        signal: r.signal,
        exit: r.exit,
        stopMs: r.stopMs,
        downMs: r.downMs,
        readyMs: r.readyMs,
        resumedMs: first === null ? null : first - r.upAt,
        outageMs: first === null ? null : first - r.downAt,
        failedStarts: r.failedStarts,
      };
    });
    log(`soak: ${backfillId} completed in ${chaosSeconds} s; reading its workflow histories`);
    const census = await historyCensus(client, backfillId);

    // The same partitions and SQL again, unpaced and undisturbed: the data must be the same.
    log('soak: the same backfill again, undisturbed');
    const undisturbedBegan = Date.now();
    const clean = await client.start(soakSpec(options.hours), { id: 'soak-undisturbed' });
    const undisturbed = await driver.run(clean.backfillId, undefined, 0);
    if (undisturbed.state !== 'completed') throw new Error(`the undisturbed run ended ${undisturbed.state}`);
    const cleanRows = published(await warehouse.ledger({ backfillId: clean.backfillId }));
    failed = false;
    return {
      topology,
      partitions: total,
      published: rows.length,
      lost: total - perPartition.size,
      publishedTwice: [...perPartition.values()].filter((n) => n > 1).length,
      reachedTwice: rows.filter((r) => r.executions > 1).length,
      kills: driver.kills,
      killsMidPartition: driver.killsMidPartition,
      serverRestarts: driver.serverRestarts,
      workerExits: driver.workerExits,
      workerStartFailures: driver.workerStartFailures,
      rate,
      fingerprint: fingerprint(rows),
      undisturbedFingerprint: fingerprint(cleanRows),
      chaosSeconds,
      undisturbedSeconds: Math.round((Date.now() - undisturbedBegan) / 1000),
      seconds: Math.round((Date.now() - began) / 1000),
      restarts,
      census,
    };
  } finally {
    await client?.close();
    await Promise.all(workers.map((w) => w.stop()));
    await warehouse?.close();
    // BACKFILL_KEEP_TEST_FILES keeps the databases (histories, ledger) too; a failure keeps the logs.
    const keep = Boolean(process.env.BACKFILL_KEEP_TEST_FILES);
    await server?.close(keep);
    if (!keep) await dropDatabase(database).catch(() => undefined);
    if (failed || keep) {
      for (const [i, w] of workers.entries()) writeFileSync(join(dir, `worker-${i}.log`), w.log);
      log(`soak: kept ${dir} (server and worker logs)${keep ? ` and the databases ${prefix}*` : ''}`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** The minimums a `--topology postgres` soak promises, per 30 minutes of chaos. */
const PER_30_MINUTES = { workerKills: 20, serverRestarts: 5 };

if (process.argv[1]?.endsWith('scripts/soak.ts')) {
  const { values } = parseArgs({
    options: {
      topology: { type: 'string', default: 'dev' },
      minutes: { type: 'string' },
      hours: { type: 'string' },
      rate: { type: 'string' },
      kills: { type: 'string' },
      restarts: { type: 'string' },
      seed: { type: 'string', default: '1' },
    },
  });
  const topology = values.topology as Topology;
  if (!TOPOLOGIES.includes(topology)) throw new Error(`--topology must be one of ${TOPOLOGIES.join(', ')}, not '${values.topology}'`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  const common = { topology, seed: Number(values.seed), signal: controller.signal };
  let options: SoakOptions;
  let wanted = { workerKills: 0, serverRestarts: 0 };
  if (topology === 'dev') {
    options = { ...common, chaosMs: Number(values.minutes ?? 10) * 60_000, hours: Number(values.hours ?? 5000) };
  } else {
    const minutes = Number(values.minutes ?? 30);
    // The first node at `rate` partitions a second takes the whole chaos time, and the rest follow it.
    const rate = Number(values.rate ?? 3);
    const hours = values.hours === undefined ? Math.ceil(rate * minutes * 60) : Number(values.hours);
    wanted = {
      workerKills: values.kills === undefined ? Math.ceil((PER_30_MINUTES.workerKills * 1.2 * minutes) / 30) : Number(values.kills),
      serverRestarts: values.restarts === undefined ? Math.ceil((PER_30_MINUTES.serverRestarts * 1.2 * minutes) / 30) : Number(values.restarts),
    };
    options = { ...common, chaosMs: minutes * 60_000, hours, rate, schedule: wanted, killBusyWorkers: true };
  }
  const result = await soak(options);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const problems = [
    result.lost > 0 && `${result.lost} partitions lost`,
    result.publishedTwice > 0 && `${result.publishedTwice} partitions published twice`,
    result.fingerprint !== result.undisturbedFingerprint && `the data differs from the undisturbed run (${result.fingerprint} ≠ ${result.undisturbedFingerprint})`,
    result.kills < wanted.workerKills && `${result.kills} worker kills of ${wanted.workerKills} (the backfill completed before the chaos did: lower --rate or raise --hours)`,
    result.serverRestarts < wanted.serverRestarts && `${result.serverRestarts} server restarts of ${wanted.serverRestarts}`,
    result.census.notClosedWell.length > 0 && `workflow runs that did not close well: ${result.census.notClosedWell.join(', ')}`,
  ].filter((p): p is string => typeof p === 'string');
  for (const p of problems) process.stderr.write(`soak: FAILED: ${p}\n`);
  process.exitCode = problems.length === 0 ? 0 : 1;
  setTimeout(() => process.exit(), 100).unref();
}
