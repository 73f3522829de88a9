/**
 * The chaos soak: a SQL backfill runs while a driver kills worker processes with SIGKILL and
 * restarts the Temporal server at random. Afterwards every partition must be published exactly
 * once, and the data must equal an undisturbed run of the same backfill.
 *
 *   npm run soak                          # ten minutes of chaos over 20,000 partitions
 *   npm run soak -- --minutes 2 --hours 600
 *
 * The warehouse is PostgreSQL ($BACKFILL_TEST_POSTGRES_URL, see scripts/postgres.ts); the
 * Temporal server is the dev server on a SQLite file, restarted in place.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openWarehouse } from '../activities/warehouse/index.ts';
import type { LedgerRow } from '../activities/warehouse/types.ts';
import { BackfillClient } from '../client/backfill-client.ts';
import { fingerprint } from '../client/demo.ts';
import { expandPlan } from '../core/plan.ts';
import { seededRandom } from '../core/random.ts';
import { resolveSpec, type ResolvedSpec } from '../core/spec.ts';
import { freePort, startDevServer, type DevServer } from '../host/dev-server.ts';
import { createDatabase, dropDatabase, testPostgresUrl } from './postgres.ts';
import { WorkerProcess } from './worker-process.ts';

export type SoakOptions = {
  /** How long the chaos lasts (it stops earlier when the backfill completes). */
  chaosMs: number;
  /** Hourly partitions per node (four hourly nodes and one daily). */
  hours: number;
  workers?: number;
  seed?: number;
  log?: (line: string) => void;
};

export type SoakResult = {
  partitions: number;
  published: number;
  lost: number;
  publishedTwice: number;
  /** Partitions an attempt reached after another had published them (work redone, not written twice). */
  reachedTwice: number;
  kills: number;
  serverRestarts: number;
  fingerprint: string;
  undisturbedFingerprint: string;
  seconds: number;
};

/** Four hourly SQL nodes (generate, clean, aggregate, a rolling window) and a daily rollup. */
export function soakSpec(hours: number): ResolvedSpec {
  const end = new Date(Date.UTC(2024, 0, 1) + hours * 3_600_000).toISOString().slice(0, 13);
  return resolveSpec({
    name: 'soak',
    partitions: { grain: 'hour', start: '2024-01-01', end },
    defaults: { concurrency: 8, heartbeatTimeout: '3s', retry: { maxAttempts: 10, initialInterval: '200ms', maximumInterval: '2s' } },
    nodes: [
      {
        id: 'events',
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

function published(rows: readonly LedgerRow[]): LedgerRow[] {
  return rows.filter((r) => r.status === 'published');
}

export async function soak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const random = seededRandom(options.seed ?? 1);
  const dir = mkdtempSync(join(tmpdir(), 'backfill-soak-'));
  const database = `backfill_soak_${process.pid}_${Date.now()}`;
  await createDatabase(database);
  const url = new URL(testPostgresUrl());
  url.pathname = `/${database}`;
  const dbFile = join(dir, 'temporal.db');
  const port = await freePort();
  const serve = () => startDevServer({ dbFile, port, uiPort: null, logFile: join(dir, 'temporal.log') });
  let server: DevServer = await serve();
  const workers = Array.from({ length: options.workers ?? 3 }, () => new WorkerProcess({ address: server.address, warehouse: url.toString() }));
  const warehouse = openWarehouse(url.toString(), { inline: true });
  let client: BackfillClient | undefined;
  const began = Date.now();
  try {
    await Promise.all(workers.map((w) => w.start()));
    client = await BackfillClient.connect({ address: server.address });
    const spec = soakSpec(options.hours);
    const total = expandPlan(spec).totalPartitions;
    const { backfillId } = await client.start(spec, { id: 'soak' });
    log(`soak: ${total} partitions, chaos for up to ${Math.round(options.chaosMs / 1000)} s`);

    let kills = 0;
    let serverRestarts = 0;
    let completed = false;
    const outcome = client.wait(backfillId).then((o) => {
      completed = true;
      return o;
    });
    const chaosEnds = Date.now() + options.chaosMs;
    while (!completed && Date.now() < chaosEnds) {
      await pause(3000 + random() * 9000);
      if (completed) break;
      if (random() < 0.65) {
        const worker = workers[Math.floor(random() * workers.length)]!;
        await worker.kill();
        kills++;
        await pause(300 + random() * 1500);
        await worker.start();
        log(`soak: killed a worker (${kills})`);
      } else {
        await server.stop();
        await pause(500 + random() * 2000);
        server = await serve();
        serverRestarts++;
        // A worker gives up when the server stays away; a supervisor starts it again.
        await Promise.all(workers.filter((w) => !w.running).map((w) => w.start()));
        log(`soak: restarted the Temporal server (${serverRestarts})`);
      }
    }
    const final = await outcome;
    if (final.state !== 'completed') throw new Error(`the soak backfill ended ${final.state}`);
    const rows = published(await warehouse.ledger({ backfillId }));
    const perPartition = new Map<string, number>();
    for (const r of rows) perPartition.set(`${r.node}/${r.partition}`, (perPartition.get(`${r.node}/${r.partition}`) ?? 0) + 1);

    // The same backfill again, undisturbed: its data must be the same.
    const clean = await client.start(spec, { id: 'soak-undisturbed' });
    const undisturbed = await client.wait(clean.backfillId);
    if (undisturbed.state !== 'completed') throw new Error(`the undisturbed run ended ${undisturbed.state}`);
    const cleanRows = published(await warehouse.ledger({ backfillId: clean.backfillId }));
    return {
      partitions: total,
      published: rows.length,
      lost: total - perPartition.size,
      publishedTwice: [...perPartition.values()].filter((n) => n > 1).length,
      reachedTwice: rows.filter((r) => r.executions > 1).length,
      kills,
      serverRestarts,
      fingerprint: fingerprint(rows),
      undisturbedFingerprint: fingerprint(cleanRows),
      seconds: Math.round((Date.now() - began) / 1000),
    };
  } finally {
    await client?.close();
    await Promise.all(workers.map((w) => w.stop()));
    await warehouse.close();
    await server.stop();
    await dropDatabase(database).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('scripts/soak.ts')) {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, hours: { type: 'string', default: '5000' }, seed: { type: 'string', default: '1' } } });
  const result = await soak({ chaosMs: Number(values.minutes) * 60_000, hours: Number(values.hours), seed: Number(values.seed) });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const ok = result.lost === 0 && result.publishedTwice === 0 && result.fingerprint === result.undisturbedFingerprint;
  process.exitCode = ok ? 0 : 1;
  setTimeout(() => process.exit(), 100).unref();
}
