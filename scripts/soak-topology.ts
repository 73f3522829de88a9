/**
 * The Temporal servers a soak runs on, behind one face: where to connect, how to restart it the
 * way the chaos asks, and how to tear it down.
 *
 *   dev        the dev server (the `temporal` CLI's start-dev) on a SQLite file, restarted in place
 *   postgres   the real Temporal server on PostgreSQL with deploy/temporal/production.yaml, on two
 *              databases of its own that the soak creates and drops
 */
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { registerSearchAttributes, SEARCH_ATTRIBUTES } from '../client/search-attributes.ts';
import { startDevServer, type DevServer } from '../host/dev-server.ts';
import { dropDatabase } from './postgres.ts';
import { startTemporalCluster, type TemporalCluster } from './temporal-cluster.ts';

export const TOPOLOGIES = ['dev', 'postgres'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

/** One restart of the server, timed. Times are epoch milliseconds; durations milliseconds. */
export type ServerRestart = {
  signal: 'SIGKILL' | 'SIGTERM';
  /** When the stop began. */
  downAt: number;
  /** How the process ended: `SIGKILL`, `SIGTERM`, or `code N` (a SIGTERM that took longer than the grace period ends in SIGKILL). */
  exit: string;
  /** From the stop signal until the process had exited. */
  stopMs: number;
  /** From the new process's start until it served the namespace again. */
  readyMs: number;
  /** Starts that failed (timed out, or the process exited) before one served; each was killed and started again. */
  failedStarts: string[];
  /** When it served the namespace again. */
  upAt: number;
};

export type SoakServer = {
  topology: Topology;
  address: string;
  /** The server's own log. */
  logFile: string;
  /** Stops the server with `signal`, waits `downMs`, starts it again on the same state; resolves once it serves the namespace. */
  restart(signal: ServerRestart['signal'], downMs: number): Promise<ServerRestart>;
  /** Stops it and, unless `keep`, removes what it stored (the soak's own databases). */
  close(keep?: boolean): Promise<void>;
};

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Attempts at starting the server again after a restart before the soak gives up. */
const START_ATTEMPTS = 3;

export function startSoakServer(topology: Topology, options: { dir: string; databasePrefix: string }): Promise<SoakServer> {
  return topology === 'dev' ? devServer(options.dir) : postgresServer(options.dir, options.databasePrefix);
}

async function devServer(dir: string): Promise<SoakServer> {
  const logFile = join(dir, 'temporal.log');
  const dbFile = join(dir, 'temporal.db');
  let server: DevServer = await startDevServer({ dbFile, uiPort: null, logFile });
  const { port } = server.options;
  return {
    topology: 'dev',
    address: server.address,
    logFile,
    restart: (signal, downMs) =>
      timedRestart(signal, downMs, server.process, async () => {
        server = await startDevServer({ dbFile, port, uiPort: null, logFile });
      }),
    close: () => server.stop(),
  };
}

async function postgresServer(dir: string, databasePrefix: string): Promise<SoakServer> {
  const logFile = join(dir, 'temporal-server.log');
  let cluster: TemporalCluster | undefined;
  const drop = async (keep = false) => {
    await cluster?.stop();
    if (!keep) await Promise.all([databasePrefix, `${databasePrefix}_visibility`].map((name) => dropDatabase(name).catch(() => undefined)));
  };
  try {
    cluster = await startTemporalCluster({ databasePrefix, logFile, logLevel: 'warn' });
    await setupSearchAttributes(cluster.address, cluster.namespace);
  } catch (error) {
    await drop();
    throw error;
  }
  const started = cluster;
  return {
    topology: 'postgres',
    address: started.address,
    logFile,
    restart: (signal, downMs) => timedRestart(signal, downMs, started.process, () => started.restart()),
    close: drop,
  };
}

/** `backfill setup`, then waits until the server accepts the attributes in a query (it refreshes its namespace cache every few seconds). */
async function setupSearchAttributes(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await registerSearchAttributes(connection, namespace);
    const query = Object.keys(SEARCH_ATTRIBUTES).map((name) => `${name} IS NULL`).join(' AND ');
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await connection.workflowService.listWorkflowExecutions({ namespace, query, pageSize: 1 });
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`the search attributes were not usable within 60 s: ${(error as Error).message}`, { cause: error });
        await pause(250);
      }
    }
  } finally {
    await connection.close();
  }
}

/** Sends `signal` (SIGTERM gets 10 s to finish, then SIGKILL), waits `downMs`, and starts the server with `start`, retried when a start fails. */
async function timedRestart(
  signal: ServerRestart['signal'],
  downMs: number,
  child: import('node:child_process').ChildProcess,
  start: () => Promise<void>,
): Promise<ServerRestart> {
  const downAt = Date.now();
  const ended = new Promise<string>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done(child.signalCode ?? `code ${child.exitCode}`);
    else child.once('exit', (code, sig) => done(sig ?? `code ${code}`));
  });
  child.kill(signal);
  const grace = signal === 'SIGTERM' ? setTimeout(() => child.kill('SIGKILL'), 10_000) : undefined;
  const exit = await ended;
  clearTimeout(grace);
  const stopMs = Date.now() - downAt;
  await pause(downMs);
  const failedStarts: string[] = [];
  for (;;) {
    const startedAt = Date.now();
    try {
      await start();
      const upAt = Date.now();
      return { signal, downAt, exit, stopMs, readyMs: upAt - startedAt, failedStarts, upAt };
    } catch (error) {
      failedStarts.push(`after ${Math.round((Date.now() - startedAt) / 1000)} s: ${(error as Error).message.split('\n')[0]}`);
      if (failedStarts.length >= START_ATTEMPTS) {
        throw new Error(`the Temporal server did not come back after a ${signal} restart (${START_ATTEMPTS} starts): ${failedStarts.join('; ')}`, { cause: error });
      }
    }
  }
}
