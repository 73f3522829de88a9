/**
 * A production-shaped Temporal server: the real server binary (frontend, history, matching and
 * worker in one process) on PostgreSQL, with the config the project ships in deploy/temporal and
 * deploy/dynamicconfig.yaml. Its state lives in two databases, so a restart on the same databases
 * resumes everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection, isGrpcServiceError, type TLSConfig } from '@temporalio/client';
import proto from '@temporalio/proto';
import { freePort, stopProcess, waitForServer } from '../host/dev-server.ts';
import { createDatabase, parsePostgresUrl, testPostgresUrl } from './postgres.ts';
import { run } from '../host/temporal-cli.ts';
import { resolveTemporalServer } from './temporal-server.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The server reads <root>/<config>/<env>.yaml: deploy/temporal/production.yaml. */
const CONFIG_ARGS = ['--root', ROOT, '--config', 'deploy/temporal', '--env', 'production'];
export const DYNAMIC_CONFIG_FILE = fileURLToPath(new URL('../deploy/dynamicconfig.yaml', import.meta.url));
const SYSTEM_NAMESPACE = 'temporal-system';
const GRPC_NOT_FOUND = 5;

export type TemporalClusterOptions = {
  /** A role that may create databases (default: the test PostgreSQL, scripts/postgres.ts). */
  postgresUrl?: string;
  /** The databases are `<prefix>` and `<prefix>_visibility` (default `temporal`). */
  databasePrefix?: string;
  /** The frontend's gRPC port (default: a free one); every other port is picked free. */
  frontendPort?: number;
  ip?: string;
  /** Registered when missing (the real server creates only its own system namespace). */
  namespace?: string;
  namespaceRetentionDays?: number;
  logFile?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  dynamicConfigFile?: string;
  startTimeoutMs?: number;
  /** TLS on the frontend (the TEMPORAL_TLS_* settings of deploy/temporal/production.yaml). */
  tls?: FrontendTls;
};

/** PEM files for a frontend with TLS, and how this module's own probes connect to it. */
export type FrontendTls = {
  cert: string;
  key: string;
  /** When given, the frontend requires client certificates of this CA (mTLS). */
  clientCa?: string;
  /** The server's system worker: its client certificate (needed with `clientCa`), the CA of `cert`, and a name in `cert`. */
  systemWorker: { cert?: string; key?: string; serverCa: string; serverName: string };
  /** What the readiness probes and the namespace registration connect with. */
  client: TLSConfig;
};

function tlsEnv(tls: FrontendTls | undefined): NodeJS.ProcessEnv {
  if (!tls) return {};
  const { systemWorker } = tls;
  return {
    TEMPORAL_TLS_FRONTEND_CERT: tls.cert,
    TEMPORAL_TLS_FRONTEND_KEY: tls.key,
    ...(tls.clientCa ? { TEMPORAL_TLS_CLIENT_CA_CERT: tls.clientCa } : {}),
    ...(systemWorker.cert && systemWorker.key ? { TEMPORAL_TLS_SYSTEM_WORKER_CERT: systemWorker.cert, TEMPORAL_TLS_SYSTEM_WORKER_KEY: systemWorker.key } : {}),
    TEMPORAL_TLS_SERVER_CA_CERT: systemWorker.serverCa,
    TEMPORAL_TLS_FRONTEND_SERVER_NAME: systemWorker.serverName,
  };
}

export type TemporalCluster = {
  address: string;
  namespace: string;
  databases: { temporal: string; visibility: string };
  /** The running server process (a new one after `restart`). */
  readonly process: ChildProcess;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Stops the server if it runs and starts it again on the same databases and ports. */
  restart(): Promise<void>;
};

type Log = (line: string) => void;

/** Creates the database when missing, then brings its schema up to the tool's version (both steps are idempotent). */
async function ensureSchema(sqlTool: string, postgresUrl: string, database: string, schema: 'temporal' | 'visibility', log: Log): Promise<void> {
  await createDatabase(database, postgresUrl);
  const { host, port, user, password } = parsePostgresUrl(postgresUrl);
  const env = {
    ...process.env,
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: host,
    SQL_PORT: String(port),
    SQL_USER: user,
    SQL_PASSWORD: password,
    SQL_DATABASE: database,
  };
  await run(sqlTool, ['setup-schema', '-v', '0.0'], env, log);
  await run(sqlTool, ['update-schema', '--schema-name', `postgresql/v12/${schema}`], env, log);
}

function canListen(port: number, ip: string): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, ip, () => server.close(() => done(true)));
  });
}

/**
 * `count` distinct free ports below 32768 besides those in `taken`: PostgreSQL keeps membership
 * ports in a SMALLINT column (cluster_membership.rpc_port), and Linux hands out ephemeral ports
 * from 32768 up, so freePort() would not fit there.
 */
async function freeLowPorts(count: number, ip: string, taken: number[]): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    if (!taken.includes(port) && !ports.has(port) && (await canListen(port, ip))) ports.add(port);
  }
  return [...ports];
}

/**
 * Registers the namespace when missing and returns once the server serves it. describeNamespace
 * reads the database, but polls and operator calls go through a namespace cache refreshed every
 * 2 s, so readiness is probed with an operator call.
 */
async function ensureNamespace(address: string, namespace: string, retentionDays: number, deadline: number, exited: () => string | undefined, tls?: TLSConfig): Promise<void> {
  const connection = await Connection.connect({ address, ...(tls ? { tls } : {}) });
  try {
    for (;;) {
      const why = exited();
      if (why) throw new Error(why);
      try {
        await connection.operatorService.listSearchAttributes({ namespace });
        return;
      } catch (error) {
        if (isGrpcServiceError(error) && error.code === GRPC_NOT_FOUND) await registerNamespace(connection, namespace, retentionDays);
        // Otherwise history or matching may still be joining the cluster.
        if (Date.now() > deadline) throw new Error(`namespace ${namespace} is not served at ${address}: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await connection.close();
  }
}

async function registerNamespace(connection: Connection, namespace: string, retentionDays: number): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: proto.google.protobuf.Duration.fromObject({ seconds: retentionDays * 86_400 }),
    });
  } catch (error) {
    // Registered already (the cache has not caught up yet), or the cluster is not ready: the caller retries.
    if (!isGrpcServiceError(error)) throw error;
  }
}

export async function startTemporalCluster(options: TemporalClusterOptions = {}): Promise<TemporalCluster> {
  const log: Log = (line) => process.stderr.write(`[temporal-cluster] ${line}\n`);
  const { server, sqlTool } = await resolveTemporalServer({ log });
  const postgresUrl = options.postgresUrl ?? testPostgresUrl();
  const prefix = options.databasePrefix ?? 'temporal';
  const databases = { temporal: prefix, visibility: `${prefix}_visibility` };
  const namespace = options.namespace ?? 'default';
  const ip = options.ip ?? '127.0.0.1';
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;

  // The schema tool logs every statement it runs; keep it for failures only.
  const schemaLog: string[] = [];
  try {
    await Promise.all([
      ensureSchema(sqlTool, postgresUrl, databases.temporal, 'temporal', (line) => schemaLog.push(line)),
      ensureSchema(sqlTool, postgresUrl, databases.visibility, 'visibility', (line) => schemaLog.push(line)),
    ]);
  } catch (error) {
    throw new Error(`setting up the Temporal databases ${databases.temporal} and ${databases.visibility} failed: ${(error as Error).message}\n${schemaLog.slice(-20).join('\n')}`, { cause: error });
  }

  const frontendPort = options.frontendPort ?? (await freePort());
  const [httpPort, frontendMembership, historyGrpc, historyMembership, matchingGrpc, matchingMembership, workerGrpc, workerMembership] = await freeLowPorts(8, ip, [frontendPort]);
  const { host, port, user, password } = parsePostgresUrl(postgresUrl);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    POSTGRES_SEEDS: host,
    DB_PORT: String(port),
    POSTGRES_USER: user,
    POSTGRES_PWD: password,
    DBNAME: databases.temporal,
    VISIBILITY_DBNAME: databases.visibility,
    BIND_ON_IP: ip,
    FRONTEND_GRPC_PORT: String(frontendPort),
    FRONTEND_HTTP_PORT: String(httpPort),
    FRONTEND_MEMBERSHIP_PORT: String(frontendMembership),
    HISTORY_GRPC_PORT: String(historyGrpc),
    HISTORY_MEMBERSHIP_PORT: String(historyMembership),
    MATCHING_GRPC_PORT: String(matchingGrpc),
    MATCHING_MEMBERSHIP_PORT: String(matchingMembership),
    WORKER_GRPC_PORT: String(workerGrpc),
    WORKER_MEMBERSHIP_PORT: String(workerMembership),
    DYNAMIC_CONFIG_FILE_PATH: options.dynamicConfigFile ?? DYNAMIC_CONFIG_FILE,
    LOG_LEVEL: options.logLevel ?? 'warn',
    ...tlsEnv(options.tls),
  };
  const address = `${ip}:${frontendPort}`;
  let child: ChildProcess;

  const launch = async (): Promise<void> => {
    let out: number | 'pipe' = 'pipe';
    if (options.logFile) {
      mkdirSync(dirname(options.logFile), { recursive: true });
      out = openSync(options.logFile, 'a');
    }
    child = spawn(server, [...CONFIG_ARGS, '--allow-no-auth', 'start'], { cwd: ROOT, env, stdio: ['ignore', out, out] });
    if (typeof out === 'number') closeSync(out);
    // Without a log file, the last lines it wrote explain an early exit.
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      tail.push(...chunk.toString().split('\n').filter(Boolean));
      tail.splice(0, Math.max(0, tail.length - 10));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exit: string | undefined;
    child.once('exit', (code, signal) => {
      const where = options.logFile ? `; see ${options.logFile}` : `:\n${tail.join('\n')}`;
      exit = `the Temporal server exited (${signal ?? `code ${code}`}) before it was ready${where}`;
    });
    const deadline = Date.now() + startTimeoutMs;
    try {
      await waitForServer(address, SYSTEM_NAMESPACE, startTimeoutMs, () => exit, options.tls?.client);
      await ensureNamespace(address, namespace, options.namespaceRetentionDays ?? 3, deadline, () => exit, options.tls?.client);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  };

  await launch();
  return {
    address,
    namespace,
    databases,
    get process() {
      return child;
    },
    stop: () => stopProcess(child),
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGKILL');
      await exited;
    },
    restart: async () => {
      await stopProcess(child);
      await launch();
    },
  };
}
